// npm run bench:fused-loss — the fused DPSM loss against the seed's composite formulation (log_softmax, exp,
// one_hot, squared error, sum; autograd backward), in the same process, forward and forward+backward, with
// the extra peak memory each path needs beyond the logits and the gradient. Where a Python torch is
// importable, the same composite in Python torch is a third column. Then the LM head + loss fused
// (native/core/loss/fused_linear_loss.h, chunks of tokens) against the unfused head (the whole N × V logits,
// then the fused loss with its gradient in place): forward+backward time and peak memory side by side.
//
//   npm run bench:fused-loss -- [--sizes 2048x50257,8192x50257] [--iters 3] [--device cpu|cuda|all]
//                               [--head 2048x768x50257] [--head-chunk-mb 64] [--json FILE] [--no-python]
// An empty --sizes or --head ("") leaves that part out.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { parseArgs } from "node:util";

import { buildInfo } from "../lib/native.ts";
import { writeJsonAtomic } from "../lib/io/atomic.ts";
import { type LossTiming, probes } from "../test/helpers/testing-addon.ts";
import { fmt, formatTable, median } from "../lib/report/table.ts";

const { values: args } = parseArgs({
  options: {
    sizes: { type: "string", default: "2048x50257,8192x50257" },
    // GPT-2 small's head (d = 768, V = 50,257) at 2 × 1024 tokens: what two CPU cores time in seconds; the
    // issue's batch, 32 × 1024, is --head 32768x768x50257 on a GPU.
    head: { type: "string", default: "2048x768x50257" },
    // the fused head's bound on one chunk's logits (native/core/loss/fused_linear_loss.h's default: 64)
    "head-chunk-mb": { type: "string", default: "64" },
    iters: { type: "string", default: "3" },
    warmup: { type: "string", default: "1" },
    device: { type: "string", default: "all" },
    json: { type: "string" },
    "no-python": { type: "boolean", default: false },
  },
});

function fail(message: string): never {
  console.error(`bench:fused-loss: ${message}`);
  process.exit(2);
}

const sizes = (args.sizes === "" ? [] : args.sizes.split(",")).map((s) => {
  const m = /^(\d+)x(\d+)$/.exec(s.trim());
  if (!m) fail(`--sizes: expected ROWSxVOCAB[,ROWSxVOCAB…] or "", got "${s}"`);
  return { rows: Number(m[1]), vocab: Number(m[2]) };
});
const heads =
  args.head === ""
    ? []
    : args.head.split(",").map((s) => {
        const m = /^(\d+)x(\d+)x(\d+)$/.exec(s.trim());
        if (!m) fail(`--head: expected TOKENSxDIMxVOCAB[,…] or "", got "${s}"`);
        return { rows: Number(m[1]), dim: Number(m[2]), vocab: Number(m[3]) };
      });
const headChunkMB = Number(args["head-chunk-mb"]);
if (!(headChunkMB > 0)) fail(`--head-chunk-mb: expected a number > 0, got "${args["head-chunk-mb"]}"`);
const iters = Number(args.iters);
const warmup = Number(args.warmup);
if (!Number.isInteger(iters) || iters < 1) fail(`--iters: expected an integer >= 1, got "${args.iters}"`);
if (!Number.isInteger(warmup) || warmup < 0) fail(`--warmup: expected an integer >= 0, got "${args.warmup}"`);
if (!["cpu", "cuda", "all"].includes(args.device)) fail(`--device: expected cpu, cuda or all, got "${args.device}"`);

const info = buildInfo();
const devices: string[] = [];
if (args.device !== "cuda") devices.push("cpu");
if (args.device !== "cpu" && info.cudaDeviceCount > 0) devices.push("cuda");
if (args.device === "cuda" && devices.length === 0) fail("--device cuda: this build sees no CUDA device");

// The loss benchmarked: DPSM at α = 0.5 (both CE and Brier terms live, as mid-warm-up).
const LOSS = { kind: "dpsm", schedule: "fixed", alpha: 0.5 } as const;
const SCRIPT = path.join(path.dirname(new URL(import.meta.url).pathname), "fused_loss_torch.py");

function findPython(): { exe: string; version: string } | undefined {
  if (args["no-python"]) return undefined;
  // DPSM_PYTHON: the Python that gpu:verify's run.sh found torch in.
  for (const exe of [process.env.DPSM_PYTHON, "python3", "/usr/bin/python3"].filter((e): e is string => !!e)) {
    const r = spawnSync(exe, ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8" });
    if (r.status === 0) return { exe, version: r.stdout.trim() };
  }
  return undefined;
}
const python = findPython();

function pythonTiming(
  rows: number,
  vocab: number,
  dtype: string,
  device: string,
  backward: boolean,
): LossTiming | undefined {
  if (!python) return undefined;
  const r = spawnSync(
    python.exe,
    [
      SCRIPT,
      String(rows),
      String(vocab),
      dtype,
      device,
      String(iters),
      String(warmup),
      backward ? "1" : "0",
      String(LOSS.alpha),
      "1",
    ],
    { encoding: "utf8", maxBuffer: 1 << 20 },
  );
  if (r.status !== 0) {
    console.error(`  (python torch failed: ${(r.stderr || String(r.error)).trim().split("\n").pop()})`);
    return undefined;
  }
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as LossTiming;
}

interface Row {
  device: string;
  dtype: string;
  rows: number;
  vocab: number;
  pass: "forward" | "forward+backward";
  fusedMs: number;
  compositeMs: number;
  speedup: number;
  pythonMs?: number;
  fusedExtraMB: number;
  compositeExtraMB: number;
  pythonExtraMB?: number;
  fusedAllMs: number[];
  compositeAllMs: number[];
  /** why the composite could not run (e.g. out of memory) */
  compositeError?: string;
}

const MB = 1024 * 1024;
const results: Row[] = [];
console.log(
  `fused DPSM loss vs the composite formulation (${LOSS.kind}, α = ${LOSS.alpha}); libtorch ${info.torchVersion}, ` +
    `${info.threads} threads, CPU kernel ${info.cpuIsa}${info.cuda ? `, CUDA devices ${info.cudaDeviceCount}` : ""}` +
    `${python ? `; python torch ${python.version} (${python.exe})` : "; no python torch found"}; median of ${iters}`,
);
for (const device of devices) {
  const dtypes = device === "cuda" ? ["float32", "bfloat16"] : ["float32"];
  for (const dtype of dtypes) {
    for (const { rows, vocab } of sizes) {
      for (const backward of [false, true]) {
        const base = { rows, vocab, dtype: dtype as "float32", device, ...LOSS, backward, iters, warmup, seed: 1 };
        const pass = backward ? "forward+backward" : "forward";
        process.stdout.write(`  ${device} ${dtype} ${rows}×${vocab} ${pass}: fused… `);
        const fused = await probes.timeLoss({ ...base, path: "fused" });
        process.stdout.write("composite… ");
        // The composite holds several N × V intermediates (an int64 one-hot among them): at the largest sizes it
        // can run out of device memory where the fused path does not. That is a result, not the end of the run.
        let compositeError: string | undefined;
        const composite = await probes.timeLoss({ ...base, path: "composite" }).catch((e: unknown) => {
          compositeError = (e instanceof Error ? e.message : String(e)).split("\n")[0]!;
          return { ms: [NaN], extraPeakBytes: NaN };
        });
        process.stdout.write(python ? "python torch…" : "");
        const py = pythonTiming(rows, vocab, dtype, device, backward);
        const row: Row = {
          device,
          dtype,
          rows,
          vocab,
          pass,
          fusedMs: median(fused.ms),
          compositeMs: median(composite.ms),
          speedup: median(composite.ms) / median(fused.ms),
          fusedExtraMB: fused.extraPeakBytes / MB,
          compositeExtraMB: composite.extraPeakBytes / MB,
          fusedAllMs: fused.ms,
          compositeAllMs: composite.ms,
          ...(compositeError ? { compositeError } : {}),
        };
        if (py) {
          row.pythonMs = median(py.ms);
          row.pythonExtraMB = py.extraPeakBytes / MB;
        }
        results.push(row);
        console.log(
          `${fmt(row.fusedMs)} ms vs ${compositeError ? `composite failed: ${compositeError}` : `${fmt(row.compositeMs)} ms`}` +
            ` (${fmt(row.speedup, 2)}×)`,
        );
      }
    }
  }
}

if (results.length > 0) {
  const table = formatTable(
    [
      { header: "device", align: "left" },
      { header: "dtype", align: "left" },
      { header: "N × V", align: "left" },
      { header: "pass", align: "left" },
      "fused ms",
      "composite ms",
      "composite / fused",
      ...(python ? ["python torch ms", "python / fused"] : []),
      "fused extra MB",
      "composite extra MB",
      ...(python ? ["python extra MB"] : []),
    ],
    results.map((r) => [
      r.device,
      r.dtype,
      `${r.rows} × ${r.vocab}`,
      r.pass,
      fmt(r.fusedMs),
      fmt(r.compositeMs),
      `${fmt(r.speedup, 2)}×`,
      ...(python ? [fmt(r.pythonMs), r.pythonMs ? `${fmt(r.pythonMs / r.fusedMs, 2)}×` : "–"] : []),
      fmt(r.fusedExtraMB, 0),
      fmt(r.compositeExtraMB, 0),
      ...(python ? [fmt(r.pythonExtraMB, 0)] : []),
    ]),
  );
  console.log(`\n${table}\n`);
  console.log("extra MB: peak memory during one pass beyond the logits and (forward+backward) the gradient;");
  console.log("CPU: resident-set high-water mark; CUDA: the caching allocator's peak allocated bytes.");
}

interface HeadRow {
  device: string;
  dtype: string;
  rows: number;
  dim: number;
  vocab: number;
  fusedMs: number;
  unfusedMs: number;
  fusedPeakMB: number;
  unfusedPeakMB: number;
  logitsMB: number;
  chunkMB: number;
  fusedAllMs: number[];
  unfusedAllMs: number[];
}
const headResults: HeadRow[] = [];
if (heads.length > 0) {
  console.log(
    `\nLM head + loss, forward+backward: fused (chunks of tokens) vs unfused (N × V logits); median of ${iters}`,
  );
}
for (const device of devices) {
  for (const bf16 of device === "cuda" ? [false, true] : [false]) {
    for (const { rows, dim, vocab } of heads) {
      const chunkBytes = Math.round(headChunkMB * MB);
      const base = { rows, dim, vocab, device, bf16, ...LOSS, iters, warmup, seed: 1, chunkBytes };
      const dtype = bf16 ? "bf16 autocast" : "float32";
      process.stdout.write(`  ${device} ${dtype} ${rows}×${dim}→${vocab}: fused… `);
      const fused = await probes.timeLinearLoss({ ...base, path: "fused" });
      process.stdout.write("unfused… ");
      const unfused = await probes.timeLinearLoss({ ...base, path: "unfused" });
      const row: HeadRow = {
        device,
        dtype,
        rows,
        dim,
        vocab,
        fusedMs: median(fused.ms),
        unfusedMs: median(unfused.ms),
        fusedPeakMB: fused.peakBytes / MB,
        unfusedPeakMB: unfused.peakBytes / MB,
        logitsMB: (rows * vocab * (bf16 ? 2 : 4)) / MB,
        chunkMB: headChunkMB,
        fusedAllMs: fused.ms,
        unfusedAllMs: unfused.ms,
      };
      headResults.push(row);
      console.log(
        `${fmt(row.fusedMs)} ms, ${fmt(row.fusedPeakMB, 0)} MB vs ${fmt(row.unfusedMs)} ms, ${fmt(row.unfusedPeakMB, 0)} MB`,
      );
    }
  }
}
if (headResults.length > 0) {
  const headTable = formatTable(
    [
      { header: "device", align: "left" },
      { header: "dtype", align: "left" },
      { header: "N × d → V", align: "left" },
      "fused ms",
      "unfused ms",
      "unfused / fused",
      "fused peak MB",
      "unfused peak MB",
      "logits MB",
    ],
    headResults.map((r) => [
      r.device,
      r.dtype,
      `${r.rows} × ${r.dim} → ${r.vocab}`,
      fmt(r.fusedMs),
      fmt(r.unfusedMs),
      `${fmt(r.unfusedMs / r.fusedMs, 2)}×`,
      fmt(r.fusedPeakMB, 0),
      fmt(r.unfusedPeakMB, 0),
      fmt(r.logitsMB, 0),
    ]),
  );
  console.log(`\n${headTable}\n`);
  console.log("peak MB: memory during one forward+backward beyond what was held before it (hidden states, weight),");
  console.log(
    "∂hidden and ∂weight included; logits MB: the N × V logits the unfused head holds (its gradient in place).",
  );
}

if (args.json) {
  const out = {
    date: new Date().toISOString(),
    loss: LOSS,
    iters,
    warmup,
    build: info,
    pythonTorch: python?.version ?? null,
    results,
    head: headResults,
  };
  writeJsonAtomic(args.json, out);
  console.log(`wrote ${args.json}`);
}
