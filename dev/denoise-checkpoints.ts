// Experiment 2's denoising pretraining of the tiny preset (quick's data and optimiser settings, through the
// package's Trainer) keeping a copy of the checkpoint every `--every` steps, and the DialogSum validation ids that
// dev/source-dependence-probe.py reads them with (docs/results/2026-12-07-source-dependence.md: when does the
// encoder's output collapse to one vector?). Quick's own run keeps only last/ and best/, hence this script.
//   node --import tsx dev/denoise-checkpoints.ts --out DIR [--lr 2e-3] [--warmup 20] [--steps 500] [--batch 16]
//     [--clip 1] [--every 20]      (one thread: the step loop is the comparison, not the speed)
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { prepareDenoisingData } from "../lib/data/denoising.ts";
import { prepareSummarizationData, sliceExamples } from "../lib/data/summarization.ts";
import { Seq2SeqModel } from "../lib/models/bart.ts";
import { gpt2Seq2SeqTokenizer } from "../lib/tokenizers/index.ts";
import { Trainer } from "../lib/trainer.ts";

const { values } = parseArgs({
  options: {
    out: { type: "string" },
    lr: { type: "string", default: "2e-3" },
    warmup: { type: "string", default: "20" },
    steps: { type: "string", default: "500" },
    batch: { type: "string", default: "16" },
    clip: { type: "string", default: "1" },
    every: { type: "string", default: "20" },
  },
});
if (!values.out) throw new Error("--out: expected the run's folder");
const out = path.resolve(values.out);
const num = (name: keyof typeof values) => {
  const x = Number(values[name]);
  if (!Number.isFinite(x) || x < 0) throw new Error(`--${name}: expected a number ≥ 0, got ${values[name]}`);
  return x;
};
fs.mkdirSync(out, { recursive: true });

const g = gpt2Seq2SeqTokenizer();
const tokenizer = { ...g, id: "gpt2-seq2seq" };
const eos = g.specialTokens.eos;
const pad = g.specialTokens.pad;

// The probe's inputs: 16 DialogSum validation dialogues and summaries as exp2 encodes them (GPT-2 BPE).
const text = { id: "gpt2", encode: (t: string) => g.encode(t, { addSpecialTokens: false }) };
const dialogues = sliceExamples(
  await prepareSummarizationData({
    source: "dialogsum",
    split: "validation",
    tokenizer: text,
    maxSourceTokens: 96,
    maxTargetTokens: 40,
    eosId: eos,
    padId: pad,
    cache: false,
  }),
  0,
  16,
);
const rows = (t: Int32Array, lengths: Int32Array, width: number) =>
  Array.from(lengths, (n, i) => Array.from(t.subarray(i * width, i * width + n)));
fs.writeFileSync(
  path.join(out, "probe-ids.json"),
  JSON.stringify({
    src: rows(dialogues.sourceTokens, dialogues.sourceLengths, dialogues.maxSource),
    tgt: rows(dialogues.targetTokens, dialogues.targetLengths, dialogues.maxTarget),
  }),
);

// Quick's pretraining data (lib/experiments/exp2-summarization/config.ts, PROFILES.quick.pretrain).
const denoising = { name: "wikitext-2" as const, tokenizer, maxTokens: 64, maskRatio: 0.3, poissonLambda: 3 };
const data = (split: "train" | "valid") =>
  prepareDenoisingData({ ...denoising, permuteSentences: true, seed: 0, split, copies: 1 });
const train = await data("train");
const valid = sliceExamples(await data("valid"), 0, 64);
const model = await Seq2SeqModel.createAsync({
  preset: "tiny",
  seed: 0,
  device: "cpu",
  config: { vocab_size: g.vocabSize, pad_token_id: pad, eos_token_id: eos, decoder_start_token_id: eos },
});
const trainer = new Trainer({
  model,
  loss: { kind: "ce" },
  data: { train, valid },
  batchSize: num("batch"),
  maxSteps: num("steps"),
  evalEvery: num("every"),
  lr: num("lr"),
  lrWarmupSteps: num("warmup"),
  minLrRatio: 0.1,
  weightDecay: 0.1,
  betas: [0.9, 0.95],
  gradClip: num("clip"),
  threads: 1,
  progress: false,
  tensorboard: false,
  runDir: path.join(out, "run"),
});
trainer.on("checkpoint", (p) => {
  if (path.basename(p.path) !== "last") return;
  fs.cpSync(p.path, path.join(out, `ckpt-${String(p.step).padStart(4, "0")}`), { recursive: true });
  console.log(`checkpoint ${p.step}`);
});
const r = await trainer.fit();
console.log(
  `done: ${r.steps} steps; validation ppl ${r.history.evals.map((e) => `${e.step}: ${e.metrics.ppl.toFixed(1)}`).join(", ")}`,
);
