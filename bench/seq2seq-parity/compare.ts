// Loads a folder written by bench/seq2seq-parity/make.py and prints how far dpsm-native's fp32 logits are
// from transformers' float64 ones, with the load and forward times.
import fs from "node:fs";
import path from "node:path";

import { Seq2SeqModel } from "../../lib/index.ts";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: npx tsx bench/seq2seq-parity/compare.ts <folder written by make.py>");
  process.exit(2);
}
const e = JSON.parse(fs.readFileSync(path.join(dir, "expected-full.json"), "utf8")) as {
  input_ids: number[][];
  attention_mask: number[][];
  decoder_input_ids: number[][];
  logits: number[];
};
const t0 = performance.now();
const m = Seq2SeqModel.load(dir);
const t1 = performance.now();
const B = e.input_ids.length;
const S = e.input_ids[0]!.length;
const T = e.decoder_input_ids[0]!.length;
const source = { ids: Int32Array.from(e.input_ids.flat()), mask: Int32Array.from(e.attention_mask.flat()), length: S };
const out = m.logits({
  ...source,
  decoderIds: Int32Array.from(e.decoder_input_ids.flat()),
  batch: B,
  decoderLength: T,
});
const t2 = performance.now();
let num = 0;
let den = 0;
let abs = 0;
for (let i = 0; i < out.length; i++) {
  const d = out[i]! - e.logits[i]!;
  num += d * d;
  den += e.logits[i]! ** 2;
  abs = Math.max(abs, Math.abs(d));
}
console.log(
  `${dir}: ${m.parameterCount.toLocaleString("en-US")} parameters, logits [${B}, ${T}, ${m.config.vocab_size}]: ` +
    `rel ${Math.sqrt(num / den).toExponential(2)}, max abs ${abs.toExponential(2)}; ` +
    `load ${((t1 - t0) / 1000).toFixed(1)} s, forward ${((t2 - t1) / 1000).toFixed(1)} s`,
);
