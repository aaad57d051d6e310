// A tiny GPT-2 trained a few CE steps on WikiText-2 (33-token windows), for tests that need a model whose
// predictions are neither uniform nor degenerate: an untrained one puts every token's max p in ECE's lowest bin
// and has no finite best temperature.
import { GPT2Model, type PackedTokens, prepareLanguageModelData, Trainer } from "../../lib/index.ts";

export async function briefTrainedGpt2(shape: {
  n_embd: number;
  n_layer: number;
  seed: number;
  steps: number;
}): Promise<{ model: GPT2Model; train: PackedTokens; valid: PackedTokens }> {
  const { n_embd, n_layer, seed, steps } = shape;
  const model = GPT2Model.create({ vocab_size: 50257, n_positions: 64, n_embd, n_layer, n_head: 2, seed });
  const train = await prepareLanguageModelData({ source: "wikitext-2", split: "train", contextLength: 33 });
  const valid = await prepareLanguageModelData({ source: "wikitext-2", split: "valid", contextLength: 33 });
  await new Trainer({
    model,
    loss: { kind: "ce" },
    data: { train, valid },
    maxSteps: steps,
    batchSize: 8,
    lr: 3e-3,
    evalEvery: steps,
    evalMaxSequences: 2,
    progress: false,
  }).fit();
  return { model, train, valid };
}
