// The inputs dev/source-dependence-probe.py reads, from any summarisation set: its first 16 validation pairs as
// exp2 encodes them (GPT-2 BPE, EOS-terminated, truncated as the run truncates them). dev/denoise-checkpoints.ts
// writes DialogSum's; this one wrote AESLC's for docs/results/2026-12-07-source-dependence.md, section 5.
//   DPSM_DATA_DIR=… node --import tsx dev/summarization-probe-ids.ts --source aeslc --out FILE
//     [--max-source 192] [--max-target 32]
import fs from "node:fs";
import { parseArgs } from "node:util";
import { prepareSummarizationData, sliceExamples, SUMMARIZATION_SOURCES } from "../lib/data/summarization.ts";
import { gpt2Seq2SeqTokenizer } from "../lib/tokenizers/index.ts";

const { values } = parseArgs({
  options: {
    source: { type: "string" },
    out: { type: "string" },
    "max-source": { type: "string", default: "192" },
    "max-target": { type: "string", default: "32" },
  },
});
const source = SUMMARIZATION_SOURCES.find((s) => s === values.source);
if (!source) throw new Error(`--source: expected one of ${SUMMARIZATION_SOURCES.join(", ")}, got ${values.source}`);
if (!values.out) throw new Error("--out: expected the file to write");
const count = (name: "max-source" | "max-target") => {
  const x = Number(values[name]);
  if (!Number.isInteger(x) || x < 2) throw new Error(`--${name}: expected an integer ≥ 2, got ${values[name]}`);
  return x;
};

const g = gpt2Seq2SeqTokenizer();
const text = { id: "gpt2", encode: (t: string) => g.encode(t, { addSpecialTokens: false }) };
const pairs = sliceExamples(
  await prepareSummarizationData({
    source,
    split: "validation",
    tokenizer: text,
    maxSourceTokens: count("max-source"),
    maxTargetTokens: count("max-target"),
    eosId: g.specialTokens.eos,
    padId: g.specialTokens.pad,
    cache: false,
  }),
  0,
  16,
);
const rows = (t: Int32Array, lengths: Int32Array, width: number) =>
  Array.from(lengths, (n, i) => Array.from(t.subarray(i * width, i * width + n)));
fs.writeFileSync(
  values.out,
  JSON.stringify({
    src: rows(pairs.sourceTokens, pairs.sourceLengths, pairs.maxSource),
    tgt: rows(pairs.targetTokens, pairs.targetLengths, pairs.maxTarget),
  }),
);
