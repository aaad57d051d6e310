// An experiment's settings: a named profile, overridden by a settings file and then by flags, validated by the
// spec's schema; and the pin that ties an output folder to the settings its runs were made with.
import fs from "node:fs";
import path from "node:path";

import type { z } from "zod";

import { parseOrThrow } from "../../config.ts";
import { writeJsonAtomic } from "../../io/atomic.ts";
import type { AnyExperimentSpec, ConfigOf } from "./spec.ts";

type PlainObject = Record<string, unknown>;
/** Resolved settings of any experiment. */
type Settings = { readonly profile: string } & Readonly<PlainObject>;
const isPlainObject = (v: unknown): v is PlainObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** `over` on top of `base`: objects merge field by field, anything else (arrays included) replaces. */
export function mergeSettings(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: PlainObject = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = mergeSettings(base[k], v);
  return out;
}

export function profileNames(spec: AnyExperimentSpec): string[] {
  return Object.keys(spec.profiles);
}

/** The default profile: the spec's first. */
export function defaultProfile(spec: AnyExperimentSpec): string {
  return profileNames(spec)[0]!;
}

/** Settings to merge over others: any field may be left out, at any depth (arrays are replaced whole). */
export type SettingsOverride<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: SettingsOverride<T[K]> }
    : T;

/**
 * The settings of `profile` with each of `overrides` applied in turn, validated. Errors name the setting as
 * "<spec name> config.<field>".
 */
export function resolveConfig<S extends AnyExperimentSpec>(
  spec: S,
  profile: string,
  ...overrides: (SettingsOverride<z.input<S["schema"]>> | undefined)[]
): ConfigOf<S["schema"]> {
  if (!Object.hasOwn(spec.profiles, profile)) {
    throw new RangeError(`profile: expected one of ${profileNames(spec).join(", ")}, got ${JSON.stringify(profile)}`);
  }
  const merged = overrides.reduce(mergeSettings, spec.profiles[profile]);
  const settings = parseOrThrow(spec.schema, merged, `${spec.name} config`) as object;
  return { profile, ...settings } as ConfigOf<S["schema"]>;
}

/** JSON with object keys sorted, so two equal settings compare equal whatever their key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    isPlainObject(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, v[k]]),
        )
      : v,
  );
}

/** What out/config.json holds: the experiment, its profile and the settings that decide its results. */
export function pinnedSettings(spec: AnyExperimentSpec, config: Settings): PlainObject {
  const pinned: PlainObject = { experiment: spec.name, ...config };
  for (const k of spec.unpinned ?? []) delete pinned[k];
  return pinned;
}

/** `settings` with the settings `spec` renamed since (its renamedSettings) under their new names. */
export function renameSettings(spec: AnyExperimentSpec, settings: PlainObject): PlainObject {
  const out = { ...settings };
  for (const [old, now] of Object.entries(spec.renamedSettings ?? {})) {
    if (!Object.hasOwn(out, old) || Object.hasOwn(out, now)) continue;
    out[now] = out[old];
    delete out[old];
  }
  return out;
}

/**
 * A pinned config.json as it reads today: renamed settings under their new names and settings added since at
 * their defaults, as the schema resolves them; undefined when the schema rejects it.
 */
function asPinnedToday(spec: AnyExperimentSpec, pinned: PlainObject): PlainObject | undefined {
  const { experiment, profile, ...settings } = pinned;
  const parsed = spec.schema.safeParse(renameSettings(spec, settings));
  if (!parsed.success) return undefined;
  const today: PlainObject = { experiment, profile, ...(parsed.data as PlainObject) };
  for (const k of spec.unpinned ?? []) delete today[k];
  return today;
}

/**
 * Pins `config` to `out`: writes out/config.json, or checks that the one there holds the same settings (the
 * unpinned ones aside; one pinned before a setting was renamed or added reads as it would today) and throws,
 * naming the differing fields, when it does not.
 */
export function pinConfig(spec: AnyExperimentSpec, config: Settings, out: string): void {
  const file = path.join(out, "config.json");
  const mine = pinnedSettings(spec, config);
  if (!fs.existsSync(file)) {
    writeJsonAtomic(file, mine);
    return;
  }
  let theirs: PlainObject;
  try {
    const parsed: unknown = JSON.parse(fs.readFileSync(file, "utf8"));
    if (!isPlainObject(parsed)) throw new Error("not a JSON object");
    theirs = parsed;
  } catch (e) {
    throw new Error(`out: ${file} is not a settings file (${(e as Error).message}); use another --out or delete it`, {
      cause: e,
    });
  }
  for (const k of spec.unpinned ?? []) delete theirs[k];
  if (canonical(theirs) === canonical(mine)) return;
  theirs = asPinnedToday(spec, theirs) ?? theirs;
  if (canonical(theirs) === canonical(mine)) return;
  const fields = [...new Set([...Object.keys(theirs), ...Object.keys(mine)])];
  const differ = fields.filter((k) => canonical(theirs[k]) !== canonical(mine[k]));
  const value = (v: unknown) => canonical(v) ?? "absent";
  const shown = differ.slice(0, 4).map((k) => `${k}: ${value(theirs[k])} there, ${value(mine[k])} now`);
  const more = differ.length > 4 ? "; …" : "";
  throw new Error(
    `out: ${out} holds an experiment with another configuration (${shown.join("; ")}${more}); ` +
      "use another --out or delete it",
  );
}
