// The model a job of experiment 2 starts from when it has no checkpoint yet: the pretraining run's, and the
// efficiency audit's for a model pretrained here.
import { Seq2SeqModel } from "../../models/bart.ts";
import type { Exp2Config } from "./config.ts";
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
