// The command line of an experiment, derived from its settings schema: each field becomes a kebab-case flag
// (maxSteps → --max-steps; fields of a nested object → --label-noise.step-fraction), lists (arrays, tuples) are
// comma-separated, numbers are parsed, booleans and fields that may be `false` get a --no-… flag, and the help text
// comes from the fields' descriptions. Fields no flag can express (records, objects inside arrays) stay for --config.
import { parseArgs } from "node:util";

import type { z } from "zod";

export type FlagKind = "number" | "string" | "boolean" | "numbers" | "strings" | "off";

/** One flag of a settings field. */
export interface SettingFlag {
  /** without the leading "--", e.g. "max-steps" */
  name: string;
  /** the field it sets, e.g. ["labelNoise", "stepFraction"] */
  path: string[];
  /** "off": sets the field to false */
  kind: FlagKind;
  /** numbers: whole numbers only (for the help text; the schema checks) */
  integer?: boolean;
  /** allowed values, when the schema names them */
  choices?: string[];
  description: string;
  /** the field also takes forms no flag gives (e.g. one value per model); a --config file can */
  moreInFile?: boolean;
}

/** The flags every experiment has, beside its settings. */
export const COMMON_FLAGS = {
  profile: { type: "string", value: "NAME", help: "the named settings the other flags start from" },
  out: { type: "string", value: "DIR", help: "the experiment's folder (default runs/<experiment>-<profile>)" },
  config: { type: "string", value: "FILE", help: "settings from a JSON file, over the profile (flags override it)" },
  "report-only": { type: "boolean", help: "rewrite the report from the finished runs in --out; train nothing" },
  help: { type: "boolean", help: "this text" },
} as const;

export class UsageError extends Error {
  override name = "UsageError";
}

type Schema = z.ZodType;
interface Def {
  type: string;
  innerType?: Schema;
  element?: Schema;
  options?: Schema[];
  items?: Schema[];
  entries?: Record<string, string | number>;
  values?: unknown[];
  shape?: Record<string, Schema>;
}
const defOf = (s: Schema) => (s as unknown as { _zod: { def: Def } })._zod.def;
const isFalse = (s: Schema) => defOf(s).type === "literal" && [...(defOf(s).values as unknown[])].includes(false);
const WRAPPERS = new Set(["optional", "default", "prefault", "nullable", "readonly", "catch", "nonoptional"]);

/** The schema under optional/default/… wrappers, and the first description met on the way in. */
function unwrap(s: Schema): { inner: Schema; description: string | undefined } {
  let description = s.description;
  while (WRAPPERS.has(defOf(s).type)) {
    s = defOf(s).innerType!;
    description ??= s.description;
  }
  return { inner: s, description };
}

type Scalar = { kind: "number" | "string" | "boolean"; integer?: boolean; choices?: string[] };

function scalar(s: Schema): Scalar | undefined {
  const d = defOf(s);
  switch (d.type) {
    case "number":
      return { kind: "number", integer: (s as z.ZodNumber).isInt };
    case "string":
      return { kind: "string" };
    case "boolean":
      return { kind: "boolean" };
    case "enum":
      return { kind: "string", choices: Object.values(d.entries!).map(String) };
    case "literal": {
      const values = [...(d.values as unknown[])];
      return values.every((v) => typeof v === "string") ? { kind: "string", choices: values as string[] } : undefined;
    }
    default:
      return undefined;
  }
}

/** The element of a list (an array, or a tuple whose items are all one kind of scalar), when a flag can give it. */
function elementOf(list: Schema): Scalar | undefined {
  const d = defOf(list);
  if (d.type === "array") return scalar(unwrap(d.element!).inner);
  const items = (d.items ?? []).map((item) => scalar(unwrap(item).inner));
  const first = items[0];
  if (!first || !items.every((x) => x && x.kind === first.kind && !x.choices)) return undefined;
  return { kind: first.kind, ...(items.every((x) => x!.integer) ? { integer: true } : {}) };
}

const kebab = (field: string) => field.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();

/** Every flag the settings schema `schema` (a zod object) gives, in field order. */
export function settingFlags(schema: z.ZodObject): SettingFlag[] {
  const flags: SettingFlag[] = [];
  const walk = (shape: Record<string, Schema>, path: string[], prefix: string) => {
    for (const [field, fieldSchema] of Object.entries(shape)) {
      const { inner, description = "" } = unwrap(fieldSchema);
      const name = `${prefix}${kebab(field)}`;
      const at = [...path, field];
      const d = defOf(inner);
      const members = d.type === "union" ? d.options!.map((m) => unwrap(m).inner) : [inner];
      const scalars = members.map(scalar).filter((x): x is Scalar => x !== undefined);
      const objects = members.filter((m) => defOf(m).type === "object");
      const arrays = members.filter((m) => defOf(m).type === "array" || defOf(m).type === "tuple");
      let main: SettingFlag | undefined;
      if (scalars.length > 0) {
        const first = scalars[0]!;
        const choices = scalars.every((x) => x.choices) ? [...new Set(scalars.flatMap((x) => x.choices!))] : undefined;
        main = { name, path: at, kind: first.kind, description };
        if (first.integer) main.integer = true;
        if (choices) main.choices = choices;
        flags.push(main);
        if (first.kind === "boolean") {
          flags.push({ name: `no-${name}`, path: at, kind: "off", description: `turn off --${name}` });
        }
      } else if (arrays.length > 0) {
        const element = elementOf(arrays[0]!);
        if (element && element.kind !== "boolean") {
          main = {
            name,
            path: at,
            kind: element.kind === "number" ? "numbers" : "strings",
            description,
            ...(element.integer ? { integer: true } : {}),
            ...(element.choices ? { choices: element.choices } : {}),
          };
          flags.push(main);
        }
      }
      if (members.some(isFalse)) {
        const what = description ? `${description}: ` : "";
        flags.push({ name: `no-${name}`, path: at, kind: "off", description: `${what}off` });
      }
      for (const o of objects) walk(defOf(o).shape!, at, `${name}.`);
      // A form the main flag cannot give: a scalar of another kind (e.g. "auto" beside a boolean), a record, ….
      const covered = (m: Schema) =>
        scalar(m)?.kind === main?.kind || isFalse(m) || objects.includes(m) || (m === arrays[0] && main !== undefined);
      if (main && !members.every(covered)) main.moreInFile = true;
    }
  };
  walk(schema.shape as Record<string, Schema>, [], "");
  const clash = flags.find((f) => Object.hasOwn(COMMON_FLAGS, f.name));
  if (clash) {
    const field = clash.path.join(".");
    throw new Error(`settings schema: the field ${field} gives --${clash.name}, a flag every experiment has`);
  }
  return flags;
}

/** The flags' values as they were typed, and the settings they give (nested like the schema). */
export interface ParsedArgs {
  help: boolean;
  profile?: string;
  out?: string;
  config?: string;
  reportOnly: boolean;
  settings: Record<string, unknown>;
}

function closest(flags: readonly string[], given: string): string[] {
  const words = given.split(/[-.]/).filter(Boolean);
  return flags.filter((f) => {
    const theirs = f.split(/[-.]/);
    return words.length > 0 && words.every((w) => theirs.some((t) => t.startsWith(w)));
  });
}

function usageError(e: unknown, names: readonly string[]): UsageError {
  const err = e as { code?: string; message: string };
  const flag = /'(--?[^' ]+)/.exec(err.message)?.[1];
  switch (err.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION": {
      const like = flag ? closest(names, flag.replace(/^-+/, "")) : [];
      const hint = like.length ? ` (did you mean ${like.map((n) => `--${n}`).join(" or ")}?)` : "";
      return new UsageError(`${flag}: unknown flag${hint}; see --help`);
    }
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return new UsageError(
        /does not take an argument/.test(err.message)
          ? `${flag}: takes no value`
          : /ambiguous/.test(err.message)
            ? `${flag}: expected a value; write ${flag}=VALUE for one starting with "-"`
            : `${flag}: expected a value`,
      );
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL": {
      const arg = /'([^']*)'/.exec(err.message)?.[1] ?? "";
      return new UsageError(`unexpected argument ${arg} (every setting is a --flag VALUE); see --help`);
    }
    default:
      return new UsageError(err.message);
  }
}

function number(flag: string, text: string): number {
  const x = text.trim() === "" ? NaN : Number(text);
  if (Number.isNaN(x)) throw new UsageError(`--${flag}: expected a number, got ${JSON.stringify(text)}`);
  return x;
}

// A comma-separated list; "none" is the empty list (an empty value is easy to lose in a shell).
function list(text: string): string[] {
  return text.trim() === "none"
    ? []
    : text
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean);
}

function setAt(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    const isObject = typeof next === "object" && next !== null && !Array.isArray(next);
    node = node[key] = isObject ? (next as Record<string, unknown>) : {};
  }
  node[path.at(-1)!] = value;
}

/** Parses `argv` with `flags` (from settingFlags) and the common flags; throws UsageError naming the flag. */
export function parseExperimentArgs(flags: readonly SettingFlag[], argv: readonly string[]): ParsedArgs {
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const [name, f] of Object.entries(COMMON_FLAGS)) options[name] = { type: f.type };
  for (const f of flags) options[f.name] = { type: f.kind === "boolean" || f.kind === "off" ? "boolean" : "string" };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw usageError(e, Object.keys(options));
  }
  const settings: Record<string, unknown> = {};
  for (const f of flags) {
    const v = values[f.name];
    if (v === undefined) continue;
    if (f.kind === "off") {
      const within = (g: SettingFlag) => g.kind !== "off" && f.path.every((k, i) => g.path[i] === k);
      const other = flags.find((g) => within(g) && values[g.name] !== undefined);
      if (other) throw new UsageError(`--${f.name} and --${other.name}: give one of them`);
    }
    switch (f.kind) {
      case "number":
        setAt(settings, f.path, number(f.name, v as string));
        break;
      case "numbers":
        setAt(
          settings,
          f.path,
          list(v as string).map((x) => number(f.name, x)),
        );
        break;
      case "strings":
        setAt(settings, f.path, list(v as string));
        break;
      case "off":
        setAt(settings, f.path, false);
        break;
      default:
        setAt(settings, f.path, v);
    }
  }
  const str = (k: string) => (typeof values[k] === "string" ? (values[k] as string) : undefined);
  const profile = str("profile");
  const out = str("out");
  const config = str("config");
  return {
    help: values.help === true,
    reportOnly: values["report-only"] === true,
    settings,
    ...(profile !== undefined ? { profile } : {}),
    ...(out !== undefined ? { out } : {}),
    ...(config !== undefined ? { config } : {}),
  };
}

function valueHint(f: SettingFlag): string {
  switch (f.kind) {
    case "number":
      return f.integer ? "N" : "X";
    case "numbers":
      return f.integer ? "N,N,…" : "X,X,…";
    case "strings":
      return "A,B,…";
    case "string":
      return f.choices ? f.choices.join("|") : "TEXT";
    default:
      return "";
  }
}

function show(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.length ? value.join(",") : "none";
  return typeof value === "object" && value !== null ? undefined : String(value);
}

function valueAt(root: unknown, path: string[]): unknown {
  let v = root;
  for (const k of path) v = typeof v === "object" && v !== null ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

// Word-wraps `text` to `width` columns, continuation lines indented by `indent`; "[…]" stays on one line.
function wrap(text: string, width: number, indent: number): string {
  const lines: string[] = [];
  let line = "";
  const words = text
    .replace(/\[[^\]]*\]/g, (m) => m.replace(/ /g, "\u00a0"))
    .split(/ +/)
    .filter(Boolean);
  for (const word of words.map((w) => w.replace(/\u00a0/g, " "))) {
    if (line && line.length + 1 + word.length > width - indent) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines.join(`\n${" ".repeat(indent)}`);
}

/**
 * The help text: usage, the common flags, then every setting's flag with its description, its choices and
 * its value in `profile` (whose settings `profileSettings` are).
 */
export function helpText(options: {
  prog: string;
  summary: string;
  flags: readonly SettingFlag[];
  profiles: readonly string[];
  profile: string;
  profileSettings: unknown;
}): string {
  const { flags, profiles, profile } = options;
  const rows: [string, string][] = [];
  for (const [name, f] of Object.entries(COMMON_FLAGS)) {
    const value = "value" in f ? ` ${name === "profile" ? profiles.join("|") : f.value}` : "";
    const extra = name === "profile" ? ` (default ${profiles[0]})` : "";
    rows.push([`--${name}${value}`, `${f.help}${extra}`]);
  }
  const settingRows: [string, string][] = flags.map((f) => {
    const hint = valueHint(f);
    const current = f.kind === "off" ? undefined : show(valueAt(options.profileSettings, f.path));
    const parts = [
      f.description,
      f.choices && f.kind !== "string" ? `one or more of ${f.choices.join(", ")}` : "",
      f.moreInFile ? "more forms in --config FILE" : "",
      current !== undefined ? `[${profile}: ${current}]` : "",
    ].filter(Boolean);
    return [`--${f.name}${hint ? ` ${hint}` : ""}`, parts.join("; ")];
  });
  const width = Math.min(40, Math.max(...[...rows, ...settingRows].map(([l]) => l.length)) + 2);
  const format = ([left, right]: [string, string]) => {
    const pad = left.length + 2 > width ? `\n${" ".repeat(width + 2)}` : " ".repeat(width - left.length);
    return `  ${left}${pad}${wrap(right, 118, width + 2)}`;
  };
  return [
    `usage: ${options.prog} [--profile NAME] [--out DIR] [--config FILE] [--report-only] [settings]`,
    "",
    wrap(options.summary, 118, 0),
    "",
    ...rows.map(format),
    "",
    'settings (lists are comma-separated, "none" is an empty list):',
    ...settingRows.map(format),
  ].join("\n");
}
