// The source-dependence gate's measurement (source-gate.ts decides from it): a CE run's test split summarised
// again with every example's source swapped for another example's, each summary scored against the references
// of the example it stands in for. A summariser that ignores its source scores the same either way.
import { writeFileAtomic } from "../../io/atomic.ts";
import type { SummarizationArrays } from "../../data/summarization.ts";
import { rougeCorpus } from "../../metrics/rouge.ts";
import type { Seq2SeqModel } from "../../models/bart.ts";
import type { Seq2SeqTokenizer } from "../../tokenizers/index.ts";
import type { Exp2Config } from "./config.ts";
import type { EvalSet } from "./data.ts";

/**
 * The source each example is summarised from in the shuffled-source pass: example i gets the source of example
 * (i + ⌊n/2⌋) mod n, a derangement for n ≥ 2 that pairs examples far apart in the file (neighbouring test
 * examples can share a topic). Deterministic, so every run and seed is checked against the same pairing.
 */
export function shuffledSourceOrder(n: number): number[] {
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`shuffledSourceOrder: n must be an integer ≥ 2, got ${n}`);
  const shift = Math.floor(n / 2);
  return Array.from({ length: n }, (_, i) => (i + shift) % n);
}

/** The encoder inputs of `arrays` with example i's source replaced by that of example order[i]. */
export function permutedSources(
  arrays: Pick<SummarizationArrays, "sourceTokens" | "sourceLengths" | "maxSource">,
  order: readonly number[],
): { ids: Int32Array; mask: Int32Array; length: number } {
  const { sourceTokens, sourceLengths, maxSource: S } = arrays;
  const ids = new Int32Array(order.length * S);
  const mask = new Int32Array(order.length * S);
  order.forEach((j, i) => {
    ids.set(sourceTokens.subarray(j * S, (j + 1) * S), i * S);
    mask.fill(1, i * S, i * S + sourceLengths[j]!);
  });
  return { ids, mask, length: S };
}

/** What a CE run's last checkpoint did with shuffled sources (run-job.ts), kept in its result. */
export interface ShuffledSourceResult {
  /** ROUGE-L F of the summary written from another example's source, against this example's references */
  rougeLPerExample: number[];
}

/**
 * The gate's shuffled-source pass: `set` summarised from shuffled sources (shuffledSourceOrder), each summary
 * scored against the references of the example it stands in for; the summaries are kept beside the others.
 */
export async function shuffledSourcePass(
  c: Exp2Config,
  model: Seq2SeqModel,
  tokenizer: Seq2SeqTokenizer,
  set: EvalSet,
  summariesFile: string,
): Promise<ShuffledSourceResult> {
  const order = shuffledSourceOrder(set.records.length);
  const generated = await model.generate(permutedSources(set.arrays, order), c.generation, { batchSize: c.batchSize });
  const summaries = generated.map((ids) => tokenizer.decode(ids, { skipSpecialTokens: true }).trim());
  writeFileAtomic(
    summariesFile,
    summaries
      .map(
        (summary, i) => `${JSON.stringify({ id: set.records[i]!.id, source: set.records[order[i]!]!.id, summary })}\n`,
      )
      .join(""),
  );
  const rouge = rougeCorpus(summaries.map((candidate, i) => ({ candidate, references: set.records[i]!.references })));
  return { rougeLPerExample: rouge.pairs.map((p) => p.rougeL.fmeasure) };
}
