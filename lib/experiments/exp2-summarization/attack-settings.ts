// Experiment 2's attack settings (the schema config.ts embeds), apart from the attack's run (attack.ts), which
// reads the experiment's config and data: config.ts importing attack.ts would be an import cycle.
import fs from "node:fs";

import { z } from "zod";

import { AttackOptionsSchema } from "../../attack/options.ts";

export const AttackSettingsSchema = AttackOptionsSchema.extend({
  vectors: z
    .string()
    .min(1)
    .refine((f) => fs.statSync(f, { throwIfNoEntry: false })?.isFile() ?? false, "expected a word vector file")
    .optional()
    .describe(
      "word vectors in GloVe's text format (`word v1 … vd`), counter-fitted ones for TextFooler's recipe; " +
        "without them the attack is not run",
    ),
  examples: z.number().int().min(1).default(500).describe("test examples attacked: the first n of the test set"),
  batchSize: z.number().int().min(1).default(16).describe("sources per forward pass of the attack's queries"),
})
  .strict()
  .describe(
    "TextFooler on the sources of every clean run's last checkpoint (lib/attack/textfooler.ts): word " +
      "substitutions from the vectors' nearest neighbours that lower the model's likelihood of its own clean " +
      "summary, within a share of changed words and a number of queries per example",
  );
export type AttackSettings = z.output<typeof AttackSettingsSchema>;
