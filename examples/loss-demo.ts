// The fused DPSM loss on real data, end to end in under a minute on a laptop CPU.
//
// A unigram language model over GPT-2 BPE — one logit per token type, the same for every position — is
// fitted with Adam on real WikiText-2 (train split), once per loss: CE, Brier, DPSM with a linear and a
// cosine warm-up, and DPSM at a fixed α = 0.5. Every step sends a batch of real targets through the
// fused kernel (loss + gradient in one pass, α read off the step inside the kernel); every few steps the
// kernel's per-token statistics on real validation tokens give PPL, ECE and Brier. The exact answer is
// known here — the smoothed training-set token frequencies — so the table also shows where each loss
// is headed. (The GPT-2 experiments of exp-1 replace this demo as the main job.)
//
//   npm run quickstart                      # installs and builds, then runs this
//   npx tsx examples/loss-demo.ts [--steps 300] [--batch 256] [--lr 0.1] [--eval-tokens 1024] [--json FILE]
import path from "node:path";
import { parseArgs } from "node:util";

import {
  buildInfo,
  dataDir,
  DPSMLoss,
  encodeGpt2,
  expectedCalibrationError,
  formatTable,
  GPT2_VOCAB_SIZE,
  readWikiText,
  type LossConfigInput,
  writeJsonAtomic,
} from "../lib/index.ts";

const { values: args } = parseArgs({
  options: {
    steps: { type: "string", default: "300" },
    batch: { type: "string", default: "256" },
    lr: { type: "string", default: "0.1" },
    "eval-tokens": { type: "string", default: "1024" },
    "eval-every": { type: "string", default: "50" },
    seed: { type: "string", default: "0" },
    json: { type: "string" },
  },
});

function intArg(name: keyof typeof args, min: number): number {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < min) {
    console.error(`loss-demo: --${name}: expected an integer >= ${min}, got "${String(args[name])}"`);
    process.exit(2);
  }
  return v;
}
const steps = intArg("steps", 1);
const batch = intArg("batch", 1);
const evalTokens = intArg("eval-tokens", 1);
const evalEvery = intArg("eval-every", 1);
const seed = intArg("seed", 0);
const lr = Number(args.lr);
if (!(lr > 0) || !Number.isFinite(lr)) {
  console.error(`loss-demo: --lr: expected a number > 0, got "${args.lr}"`);
  process.exit(2);
}
const V = GPT2_VOCAB_SIZE;
const warmup = Math.max(1, Math.round(0.3 * steps));

const VARIANTS: { name: string; config: LossConfigInput }[] = [
  { name: "ce", config: { kind: "ce" } },
  { name: "brier", config: { kind: "brier" } },
  { name: "dpsm-linear", config: { kind: "dpsm", schedule: "linear", warmupSteps: warmup } },
  { name: "dpsm-cosine", config: { kind: "dpsm", schedule: "cosine", warmupSteps: warmup } },
  { name: "dpsm-fixed-0.5", config: { kind: "dpsm", schedule: "fixed", alpha: 0.5 } },
];

/** A number to one decimal, or "–" when not finite. */
const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "–");

function mulberry32(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const info = buildInfo();
console.log(
  `dpsm-native: libtorch ${info.torchVersion}, ${info.cuda ? "CUDA" : "CPU"}, ${info.threads} threads, kernel ${info.cpuIsa}`,
);
const wt2 = path.join(dataDir(), "wikitext-2");
let t0 = performance.now();
const train = encodeGpt2(readWikiText(wt2, "train"));
const valid = encodeGpt2(readWikiText(wt2, "valid"));
console.log(
  `WikiText-2 (${wt2}) → GPT-2 BPE: train ${train.length.toLocaleString()} tokens, valid ` +
    `${valid.length.toLocaleString()} tokens (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
);

// The exact optimum of every proper score here: the training frequencies (add-one smoothed).
const counts = new Float64Array(V).fill(1);
for (const y of train) counts[y]! += 1;
const total = counts.reduce((a, b) => a + b, 0);
const optimum = Float32Array.from(counts, (c) => Math.log(c / total));

const evalRand = mulberry32(seed + 99);
const evalTargets = Int32Array.from({ length: evalTokens }, () => valid[Math.floor(evalRand() * valid.length)]!);
const trainLogits = new Float32Array(batch * V);
const evalLogits = new Float32Array(evalTokens * V);

interface EvalPoint {
  step: number;
  alpha: number;
  seconds: number;
  ppl: number;
  ece10: number;
  brier: number;
  accuracy: number;
}

function evaluate(z: Float32Array, loss: DPSMLoss): Omit<EvalPoint, "step" | "seconds" | "alpha"> {
  for (let r = 0; r < evalTokens; r++) evalLogits.set(z, r * V);
  const s = loss.forward(evalLogits, evalTargets, { vocabSize: V, grad: false, stats: true }).stats!;
  let nll = 0;
  let brier = 0;
  let hits = 0;
  for (let i = 0; i < evalTokens; i++) {
    nll += s.nll[i]!;
    brier += 1 - 2 * s.pY[i]! + s.sqNorm[i]!;
    hits += s.hit[i]!;
  }
  return {
    ppl: Math.exp(nll / evalTokens),
    ece10: expectedCalibrationError(s.maxP, s.hit, 10),
    brier: brier / evalTokens,
    accuracy: hits / evalTokens,
  };
}

const best = evaluate(optimum, new DPSMLoss({ kind: "ce" }));
console.log(`unigram optimum (train frequencies) on the validation sample: PPL ${fmt(best.ppl)}; uniform: PPL ${V}`);

const runs: { name: string; curve: EvalPoint[]; seconds: number }[] = [];
for (const variant of VARIANTS) {
  const loss = new DPSMLoss(variant.config);
  const rand = mulberry32(seed); // same batches for every loss
  const z = new Float32Array(V);
  const m = new Float64Array(V);
  const v = new Float64Array(V);
  const dz = new Float64Array(V);
  const targets = new Int32Array(batch);
  const curve: EvalPoint[] = [];
  t0 = performance.now();
  for (let step = 0; step <= steps; step++) {
    if (step % evalEvery === 0 || step === steps) {
      const e = evaluate(z, loss);
      const point = { step, alpha: loss.alphaAt(), seconds: (performance.now() - t0) / 1000, ...e };
      curve.push(point);
      process.stdout.write(
        `\r[${variant.name.padEnd(14)}] step ${String(step).padStart(4)}/${steps}  α ${point.alpha.toFixed(2)}  ` +
          `valid PPL ${fmt(point.ppl).padStart(8)}  ECE-10 ${point.ece10.toFixed(4)}  Brier ${point.brier.toFixed(4)}`,
      );
    }
    if (step === steps) break;
    for (let i = 0; i < batch; i++) targets[i] = train[Math.floor(rand() * train.length)]!;
    for (let r = 0; r < batch; r++) trainLogits.set(z, r * V);
    // The gradient overwrites the tiled logits; summing its rows gives d(loss)/dz of the shared logits.
    const g = loss.forward(trainLogits, targets, { vocabSize: V, inPlace: true }).grad!;
    dz.fill(0);
    for (let r = 0; r < batch; r++) {
      const o = r * V;
      for (let k = 0; k < V; k++) dz[k]! += g[o + k]!;
    }
    const t = step + 1;
    for (let k = 0; k < V; k++) {
      m[k] = 0.9 * m[k]! + 0.1 * dz[k]!;
      v[k] = 0.999 * v[k]! + 0.001 * dz[k]! * dz[k]!;
      z[k]! -= (lr * (m[k]! / (1 - 0.9 ** t))) / (Math.sqrt(v[k]! / (1 - 0.999 ** t)) + 1e-8);
    }
    loss.advance(); // one optimiser step: α moves on
  }
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(`  (${seconds.toFixed(1)} s)\n`);
  runs.push({ name: variant.name, curve, seconds });
}

const checkpoints = [
  ...new Set([Math.min(evalEvery, steps), Math.round(steps / 2 / evalEvery) * evalEvery, steps]),
].filter((s) => s > 0);
const pointAt = (curve: EvalPoint[], step: number) => curve.find((p) => p.step === step) ?? curve[curve.length - 1]!;
console.log(
  `\nUnigram GPT-2-BPE model on WikiText-2, Adam lr ${lr}, batch ${batch} real tokens, ${steps} steps ` +
    `(DPSM warm-up ${warmup} steps); metrics on ${evalTokens} real validation tokens (same for every loss)\n`,
);
console.log(
  formatTable(
    [
      { header: "loss", align: "left" },
      ...checkpoints.map((s) => `PPL @${s}`),
      "final ECE-10",
      "final Brier",
      "final acc",
      "s",
    ],
    [
      ...runs.map((r) => [
        r.name,
        ...checkpoints.map((s) => fmt(pointAt(r.curve, s).ppl)),
        pointAt(r.curve, steps).ece10.toFixed(4),
        pointAt(r.curve, steps).brier.toFixed(4),
        pointAt(r.curve, steps).accuracy.toFixed(3),
        r.seconds.toFixed(1),
      ]),
      [
        "optimum (train freq.)",
        ...checkpoints.map((s) => (s === steps ? fmt(best.ppl) : "")),
        best.ece10.toFixed(4),
        best.brier.toFixed(4),
        best.accuracy.toFixed(3),
        "",
      ],
    ],
  ),
);
console.log(
  `\nPPL: exp(mean NLL) over GPT-2 BPE tokens; ECE-10: 10 equal-width bins of the top-1 probability; ` +
    `Brier: Σ_k (p_k − y_k)² per token.\nThe optimum of every proper score here is the training frequencies: PPL ${fmt(best.ppl)} on the same tokens.`,
);

if (args.json) {
  writeJsonAtomic(args.json, { steps, batch, lr, warmup, evalTokens, optimum: best, runs });
  console.log(`wrote ${args.json}`);
}
