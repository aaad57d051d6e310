// npm run bench:train-step — one full GPT-2 training step (forward, DPSM loss, backward, gradient clipping,
// AdamW) in dpsm-native's Trainer beside a nanoGPT-style PyTorch loop of the same shapes on the same device, in
// eager mode and under torch.compile (bench/train_step_torch.py, under a Python with PyTorch 2.x that
// bench/setup-python.sh finds or installs in a venv): ms per step, tokens/s and model FLOPs utilisation (bench/flops.ts) in one table.
// Every side trains on the same batch of WikiText-2 token ids from this package's data pipeline, with the same
// thread count, loss (DPSM at α = 0.5, both terms live) and optimiser settings.
//
// The peak the utilisation is over: on the CPU, the best fp32 rate of a large matmul measured in this run, in
// dpsm-native's libtorch (through a Python torch that loads the same library, where there is one) and in the
// venv's, whichever is higher; on CUDA, the data sheet's dense bf16 peak of the GPU found, and both sides train
// in bf16 autocast.
//
//   npm run bench:train-step -- [--sizes tiny,small] [--batch 2] [--context 129] [--steps 5] [--warmup 2]
//                               [--device cpu|cuda] [--threads N] [--no-python] [--json FILE]
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

import { buildInfo, GPT2_PRESETS, MODEL_SIZES, prepareLanguageModelData, Trainer } from "../lib/index.ts";
import { writeFileAtomic, writeJsonAtomic } from "../lib/io/atomic.ts";
import { packageRoot } from "../lib/native.ts";
import { median } from "../lib/metrics/stats.ts";
import { fmt, formatTable } from "../lib/report/table.ts";
import { gpuBf16Peak, mfu, trainFlopsPerToken } from "./flops.ts";

const { values: args } = parseArgs({
  options: {
    sizes: { type: "string" },
    batch: { type: "string" },
    context: { type: "string" },
    steps: { type: "string" },
    warmup: { type: "string" },
    device: { type: "string", default: "cpu" },
    threads: { type: "string" },
    json: { type: "string" },
    "no-python": { type: "boolean", default: false },
  },
});

function fail(message: string): never {
  console.error(`bench:train-step: ${message}`);
  process.exit(2);
}
function int(name: "batch" | "context" | "steps" | "warmup" | "threads", fallback: number, min: number): number {
  const raw = args[name];
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) fail(`--${name}: expected an integer >= ${min}, got "${raw}"`);
  return v;
}

const info = buildInfo();
const cuda = args.device === "cuda";
if (!["cpu", "cuda"].includes(args.device)) fail(`--device: expected cpu or cuda, got "${args.device}"`);
if (cuda && info.cudaDeviceCount === 0) fail("--device cuda: this build sees no CUDA device");
// The CPU defaults keep the whole run to a few minutes on a small machine; a GPU takes the real shapes.
const sizes = (args.sizes ?? (cuda ? "small,medium" : "tiny,small")).split(",").map((s) => s.trim());
for (const s of sizes) {
  if (!(MODEL_SIZES as readonly string[]).includes(s)) fail(`--sizes: "${s}" is not one of ${MODEL_SIZES.join(", ")}`);
}
const batch = int("batch", cuda ? 8 : 2, 1);
const steps = int("steps", cuda ? 20 : 5, 1);
// Two at least: torch.compile's second step still runs slower than the ones after it.
const warmup = int("warmup", cuda ? 5 : 2, 1);
const threads = int("threads", info.threads, 1);
// Rows of `context` ids: a step sees context − 1 positions per row (the last id is only a target).
const contextFor = (size: (typeof MODEL_SIZES)[number]) =>
  int("context", cuda ? GPT2_PRESETS[size].n_positions : 129, 2);
const precision = cuda ? "bf16" : "fp32";
const device = cuda ? "cuda" : "cpu";

const LOSS = { kind: "dpsm", schedule: "fixed", alpha: 0.5 } as const;
// The Trainer's defaults (lib/trainer.ts), given to both sides explicitly.
const OPTIM = { lr: 6e-4, weightDecay: 0.1, betas: [0.9, 0.95] as [number, number], eps: 1e-8, gradClip: 1 };
const SCRIPT = path.join(packageRoot, "bench", "train_step_torch.py");

interface PyResult {
  error?: string;
  ms?: number[];
  warmupMs?: number[];
  losses?: number[];
  parameters?: number;
  torch?: string;
  threads?: number;
  device?: string;
}
interface PeakResult {
  error?: string;
  flops?: number;
  n?: number;
  torch?: string;
  threads?: number;
  libtorch?: string;
  name?: string;
}

function runPython<T extends { error?: string }>(exe: string, argv: string[], env: NodeJS.ProcessEnv = {}): T {
  const r = spawnSync(exe, [SCRIPT, ...argv], {
    encoding: "utf8",
    maxBuffer: 1 << 24,
    env: { ...process.env, OMP_NUM_THREADS: String(threads), ...env },
  });
  const last = r.stdout?.trim().split("\n").pop() ?? "";
  try {
    const out = JSON.parse(last) as T;
    if (out.error) process.stderr.write(`${r.stderr.trim().split("\n").slice(-15).join("\n")}\n`);
    return out;
  } catch {
    const why = (r.stderr || String(r.error ?? `exit ${r.status}`)).trim().split("\n").pop();
    return { error: `python exited ${r.status ?? r.signal}: ${why}` } as T;
  }
}

// The venv (made or found by bench/setup-python.sh); its failure leaves the Python rows failed, with the reason.
let venvPython: string | undefined;
let venvError = "--no-python";
if (!args["no-python"]) {
  process.stderr.write("Python side: bench/setup-python.sh…\n");
  const r = spawnSync("bash", [path.join(packageRoot, "bench", "setup-python.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (r.status === 0) venvPython = r.stdout.trim().split("\n").pop();
  else venvError = `bench/setup-python.sh failed (exit ${r.status ?? r.signal})`;
}

// The peak.
interface Peak {
  flops: number;
  what: string;
  measured: { by: string; flops: number; n: number }[];
}
const realpath = (p: string) => (fs.existsSync(p) ? fs.realpathSync(p) : p);
function cpuPeak(): Peak | undefined {
  const n = "2048";
  const measured: Peak["measured"] = [];
  // A Python torch that maps the very library dpsm-native loaded measures dpsm-native's BLAS.
  for (const exe of ["/usr/bin/python3", "python3"]) {
    const r = runPython<PeakResult>(exe, ["peak", n, "5", String(threads)]);
    if (!r.error && r.libtorch && info.torchLibrary && r.libtorch === realpath(info.torchLibrary)) {
      measured.push({ by: `dpsm-native's libtorch ${info.torchVersion} (${exe})`, flops: r.flops!, n: r.n! });
      break;
    }
  }
  if (venvPython) {
    const r = runPython<PeakResult>(venvPython, ["peak", n, "5", String(threads)]);
    if (!r.error) measured.push({ by: `PyTorch ${r.torch} (${venvPython})`, flops: r.flops!, n: r.n! });
  }
  if (measured.length === 0) return undefined;
  const best = measured.reduce((a, b) => (b.flops > a.flops ? b : a));
  return {
    flops: best.flops,
    what: `measured in this run: the best fp32 ${n}² matmul, ${threads} threads, ${best.by}`,
    measured,
  };
}
function gpuPeak(): Peak | undefined {
  const name = venvPython
    ? spawnSync(venvPython, ["-c", "import torch; print(torch.cuda.get_device_name(0))"], { encoding: "utf8" })
        .stdout?.trim()
        .split("\n")
        .pop()
    : undefined;
  const peak = name ? gpuBf16Peak(name) : undefined;
  return peak && { flops: peak.flops, what: `${name}: data-sheet dense bf16 peak of the ${peak.model}`, measured: [] };
}
process.stderr.write("peak FLOP/s…\n");
const peak = cuda ? gpuPeak() : cpuPeak();

interface Row {
  size: string;
  impl: string;
  tokensPerStep: number;
  flopsPerToken: number;
  ms: number[];
  firstStepMs?: number;
  error?: string;
}
const rows: Row[] = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dpsm-train-step-"));
try {
  for (const size of sizes as (typeof MODEL_SIZES)[number][]) {
    const context = contextFor(size);
    const config = GPT2_PRESETS[size];
    if (context > config.n_positions)
      fail(`--context ${context} is more than ${size}'s ${config.n_positions} positions`);
    const tokensPerStep = batch * (context - 1);
    const flopsPerToken = trainFlopsPerToken(config, context - 1);
    const data = await prepareLanguageModelData({ source: "wikitext-2", split: "train", contextLength: context });
    if (data.sequences < batch) fail(`--batch ${batch}: WikiText-2 has only ${data.sequences} rows of ${context}`);
    const base = { size, tokensPerStep, flopsPerToken };

    process.stderr.write(`${size}: dpsm-native Trainer (${batch} × ${context - 1} tokens)…\n`);
    const trainer = new Trainer({
      model: { size, seed: 0, resid_pdrop: 0, device },
      loss: LOSS,
      data: { train: data, valid: data },
      batchSize: batch,
      maxSteps: 1,
      ...OPTIM,
      device,
      precision,
      threads,
      seed: 0,
      progress: false,
      log: false,
      distributed: false,
    });
    // timeSteps times the first `batch` rows: the same rows are exported to Python below.
    const ms = (await trainer.timeSteps([LOSS], { rounds: steps, warmupRounds: warmup })).map((r) => r[0]!);
    rows.push({ ...base, impl: "dpsm-native", ms });

    const tokensFile = path.join(tmp, `${size}.bin`);
    const exported = new Int32Array(batch * context + batch);
    exported.set(data.tokens.subarray(0, batch * context));
    exported.set(data.lengths.subarray(0, batch), batch * context);
    writeFileAtomic(tokensFile, new Uint8Array(exported.buffer));
    for (const mode of ["eager", "compile"] as const) {
      const impl = mode === "eager" ? "PyTorch eager" : "PyTorch torch.compile";
      if (!venvPython) {
        rows.push({ ...base, impl, ms: [], error: venvError });
        continue;
      }
      process.stderr.write(`${size}: ${impl}…\n`);
      const doc = {
        vocab: config.vocab_size,
        positions: config.n_positions,
        n_embd: config.n_embd,
        n_layer: config.n_layer,
        n_head: config.n_head,
        batch,
        context,
        tokensFile,
        device,
        precision,
        threads,
        mode,
        steps,
        warmup,
        ...OPTIM,
        alpha: LOSS.alpha,
        seed: 0,
      };
      // A fresh Inductor cache: the first step's time is a cold compile on every run.
      const r = runPython<PyResult>(venvPython, ["step", JSON.stringify(doc)], {
        TORCHINDUCTOR_CACHE_DIR: path.join(tmp, "inductor"),
      });
      rows.push({
        ...base,
        impl,
        ms: r.ms ?? [],
        firstStepMs: r.warmupMs?.[0],
        ...(r.error ? { error: r.error } : {}),
      });
    }
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}

const tokensPerSecond = (r: Row) => (r.ms.length ? r.tokensPerStep / (median(r.ms) / 1000) : undefined);
const ours = (size: string) => rows.find((r) => r.size === size && r.impl === "dpsm-native");
console.log(
  `\nGPT-2 training step (forward, DPSM loss α = ${LOSS.alpha}, backward, clip ${OPTIM.gradClip}, AdamW), batch ${batch}, ` +
    `WikiText-2 train rows; ${device === "cpu" ? `${info.cpuModel}, ${os.availableParallelism()} cores` : device}, ` +
    `${threads} threads each side, ${precision}; dpsm-native on libtorch ${info.torchVersion}` +
    `${venvPython ? `, PyTorch from ${venvPython}` : ""}; ${steps} timed steps after ${warmup} warm-up\n`,
);
console.log(
  formatTable(
    [
      { header: "model", align: "left" },
      { header: "implementation", align: "left" },
      "tokens / step",
      "ms / step (median)",
      { header: "min – max", align: "left" },
      "tokens / s",
      "MFU",
      "tokens/s vs dpsm-native",
      "first step ms",
    ],
    rows.map((r) => {
      const tps = tokensPerSecond(r);
      const base = tokensPerSecond(ours(r.size)!);
      if (r.error) return [r.size, r.impl, String(r.tokensPerStep), `failed: ${r.error}`, "", "", "", "", ""];
      return [
        r.size,
        r.impl,
        String(r.tokensPerStep),
        fmt(median(r.ms)),
        `${fmt(Math.min(...r.ms))} – ${fmt(Math.max(...r.ms))}`,
        tps === undefined ? "–" : Math.round(tps).toLocaleString("en-US"),
        peak && tps ? `${fmt(100 * mfu(r.flopsPerToken, tps, peak.flops), 1)} %` : "–",
        tps && base ? `${fmt(tps / base, 2)}×` : "–",
        r.firstStepMs === undefined ? "–" : fmt(r.firstStepMs, 0),
      ];
    }),
  ),
);
console.log(
  `\nMFU = (6·P + 12·L·T·E) · tokens/s / peak (bench/flops.ts: P = parameters but the position embeddings, T = ` +
    `positions per row, L layers, E width). Peak ${peak ? `${fmt(peak.flops / 1e9, 1)} GFLOP/s, ${peak.what}` : "unknown"}.`,
);
for (const m of peak?.measured ?? []) console.log(`  ${m.by}: ${fmt(m.flops / 1e9, 1)} GFLOP/s`);
console.log("first step ms: the first warm-up step (for torch.compile, the compilation).");

if (args.json) {
  writeJsonAtomic(args.json, {
    date: new Date().toISOString(),
    device,
    precision,
    batch,
    steps,
    warmup,
    threads,
    loss: LOSS,
    optim: OPTIM,
    peak,
    build: info,
    rows,
  });
  console.log(`wrote ${args.json}`);
}
