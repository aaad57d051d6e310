// What every job of experiment 2 reads, prepared once per model (its tokenizer decides the ids): the fine-tuning
// set's train/validation/test arrays, the zero-shot sets, the records behind the evaluated examples (documents
// and every reference, for ROUGE and the report), and for a model pretrained here its denoising data.
import fs from "node:fs";
import path from "node:path";

import { prepareDenoisingData } from "../../data/denoising.ts";
import { experimentDataDir } from "../../data/ensure.ts";
import { hashFile } from "../../data/cache.ts";
import {
  type PreparedSummarization,
  prepareSummarizationData,
  type SummarizationArrays,
  type SummarizationRecord,
  sliceExamples,
  type SummarizationSource,
  summarizationSplit,
} from "../../data/summarization.ts";
import { gpt2Seq2SeqTokenizer, loadTokenizer, type Seq2SeqTokenizer } from "../../tokenizers/index.ts";
import type { Exp2Config } from "./config.ts";

/** Examples evaluated and summarised, with the records they came from (same order). */
export interface EvalSet {
  /** e.g. "dialogsum/test (jsonl)" */
  label: string;
  arrays: SummarizationArrays;
  records: SummarizationRecord[];
  /** examples in the whole split (`arrays` holds its first testMaxExamples or transferMaxExamples, 0: all) */
  total: number;
}

export interface Exp2ModelData {
  name: string;
  /** the Hugging Face folder it is loaded from; absent: pretrained here */
  checkpoint?: string;
  tokenizer: Seq2SeqTokenizer;
  train: PreparedSummarization;
  valid: PreparedSummarization;
  test: EvalSet;
  transfer: Partial<Record<SummarizationSource, EvalSet>>;
  pretrain?: { train: SummarizationArrays; valid: SummarizationArrays; maskedShare: number };
}

export type Exp2Data = Record<string, Exp2ModelData>;

const count = (n: number) => n.toLocaleString("en-US");

/** The checkpoint folder of `name`, checked to hold what loading it needs. */
export function checkpointOf(c: Exp2Config, name: string): string | undefined {
  if (c.checkpointDir === undefined) return undefined;
  const dir = path.resolve(c.checkpointDir, name);
  const missing = ["config.json", "tokenizer.json"].filter((f) => !fs.existsSync(path.join(dir, f)));
  const weights =
    fs.existsSync(dir) && fs.readdirSync(dir).some((f) => /^model.*\.safetensors(\.index\.json)?$/.test(f));
  if (missing.length > 0 || !weights) {
    throw new Error(
      `model ${name}: ${dir} must hold a Hugging Face checkpoint (config.json, model.safetensors or its shards, ` +
        `tokenizer.json); missing ${[...missing, ...(weights ? [] : ["model*.safetensors"])].join(", ")}. ` +
        `Download e.g. facebook/${name} or google/${name} there, or set checkpointDir to where they are.`,
    );
  }
  return dir;
}

/** A tokenizer's ids for one text: its own framing, with the closing EOS left for preprocessing to re-add after truncation. */
function encoderFor(tok: Seq2SeqTokenizer, id: string) {
  const eos = tok.specialTokens.eos;
  return {
    id,
    encode: (text: string) => {
      const ids = tok.encode(text);
      return ids.length > 0 && ids[ids.length - 1] === eos ? ids.subarray(0, ids.length - 1) : ids;
    },
  };
}

async function evalSet(
  prepared: PreparedSummarization,
  location: Parameters<typeof summarizationSplit>[0],
  max: number,
): Promise<EvalSet> {
  const arrays = max > 0 ? sliceExamples(prepared, 0, max) : prepared;
  const byId = new Map((await summarizationSplit(location)).records.map((r) => [r.id, r]));
  const records = arrays.ids.map((id) => byId.get(id)!);
  return { label: prepared.source, arrays, records, total: prepared.ids.length };
}

async function prepareModel(c: Exp2Config, name: string, say: (line: string) => void): Promise<Exp2ModelData> {
  const checkpoint = checkpointOf(c, name);
  const tokenizer = checkpoint ? loadTokenizer(checkpoint) : gpt2Seq2SeqTokenizer();
  const tokenizerId = checkpoint
    ? `tokenizer.json sha256 ${hashFile(path.join(checkpoint, "tokenizer.json"))}`
    : "gpt2-seq2seq";
  const common = {
    tokenizer: encoderFor(tokenizer, tokenizerId),
    minDocumentWords: c.minDocumentWords,
    maxSourceTokens: c.maxSourceTokens,
    maxTargetTokens: c.maxTargetTokens,
    eosId: tokenizer.specialTokens.eos,
    padId: tokenizer.specialTokens.pad,
    ...(c.dataDir ? { dataDir: c.dataDir } : {}),
  };
  const own = { source: c.dataset.source, ...(c.dataset.dir ? { dir: c.dataset.dir } : {}) };
  const split = (s: "train" | "validation" | "test") => prepareSummarizationData({ ...common, ...own, split: s });
  const all = await split("train");
  const train = c.trainMaxExamples > 0 ? sliceExamples(all, 0, c.trainMaxExamples) : all;
  const valid = await split("validation");
  const location = (source: SummarizationSource, dir?: string) => ({
    source,
    split: "test" as const,
    ...(dir ? { dir } : {}),
    ...(c.dataDir ? { dataDir: c.dataDir } : {}),
  });
  const test = await evalSet(await split("test"), location(c.dataset.source, c.dataset.dir), c.testMaxExamples);
  const transfer: Exp2ModelData["transfer"] = {};
  for (const source of c.transfer) {
    const prepared = await prepareSummarizationData({ ...common, source, split: "test" });
    transfer[source] = await evalSet(prepared, location(source), c.transferMaxExamples);
  }
  say(
    `data (${name}): ${train.source} ${count(train.ids.length)} training pairs, ${count(valid.ids.length)} validation, ` +
      `${count(test.arrays.ids.length)} test evaluated` +
      `${c.transfer.map((s) => `; ${transfer[s]!.label} ${count(transfer[s]!.arrays.ids.length)} zero-shot`).join("")}`,
  );

  let pretrain: Exp2ModelData["pretrain"];
  if (!checkpoint && c.pretrain !== false) {
    const p = c.pretrain;
    const denoising = (s: "train" | "valid") =>
      prepareDenoisingData({
        name: p.dataset,
        split: s,
        tokenizer: { ...tokenizer, id: tokenizerId },
        maxTokens: p.maxTokens,
        maskRatio: p.maskRatio,
        poissonLambda: p.poissonLambda,
        permuteSentences: p.permuteSentences,
        copies: s === "train" ? p.copies : 1,
        seed: p.seed,
        ...(c.dataDir ? { dataDir: c.dataDir } : {}),
      });
    const ptrain = await denoising("train");
    const pvalid = await denoising("valid");
    pretrain = { train: ptrain, valid: pvalid, maskedShare: ptrain.maskedTokens / ptrain.totalTokens };
    say(
      `data (${name} pretraining): ${p.dataset} ${count(ptrain.ids.length)} denoising examples of ≤ ${p.maxTokens} ` +
        `tokens (${(100 * pretrain.maskedShare).toFixed(1)} % masked), ${count(pvalid.ids.length)} validation`,
    );
  }
  return {
    name,
    ...(checkpoint ? { checkpoint } : {}),
    tokenizer,
    train,
    valid,
    test,
    transfer,
    ...(pretrain ? { pretrain } : {}),
  };
}

export async function prepareExp2Data(c: Exp2Config, say: (line: string) => void = () => {}): Promise<Exp2Data> {
  // The sets read from the data folder (not the fine-tuning set when it is given by its own folder); each one
  // missing from it is fetched first, said through `say`.
  const needed = [
    ...(c.dataset.dir === undefined ? [c.dataset.source] : []),
    ...c.transfer,
    ...(c.checkpointDir === undefined && c.pretrain !== false ? [c.pretrain.dataset] : []),
  ];
  const dataDir = await experimentDataDir(c.dataDir, needed, say);
  const resolved: Exp2Config = { ...c, dataDir };
  const data: Exp2Data = {};
  for (const name of c.models) data[name] = await prepareModel(resolved, name, say);
  return data;
}
