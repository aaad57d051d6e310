// npm run bench:fused-loss — the fused DPSM loss against the seed's composite formulation (log_softmax, exp,
// one_hot, squared error, sum; autograd backward), in the same process, forward and forward+backward (the kernel
// alone, fused_loss with no autograd, beside the autograd op models call), with
// the extra peak memory each path needs beyond the logits and the gradient, and the floor: the bytes that must
// move over the copy bandwidth measured in this run. Then the LM head + loss fused
// (native/core/loss/fused_linear_loss.h, chunks of tokens) against the unfused head (the whole N × V logits,
// then the fused loss with its gradient in place): forward+backward time and peak memory side by side. Last, where
// a Python torch is importable, the anchors (bench/fused_loss_torch.py) as further columns of both tables.
//
//   npm run bench:fused-loss -- [--sizes 2048x50257,8192x50257] [--iters 3] [--device cpu|cuda|all]
//                               [--head 2048x768x50257] [--head-chunk-mb 64] [--json FILE] [--no-python]
//                               [--python-budget-s 600]
// An empty --sizes or --head ("") leaves that part out.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

import { probes } from "../dev/testing-addon.ts";
// lib/ by module, not through lib/index.ts: pack.ts bundles this file (bench/gpu-verify), and the whole public API
// would bring the charts' native binary (@resvg), which esbuild cannot bundle.
import { buildInfo } from "../lib/native.ts";
import { writeJsonAtomic } from "../lib/io/atomic.ts";
import { median } from "../lib/metrics/stats.ts";
import { fmt, formatTable } from "../lib/report/table.ts";

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
    // no Python case starts later than this many seconds after the benchmark started (the device tool's calls are
    // 10 minutes); the Python columns come after this process's own rows
    "python-budget-s": { type: "string", default: "600" },
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
const benchStarted = Date.now();
const pythonBudgetS = Number(args["python-budget-s"]);
if (!(pythonBudgetS > 0)) fail(`--python-budget-s: expected a number > 0, got "${args["python-budget-s"]}"`);
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
const MB = 1024 * 1024;
const DTYPE_BYTES: Record<string, number> = { float32: 4, bfloat16: 2 };

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

interface PyTiming {
  key: string;
  impl: string;
  ms?: number[];
  extraPeakBytes?: number;
  peakBytes?: number;
  error?: string;
}
interface PyOut {
  versions: Record<string, string | null>;
  loss: PyTiming[];
  head: PyTiming[];
}
const PY_LOSS_IMPLS = ["eager", "compile", "liger", "quack"] as const;
const PY_HEAD_IMPLS = ["liger-flce", "cce"] as const;

const lossCases = devices.flatMap((device) =>
  (device === "cuda" ? ["float32", "bfloat16"] : ["float32"]).flatMap((dtype) =>
    sizes.flatMap(({ rows, vocab }) =>
      [false, true].map((backward) => ({
        key: `${device}/${dtype}/${rows}x${vocab}/${backward ? "fwd+bwd" : "fwd"}`,
        device,
        dtype,
        rows,
        vocab,
        backward,
      })),
    ),
  ),
);
const headCases = devices.flatMap((device) =>
  (device === "cuda" ? [false, true] : [false]).flatMap((bf16) =>
    heads.map(({ rows, dim, vocab }) => ({
      key: `${device}/${bf16}/${rows}x${dim}x${vocab}`,
      device,
      bf16,
      rows,
      dim,
      vocab,
    })),
  ),
);

// Every Python column in one process (torch imported once), after this one's rows and with its cached device
// memory released, so the two never hold the device's memory at once. Its results come line by line, so a run cut
// at --python-budget-s keeps what it measured.
function pythonTimings(): PyOut | undefined {
  if (!python || (lossCases.length === 0 && headCases.length === 0)) return undefined;
  const pythonLeftS = Math.max(10, Math.round(pythonBudgetS - (Date.now() - benchStarted) / 1000));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dpsm-bench-"));
  try {
    const file = path.join(dir, "cases.json");
    const lines = path.join(dir, "results.jsonl");
    // The cases in the order that matters most when time is short: forward+backward first, bf16 before fp32.
    const rank = (c: { backward?: boolean; dtype?: string; bf16?: boolean }) =>
      (c.backward === false ? 2 : 0) + (c.dtype === "float32" || c.bf16 === false ? 1 : 0);
    writeJsonAtomic(file, {
      iters,
      warmup: Math.max(warmup, 2),
      alpha: LOSS.alpha,
      seed: 1,
      budgetS: pythonLeftS,
      loss: [...lossCases].sort((a, b) => rank(a) - rank(b)),
      head: [...headCases].sort((a, b) => rank(a) - rank(b)),
    });
    process.stdout.write(
      `python torch ${python.version}: ${lossCases.length} loss and ${headCases.length} head cases…\n`,
    );
    const r = spawnSync(python.exe, [SCRIPT, file, lines], {
      encoding: "utf8",
      stdio: ["ignore", "ignore", "inherit"],
      // past its budget by the case in flight at most a minute
      timeout: (pythonLeftS + 60) * 1000,
    });
    if (r.status !== 0)
      console.error(`  (python torch stopped: ${r.signal ?? `exit ${r.status}`}; its results so far are kept)`);
    if (!fs.existsSync(lines)) return undefined;
    const records = fs
      .readFileSync(lines, "utf8")
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as PyTiming & { kind: string; versions?: Record<string, string | null> });
    const info = records.find((x) => x.kind === "info");
    return {
      versions: info?.versions ?? {},
      loss: records.filter((x) => x.kind === "loss"),
      head: records.filter((x) => x.kind === "head"),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
// Filled after this process's own rows (saveJson, called before then, writes it as null).
let py: PyOut | undefined = undefined;
const pyFor = (list: PyTiming[] | undefined, key: string, impl: string) =>
  list?.find((t) => t.key === key && t.impl === impl);

// The floor's rate: each device's copy bandwidth (bytes read + written), measured here, in this process.
const bandwidth: Record<string, number> = {};
for (const device of devices) {
  const bytes = device === "cuda" ? 2 * 1024 * MB : 256 * MB;
  bandwidth[device] = await probes.copyBandwidth({ device, bytes, iters: 10 });
  console.log(`${device}: copy bandwidth ${fmt(bandwidth[device]! / 1e9, 1)} GB/s (read + written, ${bytes / MB} MB)`);
}

interface Row {
  key: string;
  device: string;
  dtype: string;
  rows: number;
  vocab: number;
  pass: "forward" | "forward+backward";
  /** the bytes that must move (the logits read once; forward+backward: the gradient written once) over bandwidth */
  floorMs: number;
  fusedMs: number;
  /** the gradient written into the logits (forward+backward only: the forward pass is the same) */
  inplaceMs?: number;
  /** the kernel alone (fused_loss: the loss, and with backward the gradient, in one call; no autograd) */
  kernelMs: number;
  kernelAllMs: number[];
  compositeMs: number;
  speedup: number;
  fusedExtraMB: number;
  inplaceExtraMB?: number;
  compositeExtraMB: number;
  python: Record<string, { ms?: number; extraMB?: number; error?: string }>;
  fusedAllMs: number[];
  compositeAllMs: number[];
  /** why the composite could not run (e.g. out of memory) */
  compositeError?: string;
}

const results: Row[] = [];
const headResults: HeadRow[] = [];
console.log(
  `fused DPSM loss vs the composite formulation (${LOSS.kind}, α = ${LOSS.alpha}); libtorch ${info.torchVersion}, ` +
    `${info.threads} threads, CPU kernel ${info.cpuIsa}${info.cuda ? `, CUDA devices ${info.cudaDeviceCount}` : ""}` +
    `${python ? `; python torch ${python.version} (${python.exe})` : "; no python torch found"}; median of ${iters}`,
);
for (const c of lossCases) {
  const { device, dtype, rows, vocab, backward } = c;
  const base = { rows, vocab, dtype: dtype as "float32", device, ...LOSS, backward, iters, warmup, seed: 1 };
  const pass = backward ? "forward+backward" : "forward";
  process.stdout.write(`  ${device} ${dtype} ${rows}×${vocab} ${pass}: kernel… `);
  const kernel = await probes.timeLoss({ ...base, path: "kernel" });
  process.stdout.write("fused… ");
  const fused = await probes.timeLoss({ ...base, path: "fused" });
  let inplace: Awaited<ReturnType<typeof probes.timeLoss>> | undefined;
  if (backward) {
    process.stdout.write("in place… ");
    inplace = await probes.timeLoss({ ...base, path: "fused-inplace" });
  }
  process.stdout.write("composite… ");
  // The composite holds several N × V intermediates (an int64 one-hot among them): at the largest sizes it can
  // run out of device memory where the fused path does not. That is a result, not the end of the run.
  let compositeError: string | undefined;
  const composite = await probes.timeLoss({ ...base, path: "composite" }).catch((e: unknown) => {
    compositeError = (e instanceof Error ? e.message : String(e)).split("\n")[0]!;
    return { ms: [NaN], extraPeakBytes: NaN };
  });
  const bytes = rows * vocab * DTYPE_BYTES[dtype]! * (backward ? 2 : 1);
  const row: Row = {
    key: c.key,
    device,
    dtype,
    rows,
    vocab,
    pass,
    floorMs: (bytes / bandwidth[device]!) * 1000,
    fusedMs: median(fused.ms),
    kernelMs: median(kernel.ms),
    kernelAllMs: kernel.ms,
    compositeMs: median(composite.ms),
    speedup: median(composite.ms) / median(fused.ms),
    fusedExtraMB: fused.extraPeakBytes / MB,
    compositeExtraMB: composite.extraPeakBytes / MB,
    python: {},
    fusedAllMs: fused.ms,
    compositeAllMs: composite.ms,
    ...(inplace ? { inplaceMs: median(inplace.ms), inplaceExtraMB: inplace.extraPeakBytes / MB } : {}),
    ...(compositeError ? { compositeError } : {}),
  };
  results.push(row);
  saveJson(); // row by row: a run cut short keeps what it measured
  console.log(
    `kernel ${fmt(row.kernelMs)} ms, op ${fmt(row.fusedMs)} ms${row.inplaceMs !== undefined ? ` (in place ${fmt(row.inplaceMs)})` : ""}, floor ` +
      `${fmt(row.floorMs)} ms; composite ${compositeError ? `failed: ${compositeError}` : `${fmt(row.compositeMs)} ms`}`,
  );
}

interface HeadRow {
  key: string;
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
  python: Record<string, { ms?: number; peakMB?: number; error?: string }>;
  fusedAllMs: number[];
  unfusedAllMs: number[];
}

if (heads.length > 0) {
  console.log(
    `\nLM head + loss, forward+backward: fused (chunks of tokens) vs unfused (N × V logits); median of ${iters}`,
  );
}
for (const c of headCases) {
  const { device, bf16, rows, dim, vocab } = c;
  const chunkBytes = Math.round(headChunkMB * MB);
  const base = { rows, dim, vocab, device, bf16, ...LOSS, iters, warmup, seed: 1, chunkBytes };
  const dtype = bf16 ? "bf16 autocast" : "float32";
  process.stdout.write(`  ${device} ${dtype} ${rows}×${dim}→${vocab}: fused… `);
  const fused = await probes.timeLinearLoss({ ...base, path: "fused" });
  process.stdout.write("unfused… ");
  const unfused = await probes.timeLinearLoss({ ...base, path: "unfused" });
  const row: HeadRow = {
    key: c.key,
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
    python: {},
    fusedAllMs: fused.ms,
    unfusedAllMs: unfused.ms,
  };
  headResults.push(row);
  saveJson();
  console.log(
    `${fmt(row.fusedMs)} ms, ${fmt(row.fusedPeakMB, 0)} MB vs ${fmt(row.unfusedMs)} ms, ${fmt(row.unfusedPeakMB, 0)} MB`,
  );
}

// The Python columns, after this process's own rows, with the device's cache handed back first.
await probes.releaseCachedMemory();
py = pythonTimings();
for (const row of results) {
  for (const impl of PY_LOSS_IMPLS) {
    const t = pyFor(py?.loss, row.key, impl);
    if (t) row.python[impl] = t.ms ? { ms: median(t.ms), extraMB: t.extraPeakBytes! / MB } : { error: t.error };
  }
}
for (const row of headResults) {
  for (const impl of PY_HEAD_IMPLS) {
    const t = pyFor(py?.head, row.key, impl);
    if (t) row.python[impl] = t.ms ? { ms: median(t.ms), peakMB: t.peakBytes! / MB } : { error: t.error };
  }
}
saveJson();

const pyImpls = PY_LOSS_IMPLS.filter((impl) => results.some((r) => r.python[impl]));
const pyMs = (r: Row, impl: string) => r.python[impl]?.ms;
// What names a row in both tables (time, memory).
const KEY_COLUMNS = [
  { header: "device", align: "left" },
  { header: "dtype", align: "left" },
  { header: "N × V", align: "left" },
  { header: "pass", align: "left" },
] as const;
const keyCells = (r: Row) => [r.device, r.dtype, `${r.rows} × ${r.vocab}`, r.pass];
if (results.length > 0) {
  // Time: the floor, our paths and each anchor, with the best fused path's share of the floor.
  const best = (r: Row) => Math.min(r.fusedMs, r.inplaceMs ?? Infinity);
  const table = formatTable(
    [
      ...KEY_COLUMNS,
      "floor ms",
      "kernel ms",
      "floor / kernel",
      "fused ms",
      "in place ms",
      "floor / best fused",
      "composite C++ ms",
      ...pyImpls.map((impl) => `${impl}${impl === "liger" || impl === "quack" ? " (CE)" : ""} ms`),
      ...(pyImpls.includes("compile") ? ["compile / best fused"] : []),
    ],
    results.map((r) => [
      ...keyCells(r),
      fmt(r.floorMs, 2),
      fmt(r.kernelMs, 2),
      `${fmt((100 * r.floorMs) / r.kernelMs, 0)} %`,
      fmt(r.fusedMs, 2),
      r.inplaceMs === undefined ? "–" : fmt(r.inplaceMs, 2),
      `${fmt((100 * r.floorMs) / best(r), 0)} %`,
      r.compositeError ? "failed" : fmt(r.compositeMs, 2),
      ...pyImpls.map((impl) =>
        pyMs(r, impl) === undefined ? (r.python[impl]?.error ? "failed" : "–") : fmt(pyMs(r, impl), 2),
      ),
      ...(pyImpls.includes("compile")
        ? [pyMs(r, "compile") === undefined ? "–" : `${fmt(pyMs(r, "compile")! / best(r), 2)}×`]
        : []),
    ]),
  );
  console.log(`\n${table}\n`);
  const bw = Object.entries(bandwidth).map(([d, b]) => `${d} ${fmt(b / 1e9, 1)} GB/s`);
  console.log(
    `floor: the logits read once (forward+backward: and the gradient written once) at the copy bandwidth measured in this run (${bw.join(", ")});`,
  );
  console.log(
    "(CE): cross-entropy only, the same bytes and less arithmetic than the DPSM loss timed in the other columns.",
  );
  console.log(
    "kernel: fused_loss alone (loss, and gradient with backward, in one call); fused and in place: the autograd op " +
      "models call, forward then backward.",
  );
  const errors = results.flatMap((r) =>
    Object.entries(r.python)
      .filter(([, v]) => v.error)
      .map(([impl, v]) => `${impl}: ${v.error}`),
  );
  for (const e of [...new Set(errors)]) console.log(`failed: ${e}`);

  // Memory: extra peak beyond the logits and the gradient.
  const memTable = formatTable(
    [
      ...KEY_COLUMNS,
      "fused extra MB",
      "in place extra MB",
      "composite C++ extra MB",
      ...pyImpls.map((impl) => `${impl} extra MB`),
    ],
    results.map((r) => [
      ...keyCells(r),
      fmt(r.fusedExtraMB, 0),
      r.inplaceExtraMB === undefined ? "–" : fmt(r.inplaceExtraMB, 0),
      r.compositeError ? "failed" : fmt(r.compositeExtraMB, 0),
      ...pyImpls.map((impl) => fmt(r.python[impl]?.extraMB, 0)),
    ]),
  );
  console.log(`\n${memTable}\n`);
  console.log(
    "extra MB: peak memory during one pass beyond the logits and (forward+backward) the gradient (in place and",
  );
  console.log(
    "Liger write it into the logits); CPU: resident-set high-water mark; CUDA: the caching allocator's peak.",
  );
}

if (headResults.length > 0) {
  const anchors = PY_HEAD_IMPLS.filter((impl) => headResults.some((r) => r.python[impl]));
  const cell = (r: HeadRow, impl: string, what: "ms" | "peakMB") =>
    r.python[impl]?.[what] !== undefined
      ? fmt(r.python[impl]![what], what === "ms" ? 1 : 0)
      : r.python[impl]?.error
        ? "failed"
        : "–";
  const headTable = formatTable(
    [
      { header: "device", align: "left" },
      { header: "dtype", align: "left" },
      { header: "N × d → V", align: "left" },
      "fused ms",
      "unfused ms",
      "unfused / fused",
      ...anchors.map((impl) => `${impl} (CE, bf16) ms`),
      "fused peak MB",
      "unfused peak MB",
      ...anchors.map((impl) => `${impl} peak MB`),
      "logits MB",
    ],
    headResults.map((r) => [
      r.device,
      r.dtype,
      `${r.rows} × ${r.dim} → ${r.vocab}`,
      fmt(r.fusedMs),
      fmt(r.unfusedMs),
      `${fmt(r.unfusedMs / r.fusedMs, 2)}×`,
      ...anchors.map((impl) => cell(r, impl, "ms")),
      fmt(r.fusedPeakMB, 0),
      fmt(r.unfusedPeakMB, 0),
      ...anchors.map((impl) => cell(r, impl, "peakMB")),
      fmt(r.logitsMB, 0),
    ]),
  );
  console.log(`\n${headTable}\n`);
  console.log("peak MB: memory during one forward+backward beyond what was held before it (hidden states, weight),");
  console.log(
    "∂hidden and ∂weight included; logits MB: the N × V logits the unfused head holds (its gradient in place).",
  );
  if (anchors.length > 0) {
    console.log(
      "liger-flce (Liger-Kernel's fused linear cross-entropy), cce (cut-cross-entropy): CE only, on bf16 hidden states " +
        "and weight (ours: fp32 weights under bf16 autocast, the trainer's way); the same on every row of a device.",
    );
  }
}

function saveJson(): void {
  if (!args.json) return;
  writeJsonAtomic(args.json, {
    date: new Date().toISOString(),
    loss: LOSS,
    iters,
    warmup,
    build: info,
    pythonTorch: python?.version ?? null,
    pythonPackages: py?.versions ?? null,
    bandwidth,
    results,
    head: headResults,
  });
}
if (args.json) console.log(`wrote ${args.json}`);
