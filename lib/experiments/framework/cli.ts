// An experiment as a command: flags and --help from its settings schema, the settings resolved and checked
// before any work, Ctrl-C handled (the first stops at the next step boundary with a checkpoint, the second
// quits at once), the runs, then the report. Exit codes: 0 done, 1 failed, 2 bad flags or settings,
// 130 interrupted. `--nproc N` runs the same command data-parallel on N processes of this machine (lib/launch.ts).
import fs from "node:fs";
import path from "node:path";

import type { z } from "zod";

import { type DistributedOptions, distributedFromEnv } from "../../distributed.ts";
import { checkFolderPath } from "../../io/paths.ts";
import { launch, LaunchUsageError, localLaunch } from "../../launch.ts";
import { buildInfo } from "../../native.ts";
import { defaultProfile, profileNames, renameSettings, resolveConfig } from "./config.ts";
import { helpText, parseExperimentArgs, settingFlags, UsageError } from "./flags.ts";
import { writeReport } from "./report.ts";
import { runExperiment } from "./runner.ts";
import type { AnyExperimentSpec, ConfigOf, ExperimentSpec, Job } from "./spec.ts";

export type CommandLine<S extends z.ZodObject> =
  { help: string } | { config: ConfigOf<S>; out: string; reportOnly: boolean };

const oneOf = (spec: AnyExperimentSpec, got: unknown) =>
  `expected one of ${profileNames(spec).join(", ")}, got ${JSON.stringify(got)}`;

interface SettingsFile {
  profile?: string;
  settings: Record<string, unknown>;
}

// Where a "__proto__" key lies in parsed JSON ("" at the top), or undefined. JSON.parse keeps it as an own key,
// but merging the settings assigns it, which sets the object's prototype: the setting would vanish without a word.
function protoKeyAt(value: unknown, at: string): string | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  for (const [k, v] of Object.entries(value)) {
    const here = at === "" ? k : `${at}.${k}`;
    if (k === "__proto__") return here;
    const deeper = protoKeyAt(v, here);
    if (deeper !== undefined) return deeper;
  }
  return undefined;
}

function readSettingsFile(spec: AnyExperimentSpec, file: string): SettingsFile {
  if (!fs.existsSync(file)) throw new UsageError(`--config: ${file} not found`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new UsageError(`--config: ${file} is not valid JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`--config: ${file} must hold a JSON object`);
  }
  const proto = protoKeyAt(parsed, "");
  if (proto !== undefined) {
    throw new UsageError(`--config: ${file}: ${proto} is not a setting (no setting is named so)`);
  }
  // An experiment folder's config.json works as a settings file: it names its experiment and profile.
  const { experiment, profile, ...settings } = renameSettings(spec, parsed as Record<string, unknown>);
  if (experiment !== undefined && experiment !== spec.name) {
    throw new UsageError(`--config: ${file} holds settings of ${JSON.stringify(experiment)}, not of "${spec.name}"`);
  }
  if (profile !== undefined && (typeof profile !== "string" || !Object.hasOwn(spec.profiles, profile))) {
    throw new UsageError(`--config: ${file}: profile: ${oneOf(spec, profile)}`);
  }
  return { ...(profile !== undefined ? { profile: profile as string } : {}), settings };
}

/**
 * What `argv` asks for: the help text, or validated settings and the output folder. Throws UsageError (flags,
 * files) or the schema's TypeError/RangeError (settings), each naming the flag or setting.
 */
export function parseCommandLine<S extends z.ZodObject>(
  spec: ExperimentSpec<S, Job, object, unknown, string>,
  argv: readonly string[],
  prog: string,
): CommandLine<S> {
  const flags = settingFlags(spec.schema);
  const args = parseExperimentArgs(flags, argv);
  if (args.profile !== undefined && !Object.hasOwn(spec.profiles, args.profile)) {
    throw new UsageError(`--profile: ${oneOf(spec, args.profile)}`);
  }
  const file = args.config !== undefined ? readSettingsFile(spec, args.config) : undefined;
  const profile = args.profile ?? file?.profile ?? defaultProfile(spec);
  if (args.help) {
    const summary = `${spec.title}: ${spec.summary}`;
    const profiles = profileNames(spec);
    // The profile's values as resolved: what it states, and the defaults of what it leaves out.
    const profileSettings = resolveConfig(spec, profile);
    return { help: helpText({ prog, summary, flags, profiles, profile, profileSettings }) };
  }
  // What the file and the flags hold is checked by the schema, with the other settings.
  const config = resolveConfig(spec, profile, file?.settings as never, args.settings as never) as ConfigOf<S>;
  spec.check?.(config);
  return {
    config,
    out: outFolder(args.out ?? path.join("runs", `${spec.name}-${profile}`)),
    reportOnly: args.reportOnly,
  };
}

// The output folder, checked before any work: "" would be the working folder, and one under /proc, /sys or /dev
// would hang the first mkdir (lib/io/paths.ts, the Trainer's check).
function outFolder(out: string): string {
  if (out.trim() === "") throw new UsageError(`--out: expected a folder path, got ${JSON.stringify(out)}`);
  try {
    return checkFolderPath(out, "--out");
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Runs `spec` as the command `prog` with `argv`; resolves to the exit code. */
export async function runExperimentCli<S extends z.ZodObject, J extends Job, R extends object, D, M extends string>(
  spec: ExperimentSpec<S, J, R, D, M>,
  argv: readonly string[],
  prog = `dpsm-native ${spec.name}`,
): Promise<number> {
  let line: CommandLine<S>;
  let nproc: number | undefined;
  try {
    ({ nproc, argv } = takeNproc(argv));
    line = parseCommandLine(spec, argv, prog);
  } catch (e) {
    console.error(`${spec.name}: ${(e as Error).message}\n\nusage: ${prog} --help lists every flag`);
    return 2;
  }
  if ("help" in line) {
    console.log(`${line.help}\n\n  --nproc N  train data-parallel on N processes of this machine (dpsm-native launch)`);
    return 0;
  }
  // The process group the environment names (RANK, MASTER_PORT, …), checked like any other setting.
  let place: DistributedOptions | undefined;
  try {
    place = distributedFromEnv();
  } catch (e) {
    console.error(`${spec.name}: ${(e as Error).message}`);
    return 2;
  }
  if (nproc !== undefined && nproc > 1 && !place) {
    return launch(localLaunch(nproc, [spec.name, ...argv]), (name) => name === spec.name);
  }
  const rank = place?.rank ?? 0;
  const { config, out, reportOnly } = line;
  const again = "run the same command again to continue";

  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(`\n${spec.name}: stopping at the next step boundary (checkpointing); ${again}\n`);
    controller.abort();
  };
  process.on("SIGINT", onSigint);
  try {
    const t0 = performance.now();
    const run = await runExperiment(spec, config, out, { signal: controller.signal, onlyFinished: reportOnly });
    // Rank 0 reports; the other ranks' part ends with the training.
    if (rank !== 0) return controller.signal.aborted ? 130 : 0;
    if (run.results.length === 0) {
      console.error(`${spec.name}: no finished runs yet; nothing to report`);
      return controller.signal.aborted ? 130 : 1;
    }
    const { report } = await writeReport(spec, config, run, out, buildInfo());
    const minutes = ((performance.now() - t0) / 60000).toFixed(1);
    console.log(`\n${spec.name}: ${run.results.length} runs reported in ${report} (${minutes} min this session)`);
    if (controller.signal.aborted) {
      console.log(`${spec.name}: interrupted; the report covers the finished runs; ${again}.`);
      return 130;
    }
    return 0;
  } catch (e) {
    console.error(`${spec.name}: ${(e as Error).message}`);
    return 1;
  } finally {
    process.off("SIGINT", onSigint);
  }
}

// `--nproc N` (or --nproc=N), taken out of the experiment's own flags.
function takeNproc(argv: readonly string[]): { nproc: number | undefined; argv: readonly string[] } {
  const i = argv.findIndex((a) => a === "--nproc" || a.startsWith("--nproc="));
  if (i < 0) return { nproc: undefined, argv };
  const inline = argv[i]!.startsWith("--nproc=");
  const text = inline ? argv[i]!.slice("--nproc=".length) : argv[i + 1];
  const n = text !== undefined && /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new LaunchUsageError(`--nproc: expected an integer ≥ 1, got ${JSON.stringify(text)}`);
  }
  return { nproc: n, argv: [...argv.slice(0, i), ...argv.slice(i + (inline ? 1 : 2))] };
}
