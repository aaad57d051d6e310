// npm run bench:data-parallel — one process against N ranks started by `dpsm-native launch`, on the same global
// batch: tokens/s, ms per step and the gradient bytes each step all-reduces, side by side in one run. On a
// machine of few cores this measures the cost of the collectives and of sharing the cores, not a speed-up: the
// ranks split the same cores the single process uses (DPSM_NUM_THREADS = cores / N each).
//
//   npm run bench:data-parallel -- [--nproc 2] [--steps 30] [--size tiny] [--batch 16] [--context 128] [--json FILE]
import { spawnSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

import { buildInfo, formatTable, GPT2Model, Trainer } from "../lib/index.ts";
import { writeJsonAtomic } from "../lib/io/atomic.ts";
import { median } from "../lib/metrics/stats.ts";
import { packageRoot } from "../lib/native.ts";

const { values: args } = parseArgs({
  options: {
    nproc: { type: "string", default: "2" },
    steps: { type: "string", default: "30" },
    size: { type: "string", default: "tiny" },
    batch: { type: "string", default: "16" },
    context: { type: "string", default: "128" },
    json: { type: "string" },
    // internal: train in this process (under the launcher: as one rank) and print the record
    child: { type: "boolean", default: false },
  },
});

function int(name: string, min: number): number {
  const v = Number(args[name as keyof typeof args]);
  if (!Number.isInteger(v) || v < min) {
    console.error(
      `bench:data-parallel: --${name}: expected an integer >= ${min}, got "${String(args[name as keyof typeof args])}"`,
    );
    process.exit(2);
  }
  return v;
}
const [nproc, steps, batch, context] = [int("nproc", 2), int("steps", 5), int("batch", 1), int("context", 8)];
if (batch % nproc !== 0) {
  console.error(`bench:data-parallel: --batch ${batch} must divide among --nproc ${nproc} ranks`);
  process.exit(2);
}

interface Record {
  rank: number;
  worldSize: number;
  threads: number;
  stepMs: number;
  tokensPerSecond: number;
  parameters: number;
  finalLoss: number;
}

if (args.child) {
  const worldSize = Number(process.env.WORLD_SIZE ?? 1);
  const trainer = new Trainer({
    model: { size: args.size as "tiny", seed: 0, resid_pdrop: 0 },
    loss: { kind: "dpsm", schedule: "linear", warmupSteps: Math.ceil(steps / 2) },
    data: { source: "wikitext-2", contextLength: context },
    batchSize: batch / worldSize,
    maxSteps: steps,
    lr: 3e-3,
    evalEvery: steps,
    evalMaxSequences: 8,
    seed: 0,
    progress: false,
    log: false,
  });
  const fit = await trainer.fit();
  // The first steps warm caches and allocators: the median of the rest.
  const rest = fit.history.steps.slice(Math.min(5, steps - 1));
  const model = trainer.model as GPT2Model;
  const record: Record = {
    rank: trainer.distributed.rank,
    worldSize,
    threads: buildInfo().threads,
    stepMs: median(rest.map((s) => s.stepMs)),
    tokensPerSecond: median(rest.map((s) => s.tokensPerSecond)),
    parameters: model.parameterCount,
    finalLoss: fit.history.steps.at(-1)!.loss,
  };
  if (record.rank === 0) process.stdout.write(`RECORD ${JSON.stringify(record)}\n`);
  process.exit(0);
}

function recordOf(stdout: string, what: string): Record {
  const line = stdout.split("\n").find((l) => l.startsWith("RECORD "));
  if (!line) throw new Error(`${what}: no record in its output:\n${stdout}`);
  return JSON.parse(line.slice("RECORD ".length)) as Record;
}

const script = path.join(packageRoot, "bench", "data-parallel.ts");
const common = ["--steps", String(steps), "--size", args.size, "--batch", String(batch), "--context", String(context)];
process.stderr.write(`one process (${os.availableParallelism()} threads)…\n`);
const one = spawnSync(process.execPath, ["--import", "tsx", script, "--child", ...common], { encoding: "utf8" });
if (one.status !== 0) throw new Error(`one process failed:\n${one.stderr}`);
process.stderr.write(`${nproc} ranks (dpsm-native launch)…\n`);
const launched = spawnSync(
  process.execPath,
  [
    path.join(packageRoot, "bin", "dpsm-native.mjs"),
    "launch",
    "--nproc-per-node",
    String(nproc),
    "--master-port",
    "29531",
    "--",
    script,
    "--child",
    ...common,
  ],
  { encoding: "utf8" },
);
if (launched.status !== 0) throw new Error(`${nproc} ranks failed:\n${launched.stdout}${launched.stderr}`);
const runs = [recordOf(one.stdout, "one process"), recordOf(launched.stdout, `${nproc} ranks`)];

const gradientMB = (runs[0]!.parameters * 4) / 2 ** 20;
const here = buildInfo();
console.log(
  `\n${args.size} GPT-2 (${(runs[0]!.parameters / 1e6).toFixed(1)} M parameters), global batch ${batch} × ${context} ` +
    `tokens of WikiText-2, ${steps} steps (median of steps 6 on); ${here.cpuModel}, ${os.availableParallelism()} ` +
    `cores, libtorch ${here.torchVersion}, Gloo on loopback\n`,
);
console.log(
  formatTable(
    [
      { header: "processes", align: "left" },
      "threads each",
      "ms / step",
      "tokens / s",
      "vs one process",
      "all-reduced per step (MB)",
      "final loss",
    ],
    runs.map((r) => [
      r.worldSize === 1 ? "1" : `${r.worldSize} ranks`,
      String(r.threads),
      r.stepMs.toFixed(1),
      Math.round(r.tokensPerSecond).toLocaleString("en-US"),
      `${(r.tokensPerSecond / runs[0]!.tokensPerSecond).toFixed(2)}×`,
      r.worldSize === 1 ? "–" : gradientMB.toFixed(1),
      r.finalLoss.toFixed(4),
    ]),
  ),
);
if (args.json) writeJsonAtomic(args.json, { nproc, steps, batch, context, size: args.size, runs, build: here });
