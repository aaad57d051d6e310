// The attack's queries through an encoder–decoder: the mean log-likelihood per token of one target summary given
// each source, teacher-forced through Seq2SeqModel.logits (the model's evaluation-mode forward), in batches.
import type { Seq2SeqModel } from "../models/bart.ts";
import type { Scorer } from "./textfooler.ts";

export interface ScorerOptions {
  /** a source text's ids, truncated and framed as the model's inputs are (EOS included) */
  encode: (text: string) => Int32Array;
  /** pad id of the source rows */
  padId: number;
  /** sources per forward pass */
  batchSize?: number;
}

/**
 * A Scorer for `target`: decoder ids as generate returns them (decoder start token first, then the summary,
 * EOS included when it was written); every id after the first is scored.
 */
export function seq2seqScorer(model: Seq2SeqModel, target: Int32Array, options: ScorerOptions): Scorer {
  if (target.length < 2) throw new RangeError("seq2seqScorer target: expected a start token and at least one id");
  const V = model.config.vocab_size;
  const T = target.length - 1;
  const batchSize = options.batchSize ?? 8;
  return async (sources) => {
    const out = new Float64Array(sources.length);
    for (let begin = 0; begin < sources.length; begin += batchSize) {
      const chunk = sources.slice(begin, begin + batchSize).map((s) => options.encode(s));
      const B = chunk.length;
      const S = Math.max(...chunk.map((ids) => ids.length));
      const ids = new Int32Array(B * S).fill(options.padId);
      const mask = new Int32Array(B * S);
      chunk.forEach((row, b) => {
        ids.set(row, b * S);
        mask.fill(1, b * S, b * S + row.length);
      });
      const decoderIds = new Int32Array(B * T);
      for (let b = 0; b < B; b++) decoderIds.set(target.subarray(0, T), b * T);
      const logits = model.logits({ ids, mask, length: S, batch: B, decoderIds, decoderLength: T });
      for (let b = 0; b < B; b++) {
        let sum = 0;
        for (let t = 0; t < T; t++) {
          const row = logits.subarray((b * T + t) * V, (b * T + t + 1) * V);
          let max = -Infinity;
          for (let v = 0; v < V; v++) if (row[v]! > max) max = row[v]!;
          let z = 0;
          for (let v = 0; v < V; v++) z += Math.exp(row[v]! - max);
          sum += row[target[t + 1]!]! - max - Math.log(z);
        }
        out[begin + b] = sum / T;
      }
      // Yield between forward passes, so that a long attack leaves the event loop room.
      await new Promise((r) => setImmediate(r));
    }
    return out;
  };
}
