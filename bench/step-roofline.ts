// npm run bench:step-roofline — a roofline estimate of one GPT-2 training step on named GPUs, from the step's
// recorded ATen op list (dev/step-ops.ts: the testing addon records every op while a real Trainer fits), beside the
// step times measured on an H100 (bench/gpu-verify/results/2026-11-23-h100/). Before: the step's reductions tensor
// by tensor (DPSM_STEP_REDUCTIONS=per-tensor) and the LM head in 64 MiB chunks; after: multi-tensor reductions
// (the CUDA default) and the head in one chunk (its CUDA budget: a quarter of the free memory).
//
// How: the op list of one step (bf16 autocast, as the H100 figures were measured) is recorded on this CPU at the
// real model's size for B = 2 sequences of T = 40 tokens (sizes no GPT-2 dimension takes: 12 or 16 heads, 64 per
// head, 768 or 1,024 wide), then every tensor's dimension of B·T, T or B is set to the target's (8 × 1,023: T² for
// attention follows): each op's bytes (its tensors read and written) and FLOPs (matrix products, attention) at
// the target shape. The fused LM head's per-chunk ops (inside "dpsm::head_chunk") run once per chunk on a
// chunk's rows. Each op then takes max(bytes / bandwidth, FLOPs / peak) (its own roofline); the step's device
// estimate is their sum, its host floor the launches times a per-launch cost, the estimate the larger. An
// estimate, not a measurement: the CPU's op list stands for the GPU's (the same ATen ops under autocast;
// attention is counted as libtorch's CPU kernel calls it), the fused loss kernel as the current one runs (its
// logits read twice and its gradient written once).
//
//   npm run bench:step-roofline -- [--sizes small,medium] [--batch 8] [--context 1023] [--launch-us 5]
//                                  [--json FILE]
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import { recordSteps, type StepOp, withReductions } from "../dev/step-ops.ts";
import type { RecordedTensor } from "../dev/testing-addon.ts";
import { GPT2_PRESETS, prepareLanguageModelData, Trainer } from "../lib/index.ts";
import { writeJsonAtomic } from "../lib/io/atomic.ts";
import { median } from "../lib/metrics/stats.ts";
import { packageRoot } from "../lib/native.ts";
import { fmt, formatTable } from "../lib/report/table.ts";

const { values: args } = parseArgs({
  options: {
    sizes: { type: "string", default: "small,medium" },
    batch: { type: "string", default: "8" },
    context: { type: "string", default: "1023" },
    "launch-us": { type: "string", default: "5" },
    json: { type: "string" },
  },
});
const sizes = args.sizes.split(",") as ("small" | "medium")[];
const batch = Number(args.batch);
const context = Number(args.context);
const launchSeconds = Number(args["launch-us"]) * 1e-6;
// The recorded shape: B sequences of T tokens, sizes no GPT-2 dimension takes.
const REC_B = 2;
const REC_T = 40;

// Data-sheet figures (NVIDIA H100 Tensor Core GPU data sheet, SXM5 column: 3.35 TB/s HBM3, 989 TFLOP/s dense
// bf16, 67 TFLOP/s fp32; NVIDIA A100 data sheet, 80 GB SXM column: 2,039 GB/s HBM2e, 312 TFLOP/s dense bf16,
// 19.5 TFLOP/s fp32). Dense means without the 2:4 sparsity the headline figures double.
const GPUS = [
  { name: "H100 SXM", bandwidth: 3.35e12, bf16: 989e12, fp32: 67e12 },
  { name: "A100 80GB SXM", bandwidth: 2.039e12, bf16: 312e12, fp32: 19.5e12 },
];

// Ops that move no bytes on a GPU (views, metadata, allocation without a fill).
const FREE_OPS = new Set(
  [
    "view",
    "reshape",
    "_reshape_alias",
    "_unsafe_view",
    "as_strided",
    "slice",
    "narrow",
    "select",
    "t",
    "transpose",
    "permute",
    "expand",
    "unsqueeze",
    "squeeze",
    "split",
    "split_with_sizes",
    "chunk",
    "unbind",
    "detach",
    "alias",
    "lift_fresh",
    "empty",
    "empty_like",
    "empty_strided",
    "resize_",
    "view_as",
    "contiguous",
    "stride",
    "size",
    "numel",
    "_has_compatible_shallow_copy_type",
    "is_same_size",
    "result_type",
    "resolve_conj",
    "resolve_neg",
  ].map((n) => `aten::${n}`),
);

interface Cost {
  bytes: number;
  flops: number;
  /** the dtype of a matrix product's inputs (its peak), else undefined */
  mmDtype?: string;
}

/** FLOPs of a matrix product from its inputs' shapes (0 for anything else). */
function matmulFlops(op: StepOp, s: number[][]): number {
  switch (op.name) {
    case "aten::mm":
      return 2 * s[0]![0]! * s[0]![1]! * s[1]![1]!;
    case "aten::addmm":
      return 2 * s[1]![0]! * s[1]![1]! * s[2]![1]!;
    case "aten::bmm":
      return 2 * s[0]![0]! * s[0]![1]! * s[0]![2]! * s[1]![2]!;
    case "aten::baddbmm":
      return 2 * s[1]![0]! * s[1]![1]! * s[1]![2]! * s[2]![2]!;
    default:
      if (/scaled_dot_product.*attention/.test(op.name) && s.length >= 3) {
        // q, k, v [B, H, T, D]: causal scores and weighted values, 2 × 2·B·H·T²·D / 2; backward 2.5 times that.
        const [b, h, t, d] = s[0]!;
        const forward = 2 * b! * h! * t! * t! * d!;
        return op.name.includes("backward") ? 2.5 * forward : forward;
      }
      return 0;
  }
}

/** Gives op i's descendants no cost of their own (its cost covers them); returns the last one's index. */
function skipChildren(step: readonly StepOp[], i: number, out: Cost[]): number {
  const depth = step[i]!.depth;
  let j = i;
  while (j + 1 < step.length && step[j + 1]!.depth > depth) {
    j++;
    out.push({ bytes: 0, flops: 0 });
  }
  return j;
}

/** A recorded tensor's sizes at the target shape (`rows`: a dimension of B·T, the head's chunk's rows there). */
function atTarget(sizes: number[], rows: number): number[] {
  return sizes.map((v) => (v === REC_B * REC_T ? rows : v === REC_T ? context : v === REC_B ? batch : v));
}

/** Each op's cost at the target shape: leaves only (an op's children carry its work), the fused loss as its
 * kernel; `rows` replaces the recorded B·T (the chunk's rows for the head's per-chunk ops). */
function costs(step: readonly StepOp[], chunkRows: number): Cost[] {
  const out: Cost[] = [];
  for (let i = 0; i < step.length; i++) {
    const op = step[i]!;
    const rows = op.scopes.includes("dpsm::head_chunk") ? chunkRows : batch * context;
    const bytesOf = (t: RecordedTensor) => {
      const n = t.sizes.reduce((a, b) => a * b, 1);
      return n === 0 ? 0 : (t.bytes / n) * atTarget(t.sizes, rows).reduce((a, b) => a * b, 1);
    };
    const hasChildren = i + 1 < step.length && step[i + 1]!.depth > op.depth;
    if (op.name === "dpsm::fused_loss") {
      // The logits read twice (online pass, gradient pass) and the gradient written once, in place.
      out.push({ bytes: 3 * bytesOf(op.inputs[0]!), flops: 0 });
      i = skipChildren(step, i, out); // its allocations are not traffic
      continue;
    }
    const flops = matmulFlops(
      op,
      op.inputs.map((t) => atTarget(t.sizes, rows)),
    );
    // An op whose descendants include a product (autocast's wrapper, a composite, autograd's node), or that is
    // not a product but has children, leaves the work to them; a product is counted itself, its children
    // (conjugation checks, allocation) not.
    let end = i;
    while (end + 1 < step.length && step[end + 1]!.depth > op.depth) end++;
    const productBelow = step.slice(i + 1, end + 1).some(
      (c) =>
        matmulFlops(
          c,
          c.inputs.map((t) => t.sizes),
        ) > 0,
    );
    if ((hasChildren && (flops === 0 || productBelow)) || FREE_OPS.has(op.name)) {
      out.push({ bytes: 0, flops: 0 });
      continue;
    }
    const bytes = [...op.inputs, ...op.outputs].reduce((a, t) => a + bytesOf(t), 0);
    // A 16-bit product runs at the 16-bit peak (attention's backward also takes an fp32 logsumexp).
    const half = op.inputs.some((t) => t.dtype === "BFloat16" || t.dtype === "Half");
    out.push({ bytes, flops, mmDtype: flops > 0 ? (half ? "BFloat16" : "Float") : undefined });
    if (hasChildren) i = skipChildren(step, i, out);
  }
  return out;
}

interface Estimate {
  /** the op names that move the most bytes, with their bytes */
  movers: { name: string; bytes: number }[];
  ops: number;
  launches: number;
  bytes: number;
  flops: number;
  gpus: { name: string; deviceMs: number; hostMs: number; estimateMs: number }[];
}

async function record(size: "small" | "medium", reductions: "per-tensor" | "multi-tensor") {
  const t = REC_T;
  const data = {
    train: await prepareLanguageModelData({ source: "wikitext-2", split: "train", contextLength: t + 1 }),
    valid: await prepareLanguageModelData({ source: "wikitext-2", split: "valid", contextLength: t + 1 }),
  };
  const steps = await withReductions(reductions, () =>
    recordSteps(() =>
      new Trainer({
        model: { ...GPT2_PRESETS[size] },
        loss: { kind: "dpsm", schedule: "fixed", alpha: 0.5 },
        data,
        maxSteps: 2,
        batchSize: REC_B,
        evalEvery: 2,
        evalMaxSequences: 1,
        precision: "bf16",
        progress: false,
      }).fit(),
    ),
  );
  return steps.at(-1)!;
}

function estimate(step: StepOp[], chunks: number): Estimate {
  const cost = costs(step, Math.ceil((batch * context) / chunks));
  const ops = step.map((o, i) => {
    const chunk = o.scopes.includes("dpsm::head_chunk");
    const times = chunk ? chunks : 1;
    const c = cost[i]!;
    return {
      name: o.name,
      bytes: times * c.bytes,
      flops: times * c.flops,
      dtype: c.mmDtype,
      chunk,
      leaf: c.bytes > 0 || c.flops > 0,
    };
  });
  // Launches: ops that do work, the head's per-chunk ones once per chunk.
  const launches = ops.reduce((n, o) => n + (o.leaf ? (o.chunk ? chunks : 1) : 0), 0);
  const topLevel = step.filter((o) => o.depth === 0).length;
  const byName = new Map<string, number>();
  for (const o of ops) byName.set(o.name, (byName.get(o.name) ?? 0) + o.bytes);
  const movers = [...byName.entries()].sort((x, y) => y[1] - x[1]).slice(0, 6);
  return {
    movers: movers.map(([name, bytes]) => ({ name, bytes })),
    ops: topLevel,
    launches,
    bytes: ops.reduce((a, o) => a + o.bytes, 0),
    flops: ops.reduce((a, o) => a + o.flops, 0),
    gpus: GPUS.map((g) => {
      const device = ops.reduce(
        (s, o) => s + Math.max(o.bytes / g.bandwidth, o.flops / (o.dtype === "Float" ? g.fp32 : g.bf16)),
        0,
      );
      const host = launches * launchSeconds;
      return { name: g.name, deviceMs: device * 1e3, hostMs: host * 1e3, estimateMs: Math.max(device, host) * 1e3 };
    }),
  };
}

// The measured figures: bench:train-step on the H100 (bf16, 8 × 1,023 tokens), median ms per step.
function measured(size: string): { impl: string; ms: number }[] {
  const dir = path.join(packageRoot, "bench", "gpu-verify", "results", "2026-11-23-h100");
  const file = path.join(dir, size === "medium" ? "call3-train-step-medium.json" : "call2-train-step-small.json");
  if (!fs.existsSync(file)) return [];
  const rows = (JSON.parse(fs.readFileSync(file, "utf8")) as { rows: { size: string; impl: string; ms: number[] }[] })
    .rows;
  return rows.filter((r) => r.size === size && r.ms.length > 0).map((r) => ({ impl: r.impl, ms: median(r.ms) }));
}

const results: Record<string, unknown>[] = [];

const vocab = GPT2_PRESETS.small.vocab_size;
const tokens = batch * context;
// The head's chunks at the target shape: 64 MiB of bf16 logits before (667 rows), one after (8,184 × 50,257 bf16
// is 0.82 GB, under a quarter of the free memory of an 80 GB GPU holding a GPT-2 medium step).
const chunksBefore = Math.ceil(tokens / Math.floor((64 << 20) / (vocab * 2)));
console.log(
  `# step roofline: GPT-2 ${sizes.join(", ")}, bf16, ${batch} × ${context} tokens; op lists recorded on this CPU at ${REC_B} × ${REC_T}; host floor ${args["launch-us"]} µs per launch`,
);
for (const size of sizes) {
  const table: string[][] = [];
  const notes: string[] = [];
  for (const [label, reductions, chunks] of [
    ["before (per-tensor reductions, 64 MiB head chunks)", "per-tensor", chunksBefore],
    ["after (multi-tensor reductions, one head chunk)", "multi-tensor", 1],
  ] as const) {
    const e = estimate(await record(size, reductions), chunks);
    results.push({ size, label, chunks, ...e });
    notes.push(
      `${label}: most bytes in ${e.movers.map((m) => `${m.name.replace("aten::", "")} ${fmt(m.bytes / 1e9, 1)} GB`).join(", ")}`,
    );
    for (const g of e.gpus)
      table.push([
        label,
        g.name,
        String(e.ops),
        String(e.launches),
        fmt(e.bytes / 1e9, 1),
        fmt(e.flops / 1e12, 1),
        fmt(g.deviceMs, 1),
        fmt(g.hostMs, 1),
        fmt(g.estimateMs, 1),
      ]);
  }
  console.log(`\n## GPT-2 ${size}`);
  console.log(
    formatTable(
      [
        { header: "step", align: "left" },
        { header: "GPU", align: "left" },
        "top-level ops",
        "launches",
        "GB moved",
        "TFLOP",
        "device roofline ms",
        "host floor ms",
        "estimate ms",
      ],
      table,
    ),
  );
  for (const n of notes) console.log(n);
  const m = measured(size);
  if (m.length > 0)
    console.log(
      `measured on an H100 (bench/gpu-verify/results/2026-11-23-h100, median ms per step): ${m.map((r) => `${r.impl} ${fmt(r.ms, 1)}`).join(", ")}${size === "small" ? " (the README there distrusts the small rows: another process shared the GPU)" : ""}`,
    );
}
if (args.json) writeJsonAtomic(args.json, { date: new Date().toISOString(), batch, context, results });
