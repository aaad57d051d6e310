// The efficiency audit (the seed's): every loss variation's full training step timed interleaved in one process
// on one fixed step, so all of them meet the same machine state; the ratio to the reference variation is taken
// within each round, and its median over rounds gets a bootstrap confidence interval. Separate runs' wall-clocks
// move with whatever else the machine did meanwhile (−45 % … +9 % seen on a shared machine); this does not.
// The step timed is the runs' own (their batch, sequence length and gradient accumulation: the "run" audit), so
// steps × its step time is the time the runs' training took, and the seed's fixed batch of 2,048 tokens may be
// timed beside it (the "fixed" audit) for comparison with the seed's numbers.
import fs from "node:fs";
import path from "node:path";

import { writeJsonAtomic } from "../../io/atomic.ts";
import { seededResampler } from "../../metrics/bootstrap.ts";
import { median } from "../../metrics/stats.ts";
import { fmt, formatTable } from "../../report/table.ts";
import { Trainer, type TrainerOptions, type TrainLossInput } from "../../trainer.ts";
import { type Evidence, evidence } from "./decision.ts";

/**
 * Which step an audit times: the runs' own ("run": `gradAccumulation` micro-batches of the runs' `batchSize`
 * sequences; audited time is steps × its step time, and the verdicts' efficiency comes from it), or the seed's
 * fixed batch ("fixed": about 2,048 tokens in one micro-batch), shown beside it.
 */
export type AuditShape = "run" | "fixed";

/** The layout of the step an audit times. */
export interface AuditBatch {
  /** sequences per micro-batch */
  batchSize: number;
  /** micro-batches per step */
  gradAccumulation: number;
  /** tokens per sequence, where every sequence has as many (packed language-model rows) */
  sequenceTokens?: number;
}

/** What a spec asks to be timed: per model and shape, a trainer nobody fits and the losses timed on it. */
export interface AuditPlan {
  model: string;
  shape: AuditShape;
  /** the trainer's options (its batchSize and gradAccumulation are the step timed: the first batchSize ×
   * gradAccumulation training sequences), made when the audit runs (a model to load is loaded only then) */
  trainer: () => Promise<TrainerOptions>;
  /** tokens per step (every micro-batch's), for the report */
  tokens: number;
  /** the step's layout; the trainer's batchSize and gradAccumulation */
  batch: AuditBatch;
  losses: { name: string; loss: TrainLossInput }[];
  /** the variation the others are compared with */
  reference: string;
  rounds: number;
  warmupRounds: number;
}

export interface AuditRow {
  name: string;
  /** median milliseconds per step */
  medianMs: number;
  /** median over rounds of (this step's time / the reference's in the same round), with its 95 % interval */
  ratio: { median: number; low: number; high: number };
}

export interface AuditResult {
  model: string;
  /** absent in audits saved before there were two shapes (those timed one micro-batch of the seed's batch) */
  shape?: AuditShape;
  tokens: number;
  batch?: AuditBatch;
  reference: string;
  rounds: number;
  warmupRounds: number;
  rows: AuditRow[];
  /** milliseconds, round × loss (in `rows` order) */
  ms: number[][];
  finishedAt: string;
}

const BOOTSTRAP_SAMPLES = 2000;

/** Median per column and, per column, the median within-round ratio to `reference` with a 95 % bootstrap CI. */
export function summariseAudit(names: readonly string[], ms: readonly number[][], reference: string): AuditRow[] {
  const ref = names.indexOf(reference);
  if (ref < 0) throw new RangeError(`audit reference: "${reference}" is not among ${names.join(", ")}`);
  const resample = seededResampler(0);
  const draws = Array.from({ length: BOOTSTRAP_SAMPLES }, () => resample(ms.length));
  return names.map((name, i) => {
    const ratios = ms.map((round) => round[i]! / round[ref]!);
    const medians = draws.map((idx) => median(Array.from(idx, (k) => ratios[k]!))).sort((a, b) => a - b);
    const at = (q: number) => medians[Math.min(medians.length - 1, Math.floor(q * medians.length))]!;
    return {
      name,
      medianMs: median(ms.map((round) => round[i]!)),
      ratio: { median: median(ratios), low: at(0.025), high: at(0.975) },
    };
  });
}

/** out/audit/<model>.json for the runs' step, out/audit/<model>.fixed.json for the seed's fixed batch. */
export function auditFile(out: string, model: string, shape: AuditShape): string {
  return path.join(out, "audit", shape === "run" ? `${model}.json` : `${model}.${shape}.json`);
}

/** "2 micro-batches of 8 × 64 tokens", "one micro-batch of 32 sequences" */
export function describeBatch(b: AuditBatch): string {
  const rows =
    b.sequenceTokens === undefined ? `${b.batchSize} sequences` : `${b.batchSize} × ${b.sequenceTokens} tokens`;
  return b.gradAccumulation === 1 ? `one micro-batch of ${rows}` : `${b.gradAccumulation} micro-batches of ${rows}`;
}

/** Whether a saved audit timed the step `plan` asks for (one saved before the shapes were told apart did not). */
function timedAsPlanned(a: AuditResult, plan: AuditPlan): boolean {
  const same = (x?: AuditBatch, y?: AuditBatch) =>
    x?.batchSize === y?.batchSize &&
    x?.gradAccumulation === y?.gradAccumulation &&
    x?.sequenceTokens === y?.sequenceTokens;
  return (a.shape ?? "fixed") === plan.shape && a.tokens === plan.tokens && same(a.batch, plan.batch);
}

/**
 * The audits of `plans`: read from out/audit/ when done before at the same step shape, else run (unless
 * `onlyFinished`) and saved.
 */
export async function runAudits(
  plans: readonly AuditPlan[],
  out: string,
  options: { say: (line: string) => void; signal?: AbortSignal; onlyFinished?: boolean },
): Promise<AuditResult[]> {
  const results: AuditResult[] = [];
  for (const plan of plans) {
    const file = auditFile(out, plan.model, plan.shape);
    const saved = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as AuditResult) : undefined;
    if (saved && timedAsPlanned(saved, plan)) {
      results.push(saved);
      continue;
    }
    if (options.onlyFinished || options.signal?.aborted) continue;
    const what = plan.shape === "run" ? "the runs' step" : "the seed's fixed batch";
    options.say(
      `efficiency audit (${plan.model}, ${what}): ${plan.losses.length} losses × ${plan.rounds} rounds of one ` +
        `${plan.tokens}-token step (${describeBatch(plan.batch)}) each, interleaved` +
        (saved ? `; the one saved timed another step, timed again` : ""),
    );
    const trainer = new Trainer({ ...(await plan.trainer()), progress: false, log: false });
    // A round is one step per loss: minutes on a loaded CPU, so the log hears from the audit every half minute.
    const started = Date.now();
    let said = started;
    const onRound = (done: number, total: number) => {
      if (Date.now() - said < 30_000 || done === total) return;
      said = Date.now();
      options.say(
        `efficiency audit (${plan.model}, ${what}): round ${done}/${total} ` +
          `(${done <= plan.warmupRounds ? "warm-up" : "timed"}), ${((said - started) / 1000).toFixed(0)} s`,
      );
    };
    const ms = await trainer.timeSteps(
      plan.losses.map((l) => l.loss),
      { rounds: plan.rounds, warmupRounds: plan.warmupRounds, onRound },
    );
    trainer.model.dispose();
    const result: AuditResult = {
      model: plan.model,
      shape: plan.shape,
      tokens: plan.tokens,
      batch: plan.batch,
      reference: plan.reference,
      rounds: plan.rounds,
      warmupRounds: plan.warmupRounds,
      rows: summariseAudit(
        plan.losses.map((l) => l.name),
        ms,
        plan.reference,
      ),
      ms,
      finishedAt: new Date().toISOString(),
    };
    writeJsonAtomic(file, result);
    options.say(
      `efficiency audit (${plan.model}, ${what}): ` +
        result.rows.map((r) => `${r.name} ×${r.ratio.median.toFixed(3)}`).join(", ") +
        ` (median step time / ${plan.reference}'s)`,
    );
    results.push(result);
  }
  return results;
}

/**
 * The seed's efficiency criterion from the audit: throughput at most 2 % below the reference's, i.e. a step-time
 * ratio of at most 1/0.98, decided from the median ratio's bootstrap interval over rounds (met only when the whole
 * interval is at or below the bound, not met when it is wholly above, inconclusive when it straddles it).
 * Undefined when `name` was not audited against that reference.
 */
export function auditedThroughput(
  audit: AuditResult | undefined,
  name: string,
): { evidence: Evidence; detail: string } | undefined {
  const row = audit?.rows.find((r) => r.name === name);
  if (!audit || !row) return undefined;
  const { median: m, low, high } = row.ratio;
  const change = 1 - 1 / m;
  const how = `${fmt(100 * Math.abs(change), 1)} % ${change <= 0 ? "faster" : "slower"}`;
  return {
    evidence: evidence(
      `step time / ${audit.reference}'s`,
      { estimate: m, low, high, interval: `bootstrap over ${audit.rounds} interleaved audit rounds` },
      "≤",
      1 / 0.98,
      { digits: 4 },
    ),
    detail: `median throughput ${how} than ${audit.reference}'s (interleaved audit, ${audit.rounds} rounds)`,
  };
}

/**
 * `model`'s audit of the runs' own step: the one audited time and the verdicts' efficiency come from. (An audit saved
 * before the shapes were told apart timed the seed's batch, not the runs' step: it is not this.)
 */
export function runShapeAudit(audits: readonly AuditResult[], model: string): AuditResult | undefined {
  return audits.find((a) => a.model === model && a.shape === "run");
}

/** The audit as a Markdown table. */
export function auditTable(a: AuditResult): string {
  return formatTable(
    [
      { header: "variation", align: "left" },
      "median ms/step",
      "tokens/s",
      `step time / ${a.reference}'s (median, 95 % CI)`,
    ],
    a.rows.map((r) => [
      r.name,
      fmt(r.medianMs, 1),
      fmt(a.tokens / (r.medianMs / 1000), 0),
      `${fmt(r.ratio.median, 3)} [${fmt(r.ratio.low, 3)}, ${fmt(r.ratio.high, 3)}]`,
    ]),
  );
}

/**
 * `model`'s audits as part of a report's efficiency section: how they were measured, the runs' step's table (the one
 * audited time and the verdicts come from), then the seed's fixed batch's where it was timed. Nothing without audits.
 */
export function auditSection(audits: readonly AuditResult[], model: string): string[] {
  const own = audits.filter((a) => a.model === model);
  const run = own.find((a) => a.shape === "run");
  const fixed = own.find((a) => a.shape !== "run");
  const tokens = (a: AuditResult) => a.tokens.toLocaleString("en-US");
  const how = (a: AuditResult) =>
    `timed interleaved in one process for ${a.rounds} rounds (after ${a.warmupRounds} untimed); the ratio to ` +
    `${a.reference} is taken within each round, its median over rounds with a 95 % bootstrap interval`;
  const lines: string[] = [];
  if (run) {
    lines.push(
      "The efficiency audit: one full training step (forward, loss, backward, clipping, AdamW) per variation at the " +
        `runs' own shape, ${describeBatch(run.batch!)} (${tokens(run)} tokens per step, the same for every ` +
        `variation, made beforehand), ${how(run)}. The verdicts' efficiency comes from it, and audited time is steps ` +
        "× its median step time. One process times the whole step: under several ranks, the runs' own step time " +
        "differs by their communication.",
      "",
      auditTable(run),
      "",
    );
  }
  if (fixed) {
    lines.push(
      `${run ? "The seed's fixed batch, timed the same way" : "The efficiency audit: one full training step per variation on the seed's fixed batch"}: ` +
        `${tokens(fixed)} tokens${fixed.batch ? `, ${describeBatch(fixed.batch)}` : ""}, ${how(fixed)}` +
        (run ? " (for comparison with the seed's numbers; not the runs' step)." : "."),
      "",
      auditTable(fixed),
      "",
    );
  }
  return lines;
}
