// A checkpoint folder an exp2 run can fine-tune (its `checkpointDir/<model>`), at a size a test affords.
import fs from "node:fs";
import path from "node:path";

import { Seq2SeqModel, type Seq2SeqCreateOptions } from "../../lib/models/bart.ts";
import { packageRoot } from "../../lib/native.ts";

/**
 * Saves at `dir` a BART of bart-base's vocabulary and special ids, shrunk to d_model 24 and one layer each side
 * (random weights, seed 1), beside BART's real tokenizer files (test/fixtures/tokenizers/bart); `config` overrides
 * the model's settings (e.g. a smaller vocabulary).
 */
export function saveTinyBart(dir: string, config: Seq2SeqCreateOptions["config"] = {}): void {
  const tokenizerDir = path.join(packageRoot, "test", "fixtures", "tokenizers", "bart");
  Seq2SeqModel.create({
    preset: "bart-base",
    config: {
      d_model: 24,
      encoder_layers: 1,
      decoder_layers: 1,
      encoder_ffn_dim: 32,
      decoder_ffn_dim: 32,
      ...config,
    },
    seed: 1,
  }).save(dir);
  for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]) {
    fs.copyFileSync(path.join(tokenizerDir, f), path.join(dir, f));
  }
}
