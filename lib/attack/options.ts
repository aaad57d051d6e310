// TextFooler's settings (textfooler.ts runs the attack), apart from the attack itself so that a schema that embeds
// them (exp2's, which the package index reaches) loads no part-of-speech tagger.
import { z } from "zod";

export const AttackOptionsSchema = z
  .object({
    candidates: z
      .number()
      .int()
      .min(1)
      .default(50)
      .describe("nearest neighbours considered per word (the recipe's max_candidates)"),
    minCosine: z
      .number()
      .min(-1)
      .max(1)
      .default(0.5)
      .describe("least cosine between a word and its replacement (the recipe's min_cos_sim)"),
    minSimilarity: z
      .number()
      .min(0)
      .max(1)
      .default(0.840845057)
      .describe(
        "least angular similarity 1 − arccos(cos)/π of the window's mean word vector before and after a swap " +
          "(the recipe's Universal Sentence Encoder threshold)",
      ),
    window: z.number().int().min(1).default(15).describe("words in the similarity window (the recipe's window_size)"),
    maxChangedShare: z
      .number()
      .gt(0)
      .max(1)
      .default(0.2)
      .describe("most words changed, as a share of the source's words"),
    maxQueries: z
      .number()
      .int()
      .min(1)
      .default(1000)
      .describe("most sources scored per example: the clean one, the deletions and every candidate"),
    posMatch: z.boolean().default(true).describe("keep the part of speech of a swapped word (wink-nlp's tags)"),
    minDrop: z
      .number()
      .min(0)
      .default(1e-4)
      .describe(
        "least drop of the target's mean log-likelihood per token (nats) for a swap to be kept: far above float32 " +
          "noise (≈ 1e-7 here), so a model that ignores its source is not attacked by rounding",
      ),
  })
  .strict();
export type AttackOptions = z.output<typeof AttackOptionsSchema>;
