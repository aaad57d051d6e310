// Experiment 1: GPT-2 from scratch on WikiText with CE, Brier and DPSM (linear, cosine, fixed α = 0.5),
// from the data to report.md with tables, curves, reliability diagrams, samples and a verdict per success
// criterion of the seed.
//
//   npm run exp1 -- --profile quick --out runs/exp1-quick      # this machine's CPU, tiny GPT-2, ≤ 15 min
//   npm run exp1 -- --profile wt2-small --out runs/exp1-small  # GPT-2 small on WikiText-2, one GPU
//   npm run exp1 -- --profile full --data-dir /data --out runs/exp1-full   # the seed's design (WikiText-103)
//   npm run exp1 -- --config my-exp1.json --out runs/mine      # every setting from a file (validated)
//
// Any setting can be overridden (--seeds 0,1,2 --max-steps 300 …, see --help). Interrupt with Ctrl-C and
// run the same command again: finished runs are skipped, the interrupted one resumes from its checkpoint.
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import { type Exp1ConfigInput, PROFILES, type Profile, resolveExp1Config } from "../lib/experiment/exp1-config.ts";
import { runExp1 } from "../lib/experiment/exp1-run.ts";
import { buildInfo } from "../lib/index.ts";
import { writeExp1Report } from "../lib/report/exp1-report.ts";

const HELP = `usage: npm run exp1 -- [--profile quick|wt2-small|full] [--out DIR] [--config FILE] [overrides]

overrides (comma-separated lists):
  --models tiny,small,medium,large   --seeds 0,1,2        --variations ce,brier,dpsm-linear,dpsm-cosine,dpsm-fixed-0.5
  --max-steps N   --batch-size N   --grad-accum N   --context-length N   --lr X   --lr-warmup N
  --eval-every N  --eval-sequences N  --test-sequences N  --ood-sequences N   --patience N
  --dpsm-warmup FRACTION   --warmup-sweep 0.05,0.2   --baselines label-smoothing,focal,ce+tempscale
  --no-label-noise   --ood ptb,tinyshakespeare,wikinews,books (or none)
  --dataset wikitext-2|wikitext-103   --data-dir DIR   --device cpu|cuda   --precision fp32|bf16   --threads N
  --report-only   (rewrite report.md from the finished runs in --out)`;

const { values: a } = parseArgs({
  options: {
    profile: { type: "string", default: "quick" },
    out: { type: "string" },
    config: { type: "string" },
    models: { type: "string" },
    seeds: { type: "string" },
    variations: { type: "string" },
    "max-steps": { type: "string" },
    "batch-size": { type: "string" },
    "grad-accum": { type: "string" },
    "context-length": { type: "string" },
    lr: { type: "string" },
    "lr-warmup": { type: "string" },
    "eval-every": { type: "string" },
    "eval-sequences": { type: "string" },
    "test-sequences": { type: "string" },
    "ood-sequences": { type: "string" },
    patience: { type: "string" },
    "dpsm-warmup": { type: "string" },
    "warmup-sweep": { type: "string" },
    baselines: { type: "string" },
    "no-label-noise": { type: "boolean", default: false },
    ood: { type: "string" },
    dataset: { type: "string" },
    "data-dir": { type: "string" },
    device: { type: "string" },
    precision: { type: "string" },
    threads: { type: "string" },
    "report-only": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (a.help) {
  console.log(HELP);
  process.exit(0);
}

function fail(message: string): never {
  console.error(`exp1: ${message}\n\n${HELP}`);
  process.exit(2);
}

// Flags become config fields as typed as the user wrote them; the schema then says what is wrong, by name.
const list = (s: string) => (s === "none" ? [] : s.split(",").map((x) => x.trim()).filter(Boolean));
const number = (s: string) => (s.trim() === "" ? NaN : Number(s));
const overrides: Record<string, unknown> = {};
let fileProfile: string | undefined;
if (a.config) {
  if (!fs.existsSync(a.config)) fail(`--config: ${a.config} not found`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(a.config, "utf8"));
  } catch (e) {
    fail(`--config: ${a.config} is not valid JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) fail(`--config: ${a.config} must hold a JSON object`);
  Object.assign(overrides, parsed);
  fileProfile = (parsed as { profile?: string }).profile;
}
const flagMap: [keyof typeof a, string, (s: string) => unknown][] = [
  ["models", "models", list],
  ["seeds", "seeds", (s) => list(s).map(number)],
  ["variations", "variations", list],
  ["max-steps", "maxSteps", number],
  ["batch-size", "batchSize", number],
  ["grad-accum", "gradAccumulation", number],
  ["context-length", "contextLength", number],
  ["lr", "lr", number],
  ["lr-warmup", "lrWarmupSteps", number],
  ["eval-every", "evalEvery", number],
  ["eval-sequences", "evalMaxSequences", number],
  ["test-sequences", "testMaxSequences", number],
  ["ood-sequences", "oodMaxSequences", number],
  ["patience", "patience", number],
  ["dpsm-warmup", "dpsmWarmup", number],
  ["warmup-sweep", "warmupSweep", (s) => list(s).map(number)],
  ["baselines", "baselines", list],
  ["ood", "ood", list],
  ["dataset", "dataset", (s) => s],
  ["data-dir", "dataDir", (s) => s],
  ["device", "device", (s) => s],
  ["precision", "precision", (s) => s],
  ["threads", "threads", number],
];
for (const [flag, field, parse] of flagMap) {
  const v = a[flag];
  if (typeof v === "string") overrides[field] = parse(v);
}
if (a["no-label-noise"]) overrides.labelNoise = false;
const profile = (fileProfile ?? a.profile) as Profile;
if (!PROFILES.includes(profile)) fail(`--profile: expected one of ${PROFILES.join(", ")}, got "${profile}"`);
delete overrides.profile;

let config;
try {
  config = resolveExp1Config(profile, overrides as Partial<Exp1ConfigInput>);
} catch (e) {
  fail((e as Error).message);
}
const out = path.resolve(a.out ?? path.join("runs", `exp1-${profile}`));

// Ctrl-C: stop at the next step boundary with a checkpoint; a second Ctrl-C quits at once.
const controller = new AbortController();
process.on("SIGINT", () => {
  if (controller.signal.aborted) process.exit(130);
  process.stderr.write("\nexp1: stopping at the next step boundary (checkpointing); run the same command again to continue\n");
  controller.abort();
});

const t0 = performance.now();
let run;
try {
  run = await runExp1(config, out, { signal: controller.signal, ...(a["report-only"] ? { onlyFinished: true } : {}) });
} catch (e) {
  console.error(`exp1: ${(e as Error).message}`);
  process.exit(1);
}
const { results, data } = run;
if (results.length === 0) {
  console.error("exp1: no finished runs yet; nothing to report");
  process.exit(controller.signal.aborted ? 130 : 1);
}
const dataNote =
  `GPT-2 BPE tokens: train ${data.train.totalTokens.toLocaleString("en-US")}, valid ${data.valid.totalTokens.toLocaleString("en-US")}, ` +
  `test ${data.test.totalTokens.toLocaleString("en-US")}`;
const { report } = await writeExp1Report(config, results, out, { build: buildInfo(), dataNote });
const minutes = ((performance.now() - t0) / 60000).toFixed(1);
console.log(`\nexp1: ${results.length} runs reported in ${report} (${minutes} min this session)`);
if (controller.signal.aborted) {
  console.log("exp1: interrupted; the report covers the finished runs. Run the same command again to continue.");
  process.exit(130);
}
