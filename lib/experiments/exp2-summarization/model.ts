// The model a job of experiment 2 starts from when it has no checkpoint yet: the pretraining run's, and the
// efficiency audit's for a model pretrained here; and the lengths a checkpoint's positions bound.
import fs from "node:fs";
import path from "node:path";

import { Seq2SeqModel } from "../../models/bart.ts";
import { type Exp2Config, positionedLengths } from "./config.ts";
import type { Exp2ModelData } from "./data.ts";

/** A randomly initialised model of the pretraining preset, its vocabulary and special ids the tokenizer's. */
export async function freshModel(c: Exp2Config, d: Exp2ModelData): Promise<Seq2SeqModel> {
  const p = c.pretrain;
  if (p === false) throw new Error(`exp2: ${d.name} has no pretraining settings`);
  const special = d.tokenizer.specialTokens;
  return Seq2SeqModel.createAsync({
    preset: p.preset,
    seed: p.seed,
    device: c.device,
    config: {
      vocab_size: d.tokenizer.vocabSize,
      pad_token_id: special.pad,
      eos_token_id: special.eos,
      decoder_start_token_id: special.decoderStart ?? special.eos,
    },
  });
}

/**
 * The lengths a model's positions bound (sources, summaries, generated summaries: config.ts positionedLengths)
 * within each checkpoint's max_position_embeddings, read from <checkpointDir>/<model>/config.json before the
 * run's config.json is pinned: beyond it the runs would train for minutes and fail, and the corrected command
 * would then meet "another configuration". A missing or unreadable file is left for loading to name (data.ts
 * checkpointOf); a model pretrained here is checked by the schema (its preset's positions).
 */
export function checkPositions(c: Exp2Config): void {
  if (c.checkpointDir === undefined) return;
  for (const name of c.models) {
    const file = path.resolve(c.checkpointDir, name, "config.json");
    let positions: unknown;
    try {
      // A regular file only: reading a FIFO would block.
      if (!fs.statSync(file).isFile()) continue;
      positions = (JSON.parse(fs.readFileSync(file, "utf8")) as { max_position_embeddings?: unknown })
        .max_position_embeddings;
    } catch {
      continue;
    }
    if (typeof positions !== "number" || !Number.isSafeInteger(positions) || positions < 1) continue;
    for (const [at, length] of positionedLengths(c)) {
      if (length > positions) {
        throw new RangeError(
          `exp2 config.${at}: must not exceed ${positions}, the max_position_embeddings of ${file}, got ${length}`,
        );
      }
    }
  }
}
