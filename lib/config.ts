// The loss kinds, stated once: the fused kinds DPSMLoss computes (ce, brier, spherical, dpsm with its α
// schedule) and the baselines the Trainer also trains with (label smoothing, focal loss); and one way of
// turning a schema failure into a JS error that names the argument, what was expected and what was given.
import { z } from "zod";

export const LOSS_KINDS = ["ce", "brier", "spherical", "dpsm"] as const;
export const SCHEDULES = ["linear", "cosine", "step", "fixed"] as const;
/** The fused kinds score smoothing applies to (spherical has no smoothed form in the kernel). */
export const SMOOTHED_KINDS = ["ce", "brier", "dpsm"] as const;
export const REDUCTIONS = ["mean", "sum", "none"] as const;

export type LossKind = (typeof LOSS_KINDS)[number];
export type Schedule = (typeof SCHEDULES)[number];
export type Reduction = (typeof REDUCTIONS)[number];

const finite = () => z.number().finite();

/** Where a model lives: "cpu", "cuda" or "cuda:N" (whether the device exists is the native side's check). */
export const DeviceSchema = z.string().regex(/^(cpu|cuda(:\d+)?)$/, "expected cpu, cuda or cuda:N");

/**
 * The loss: `ce`, `brier`, `spherical`, or `dpsm` with its α schedule (linear, cosine, step: α = 0 before
 * `warmupSteps` and 1 from it on; fixed). `smoothing` ε in [0, 1) (ce, brier, dpsm): the expected score under the
 * smoothed target (1 − ε)·onehot(y) + ε/V (Shao et al. 2024's score smoothing; for ce, label smoothing). A
 * smoothing of 0 is the same loss as none and is dropped, so the config (and a run's resume fingerprint) is the
 * one without the key.
 */
export const LossConfigSchema = z
  .object({
    kind: z.enum(LOSS_KINDS),
    schedule: z.enum(SCHEDULES).optional(),
    warmupSteps: finite().positive().optional(),
    alpha: finite().min(0).max(1).optional(),
    smoothing: z.number().min(0, "expected a number in [0, 1)").lt(1, "expected a number in [0, 1)").optional(),
    ignoreIndex: z.number().int().default(-100),
    reduction: z.enum(REDUCTIONS).default("mean"),
  })
  .strict()
  .superRefine((c, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
    if (c.smoothing !== undefined && c.smoothing > 0 && !(SMOOTHED_KINDS as readonly string[]).includes(c.kind)) {
      issue("smoothing", `applies to kinds ${SMOOTHED_KINDS.join(", ")} (kind is "${c.kind}")`);
    }
    if (c.kind !== "dpsm") {
      for (const key of ["schedule", "warmupSteps", "alpha"] as const) {
        if (c[key] !== undefined) issue(key, `only applies to kind "dpsm" (kind is "${c.kind}")`);
      }
      return;
    }
    if (c.schedule === undefined) issue("schedule", `required for kind "dpsm": one of ${SCHEDULES.join(", ")}`);
    if (c.schedule === "fixed") {
      if (c.alpha === undefined) issue("alpha", 'required for schedule "fixed": a number in [0, 1]');
      if (c.warmupSteps !== undefined) issue("warmupSteps", 'does not apply to schedule "fixed"');
    } else if (c.schedule !== undefined) {
      if (c.warmupSteps === undefined) issue("warmupSteps", `required for schedule "${c.schedule}": a number > 0`);
      if (c.alpha !== undefined) issue("alpha", 'only applies to schedule "fixed"');
    }
  })
  .transform((c) => {
    if (c.smoothing === 0) delete c.smoothing;
    return c;
  });

export type LossConfigInput = z.input<typeof LossConfigSchema>;
export type LossConfig = z.output<typeof LossConfigSchema>;

export const BASELINE_KINDS = ["label_smoothing", "focal"] as const;
/** Baselines trained on plain ops: cross-entropy with label smoothing, focal loss (Lin et al. 2017). */
export const BaselineLossSchema = z.discriminatedUnion("kind", [
  z
    .object({
      kind: z.literal("label_smoothing"),
      smoothing: z.number().min(0).max(1).default(0.1),
      ignoreIndex: z.number().int().default(-100),
    })
    .strict(),
  z
    .object({
      kind: z.literal("focal"),
      gamma: z.number().min(0).finite().default(2),
      ignoreIndex: z.number().int().default(-100),
    })
    .strict(),
]);
/** What the Trainer trains with: any DPSMLoss config (mean reduction), or a baseline. */
export type TrainLossInput = LossConfigInput | z.input<typeof BaselineLossSchema>;
export type TrainLoss = LossConfig | z.output<typeof BaselineLossSchema>;

/** Whether a training loss is a baseline (computed from the logits on plain ops, never by the fused kernel). */
export function isBaselineLoss(l: TrainLoss): l is z.output<typeof BaselineLossSchema> {
  return (BASELINE_KINDS as readonly string[]).includes(l.kind);
}

/** A training loss validated by the schema its kind belongs to; `where` names it in errors. */
export function parseTrainLoss(value: unknown, where: string): TrainLoss {
  const kind = (value as { kind?: unknown } | null)?.kind;
  if ((BASELINE_KINDS as readonly unknown[]).includes(kind)) return parseOrThrow(BaselineLossSchema, value, where);
  const l = parseOrThrow(LossConfigSchema, value, where);
  if (l.reduction !== "mean")
    throw new RangeError(`${where}.reduction: training uses the mean over tokens, got "${l.reduction}"`);
  return l;
}

function describe(value: unknown): string {
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined) {
    return String(value);
  }
  if (typeof value === "string") return JSON.stringify(value);
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  return Array.isArray(value) ? "an array" : typeof value;
}

function valueAt(root: unknown, path: PropertyKey[]): unknown {
  let v: unknown = root;
  for (const key of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/**
 * Parses `value` with `schema`, or throws: a TypeError when a value has the wrong type, a RangeError
 * otherwise. The message names each offending argument as `where.path`, says what was expected and
 * what was given.
 */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues;
  const lines = issues.map((i) => {
    const name = [where, ...i.path.map(String)].join(".");
    if (i.code === "unrecognized_keys") return `${where}: unknown option(s) ${i.keys.map((k) => `"${k}"`).join(", ")}`;
    const got = i.path.length > 0 && i.code !== "invalid_type" ? `, got ${describe(valueAt(value, i.path))}` : "";
    return `${name}: ${i.message}${got}`;
  });
  const message = lines.join("; ");
  throw issues.every((i) => i.code === "invalid_type") ? new TypeError(message) : new RangeError(message);
}
