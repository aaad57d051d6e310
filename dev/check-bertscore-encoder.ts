// Does the package read a RoBERTa folder it did not make the fixture from? lib/metrics/bertscore.ts against
// bert_score.score's P/R/F written by dev/bertscore-encoder-reference.py (same pairs, models, layers, idf), and the
// mean F of related against mismatched pairs: the trained encoder of dev/train-bertscore-encoder.py should tell
// them apart better than the random-initialised one of test/fixtures/bertscore/roberta.
//   node --import tsx dev/check-bertscore-encoder.ts REFERENCE.json
import fs from "node:fs";

import { BertScorer } from "../lib/metrics/bertscore.ts";

interface Reference {
  pairs: { set: string; candidate: string; reference: string }[];
  cases: {
    model: string;
    layer: number;
    idf: boolean;
    hash: string;
    precision: number[];
    recall: number[];
    f1: number[];
  }[];
}
const file = process.argv[2];
if (!file) throw new Error("usage: node --import tsx dev/check-bertscore-encoder.ts REFERENCE.json");
const ref = JSON.parse(fs.readFileSync(file, "utf8")) as Reference;
const cands = ref.pairs.map((p) => p.candidate);
const refs = ref.pairs.map((p) => p.reference);
const sets = [...new Set(ref.pairs.map((p) => p.set))];
const maxDiff = (a: readonly number[], b: readonly number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
const meanOf = (f: readonly number[], set: string) => {
  const xs = f.filter((_, i) => ref.pairs[i]!.set === set);
  return xs.reduce((a, b) => a + b, 0) / xs.length;
};

let worst = 0;
for (const c of ref.cases) {
  const scorer = await BertScorer.load({ model: c.model, layer: c.layer, idf: c.idf });
  try {
    const ours = await scorer.score(cands, refs);
    const d = Math.max(maxDiff(ours.precision, c.precision), maxDiff(ours.recall, c.recall), maxDiff(ours.f1, c.f1));
    worst = Math.max(worst, d);
    const means = sets.map((s) => `${s} ${meanOf(ours.f1, s).toFixed(4)}`).join(", ");
    console.log(`${c.model} layer ${c.layer} idf ${c.idf}: max |Δ| P/R/F vs bert-score ${d.toExponential(2)}`);
    console.log(`  hash ours ${ours.hash} | bert-score ${c.hash}`);
    console.log(`  mean F: ${means}`);
    // Per reference summary: does its own dialogue score above the next one?
    const own = ours.f1.filter((_, i) => ref.pairs[i]!.set === "dialogue");
    const other = ours.f1.filter((_, i) => ref.pairs[i]!.set === "dialogue-shifted");
    const wins = own.filter((f, i) => f > other[i]!).length;
    console.log(
      `  own dialogue above the next one for ${wins}/${own.length} summaries; gap self − shifted ${(meanOf(ours.f1, "self") - meanOf(ours.f1, "shifted")).toFixed(4)}, ` +
        `dialogue − dialogue-shifted ${(meanOf(ours.f1, "dialogue") - meanOf(ours.f1, "dialogue-shifted")).toFixed(4)}`,
    );
  } finally {
    scorer.dispose();
  }
}
console.log(`worst |Δ| over ${ref.cases.length} cases × ${ref.pairs.length} pairs: ${worst.toExponential(2)}`);
if (!(worst <= 1e-5)) process.exitCode = 1;
