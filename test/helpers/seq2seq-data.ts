// Real encoder–decoder examples for the fixture BART (test/fixtures/seq2seq/bart): DialogSum validation pairs as
// UTF-8 bytes + 3 (the fixture's vocabulary; its special ids 0..2 stay free), sources ≤ 96 and targets ≤ 40
// ids with EOS. Shared by the training tests and the kill-and-resume child process.
import path from "node:path";

import { type PreparedSummarization, prepareSummarizationData, sliceExamples } from "../../lib/data/summarization.ts";
import { packageRoot } from "../../lib/native.ts";

export const BART_FIXTURE = path.join(packageRoot, "test", "fixtures", "seq2seq", "bart");

const bytes = {
  id: "utf8-bytes+3",
  encode: (text: string) => Int32Array.from(Buffer.from(text, "utf8"), (b) => b + 3),
};

/** 96 training and 16 validation examples. */
export async function dialogsumBytes(): Promise<{ train: PreparedSummarization; valid: PreparedSummarization }> {
  const all = await prepareSummarizationData({
    source: "dialogsum",
    split: "validation",
    tokenizer: bytes,
    maxSourceTokens: 96,
    maxTargetTokens: 40,
    eosId: 2,
    padId: 1,
    cache: false,
  });
  return { train: sliceExamples(all, 0, 96), valid: sliceExamples(all, 96, 16) };
}
