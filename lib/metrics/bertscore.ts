// BERTScore (Zhang et al. 2020) equal to the bert-score package (bert_score/score.py and utils.py, 0.3.12/0.3.13),
// on a RoBERTa checkpoint folder in Hugging Face's layout: the encoder and the greedy matching run natively
// (native/core/models/roberta.cpp, native/core/eval/bertscore.cpp), off the event loop; this file does what
// bert-score does in Python: tokenising as its sent_encode does for RoBERTa (text stripped, a prefix space,
// <s> … </s>, truncated to the tokenizer's model_max_length), the idf weights (get_idf_dict on the references:
// ln((M + 1)/(df + 1)), ln(M + 1) for a token no reference has; without idf every token weighs 1 and <s>, </s> 0),
// the best reference of several (P, R and F each maximised separately, as bert-score does), baseline rescaling
// ((x − b)/(1 − b) with the layer's row of a baseline file) and the hash string. Parity with bert_score.score:
// test/bertscore.test.ts on test/fixtures/bertscore (made by its make_fixture.py).
import fs from "node:fs";
import path from "node:path";

import { z } from "zod";

import { DeviceSchema, parseOrThrow } from "../config.ts";
import { readTextFile } from "../io/read.ts";
import { checkConfigAgainstWeights, readHfCheckpoint } from "../models/checkpoint.ts";
import { MODEL_LIMITS } from "../models/limits.ts";
import { native, type NativeTextEncoder } from "../native.ts";
import { loadTokenizer, type Seq2SeqTokenizer } from "../tokenizers/index.ts";
import { bootstrapInterval, type BootstrapInterval, seededResampler } from "./bootstrap.ts";

/** The bert-score release whose numbers these equal (its __version__, which the hash string carries). */
export const BERT_SCORE_VERSION = "0.3.12";

/**
 * bert-score's default layer for the RoBERTa models it knows (model2layers in bert_score/utils.py, the layer of
 * best correlation with WMT16 human judgements); only the RoBERTa rows, the family this package can load.
 */
export const BERTSCORE_DEFAULT_LAYERS: Readonly<Record<string, number>> = {
  "roberta-base": 10,
  "roberta-large": 17,
  "roberta-large-mnli": 19,
  "distilroberta-base": 5,
};

/**
 * The published English baselines (P, R, F) at the default layer of roberta-base and roberta-large: the rows of
 * rescale_baseline/en/<model>.tsv as shipped in the bert-score package (0.3.13, MIT licence, © Tianyi Zhang et al.),
 * which its authors computed as the mean scores of random sentence pairs from Common Crawl. Another model or layer
 * takes a baseline file (`baseline`), e.g. that package's own tsv for the model.
 */
export const BERTSCORE_BASELINES: Readonly<Record<string, { layer: number; p: number; r: number; f: number }>> = {
  "roberta-base": { layer: 10, p: 0.8146725, r: 0.8146619, f: 0.814463 },
  "roberta-large": { layer: 17, p: 0.83150584, r: 0.8314941, f: 0.83122575 },
};

export const BertScoreOptionsSchema = z
  .object({
    /** a Hugging Face RoBERTa checkpoint folder: config.json, model.safetensors, tokenizer.json */
    model: z.string().min(1),
    /** the layer whose states are matched (0: embeddings); default bert-score's for the model's name */
    layer: z.number().int().min(0).optional(),
    /** weight tokens by idf from the references */
    idf: z.boolean().default(false),
    /** rescale with the baseline: the published one for roberta-base/-large at their default layer, else `baseline` */
    rescale: z.boolean().default(false),
    /** a baseline file in bert-score's format (LAYER,P,R,F, one row per layer from 0); implies rescale */
    baseline: z.string().min(1).optional(),
    /** the model's name in the hash and in BERTSCORE_DEFAULT_LAYERS; default config.json's _name_or_path, else the folder's */
    name: z.string().min(1).optional(),
    device: DeviceSchema.default("cpu"),
    batchSize: z.number().int().min(1).max(4096).default(64),
    /** bootstrap interval on the means (rouge-score's percentile bootstrap, lib/metrics/bootstrap.ts) */
    bootstrap: z
      .object({
        samples: z.number().int().min(1).default(1000),
        confidence: z.number().min(0).max(1).default(0.95),
        seed: z.number().int().min(0).max(0xffffffff).default(0),
      })
      .strict()
      .optional(),
  })
  .strict();
export type BertScoreOptions = z.input<typeof BertScoreOptionsSchema>;

// transformers' RobertaConfig defaults for what a saved config may omit; the rest is required.
const dim = (max: number) => z.number().int().min(1).max(max);
const RobertaConfigSchema = z
  .object({
    model_type: z.literal("roberta"),
    vocab_size: dim(MODEL_LIMITS.vocab),
    hidden_size: dim(MODEL_LIMITS.width),
    num_hidden_layers: dim(MODEL_LIMITS.layers),
    num_attention_heads: dim(MODEL_LIMITS.heads),
    intermediate_size: dim(MODEL_LIMITS.ffn),
    max_position_embeddings: dim(MODEL_LIMITS.positions),
    type_vocab_size: dim(1024).default(1),
    pad_token_id: z.number().int().min(0).default(1),
    layer_norm_eps: z.number().positive().default(1e-12),
    hidden_act: z.enum(["gelu", "gelu_new", "gelu_pytorch_tanh", "relu"]).default("gelu"),
    position_embedding_type: z.literal("absolute").default("absolute"),
  })
  .passthrough()
  .refine((c) => c.hidden_size % c.num_attention_heads === 0, {
    message: "hidden_size must be a multiple of num_attention_heads",
  })
  .refine((c) => c.pad_token_id < c.max_position_embeddings - 1 && c.pad_token_id < c.vocab_size, {
    message: "pad_token_id must be a token id and leave positions after it",
  });

export interface BertScoreStats {
  precision: number;
  recall: number;
  f1: number;
}

export interface BertScoreResult {
  /** per example (the best reference of each), rescaled when asked */
  precision: number[];
  recall: number[];
  f1: number[];
  mean: BertScoreStats;
  /** bootstrap percentiles of the means, when asked */
  interval?: { low: BertScoreStats; mid: BertScoreStats; high: BertScoreStats };
  layer: number;
  idf: boolean;
  rescaled: boolean;
  /** bert-score's hash of the setting, e.g. roberta-large_L17_no-idf_version=0.3.12(dpsm-native)-rescaled */
  hash: string;
}

/** One baseline row (P, R, F) of a bert-score baseline file, for `layer`. */
export function readBaseline(file: string, layer: number): { p: number; r: number; f: number } {
  const lines = readTextFile(file, "bertscore.baseline")
    .split(/\r?\n/)
    .filter((l) => l.trim() !== "");
  if (lines[0]?.replace(/\s/g, "") !== "LAYER,P,R,F") {
    throw new Error(
      `bertscore.baseline: ${file}: expected bert-score's header LAYER,P,R,F, got ${lines[0] ?? "nothing"}`,
    );
  }
  // pandas' iloc[layer]: the row at that position below the header, which bert-score's files number from 0.
  const row = lines[1 + layer]?.split(",").map(Number);
  if (!row || row.length !== 4 || row.some((x) => !Number.isFinite(x)) || row[0] !== layer) {
    throw new Error(
      `bertscore.baseline: ${file}: no row for layer ${layer} (expected "${layer},P,R,F" on line ${layer + 2})`,
    );
  }
  return { p: row[1]!, r: row[2]!, f: row[3]! };
}

const asStats = (v: readonly number[]): BertScoreStats => ({ precision: v[0]!, recall: v[1]!, f1: v[2]! });
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** A RoBERTa loaded once, scoring any number of (candidate, references) sets. */
export class BertScorer {
  private constructor(
    private readonly encoder: NativeTextEncoder,
    private readonly tokenizer: Seq2SeqTokenizer,
    private readonly options: z.output<typeof BertScoreOptionsSchema>,
    readonly name: string,
    readonly layer: number,
    private readonly maxTokens: number,
    private readonly baseline: { p: number; r: number; f: number; custom: boolean } | undefined,
  ) {}

  static async load(options: BertScoreOptions): Promise<BertScorer> {
    const o = parseOrThrow(BertScoreOptionsSchema, options, "bertscore");
    const dir = o.model;
    const ckpt = readHfCheckpoint(dir, "bertscore.model");
    const config = parseOrThrow(RobertaConfigSchema, ckpt.config, `bertscore.model (${path.join(dir, "config.json")})`);
    const d = config.hidden_size;
    checkConfigAgainstWeights(
      dir,
      ckpt.weights,
      (config.vocab_size + config.max_position_embeddings) * d + config.num_hidden_layers * 4 * d * d,
      "bertscore.model",
    );
    const tokenizer = loadTokenizer(dir);
    // save_pretrained records the hub name it loaded from ("roberta-large", "FacebookAI/roberta-large"): the name
    // bert-score's tables use where it is one of theirs, else the folder's.
    const nameOrPath = (ckpt.config as { _name_or_path?: unknown })._name_or_path;
    const known = typeof nameOrPath === "string" ? [nameOrPath, nameOrPath.split("/").pop()!] : [];
    const folder = path.basename(path.resolve(dir));
    const name = o.name ?? known.find((n) => n in BERTSCORE_DEFAULT_LAYERS) ?? folder;
    const layer = o.layer ?? BERTSCORE_DEFAULT_LAYERS[name];
    if (layer === undefined) {
      throw new Error(
        `bertscore.layer: required for '${name}', which has no default in bert-score's table ` +
          `(${Object.keys(BERTSCORE_DEFAULT_LAYERS).join(", ")})`,
      );
    }
    if (layer > config.num_hidden_layers) {
      throw new RangeError(`bertscore.layer: expected 0 to ${config.num_hidden_layers} for ${dir}, got ${layer}`);
    }
    let baseline: { p: number; r: number; f: number; custom: boolean } | undefined;
    if (o.baseline !== undefined) {
      baseline = { ...readBaseline(o.baseline, layer), custom: true };
    } else if (o.rescale) {
      const b = BERTSCORE_BASELINES[name];
      if (!b || b.layer !== layer) {
        throw new Error(
          `bertscore.baseline: no published baseline here for ${name} at layer ${layer}; give bert-score's ` +
            `rescale_baseline/<lang>/${name}.tsv (or your own) as bertscore.baseline`,
        );
      }
      baseline = { p: b.p, r: b.r, f: b.f, custom: false };
    }
    const encoder = await native().loadTextEncoder(JSON.stringify({ config, weights: ckpt.weights, device: o.device }));
    // bert-score truncates to the tokenizer's model_max_length; a tokenizer that states none (transformers then
    // says 1e30) is bounded by the model's positions instead of failing.
    const tokCfgFile = path.join(dir, "tokenizer_config.json");
    const stated = fs.existsSync(tokCfgFile)
      ? (JSON.parse(readTextFile(tokCfgFile, "bertscore.model")) as { model_max_length?: unknown }).model_max_length
      : undefined;
    const maxTokens =
      typeof stated === "number" && stated >= 2 && stated <= encoder.maxTokens ? stated : encoder.maxTokens;
    return new BertScorer(encoder, tokenizer, o, name, layer, maxTokens, baseline);
  }

  /** sent_encode: stripped, a prefix space (RoBERTa's add_prefix_space), <s> … </s>, at most maxTokens ids. */
  encode(text: string): number[] {
    const { bos, eos } = this.tokenizer.specialTokens;
    if (bos === undefined) throw new Error("bertscore.model: the tokenizer has no <s> (bos) token");
    const t = text.trim();
    const body = t === "" ? [] : Array.from(this.tokenizer.encode(` ${t}`, { addSpecialTokens: false }));
    return [bos, ...body.slice(0, this.maxTokens - 2), eos];
  }

  get hash(): string {
    const b = this.baseline;
    return (
      `${this.name}_L${this.layer}${this.options.idf ? "_idf" : "_no-idf"}_version=${BERT_SCORE_VERSION}(dpsm-native)` +
      (b ? (b.custom ? "-custom-rescaled" : "-rescaled") : "")
    );
  }

  /**
   * P/R/F of each candidate against its reference(s) (a string, or several: the best of each score, as bert-score
   * does), with idf from all references when asked.
   */
  async score(
    candidates: readonly string[],
    references: readonly (string | readonly string[])[],
    options: { bootstrap?: { samples: number; seed: number; confidence?: number } } = {},
  ): Promise<BertScoreResult> {
    if (candidates.length !== references.length) {
      throw new RangeError(
        `bertScore: expected as many references as candidates (${candidates.length}), got ${references.length}`,
      );
    }
    if (candidates.length === 0) throw new RangeError("bertScore: expected at least one candidate");
    const groups = references.map((r, i) => {
      const g = typeof r === "string" ? [r] : [...r];
      if (g.length === 0 || !g.every((x) => typeof x === "string")) {
        throw new TypeError(`bertScore: references[${i}]: expected a string or a non-empty array of strings`);
      }
      return g;
    });
    const { bos, eos } = this.tokenizer.specialTokens;
    const flatRefs = groups.flat().map((r) => this.encode(r));
    const candIds = candidates.map((c) => this.encode(c));
    let weight: (id: number) => number;
    if (this.options.idf) {
      const df = new Map<number, number>();
      for (const ids of flatRefs) for (const id of new Set(ids)) df.set(id, (df.get(id) ?? 0) + 1);
      const m = flatRefs.length;
      weight = (id) => Math.log((m + 1) / ((df.get(id) ?? 0) + 1));
    } else {
      weight = (id) => (id === bos || id === eos ? 0 : 1);
    }
    // One row per (candidate, reference): the candidate repeated for each of its references.
    const rowsC: number[][] = [];
    const rowsR: number[][] = [];
    let k = 0;
    groups.forEach((g, i) => {
      for (let j = 0; j < g.length; j++) {
        rowsC.push(candIds[i]!);
        rowsR.push(flatRefs[k++]!);
      }
    });
    const pack = (rows: number[][]) => {
      const offsets = new Int32Array(rows.length + 1);
      rows.forEach((r, i) => (offsets[i + 1] = offsets[i]! + r.length));
      const ids = Int32Array.from(rows.flat());
      return { ids, offsets, idf: Float32Array.from(ids, weight) };
    };
    const c = pack(rowsC);
    const r = pack(rowsR);
    const raw = await this.encoder.bertScore(
      {
        candidateIds: c.ids,
        candidateOffsets: c.offsets,
        candidateIdf: c.idf,
        referenceIds: r.ids,
        referenceOffsets: r.offsets,
        referenceIdf: r.idf,
      },
      JSON.stringify({
        layer: this.layer,
        batchSize: this.options.batchSize,
        padId: this.tokenizer.specialTokens.pad,
      }),
    );
    const b = this.baseline;
    // bert-score rescales in float32 with float32 baselines: the same baseline values here.
    const rescale = (x: number, base: number) => (b ? (x - Math.fround(base)) / (1 - Math.fround(base)) : x);
    const out = { precision: [] as number[], recall: [] as number[], f1: [] as number[] };
    let row = 0;
    for (const g of groups) {
      const best = [-Infinity, -Infinity, -Infinity];
      for (let j = 0; j < g.length; j++, row++) {
        best[0] = Math.max(best[0]!, raw.precision[row]!);
        best[1] = Math.max(best[1]!, raw.recall[row]!);
        best[2] = Math.max(best[2]!, raw.f1[row]!);
      }
      out.precision.push(rescale(best[0]!, b?.p ?? 0));
      out.recall.push(rescale(best[1]!, b?.r ?? 0));
      out.f1.push(rescale(best[2]!, b?.f ?? 0));
    }
    const result: BertScoreResult = {
      ...out,
      mean: { precision: mean(out.precision), recall: mean(out.recall), f1: mean(out.f1) },
      layer: this.layer,
      idf: this.options.idf,
      rescaled: b !== undefined,
      hash: this.hash,
    };
    const boot = options.bootstrap ? { confidence: 0.95, ...options.bootstrap } : this.options.bootstrap;
    if (boot) {
      const rows = out.precision.map((p, i) => [p, out.recall[i]!, out.f1[i]!]);
      const iv: BootstrapInterval = bootstrapInterval(rows, boot.samples, boot.confidence, seededResampler(boot.seed));
      result.interval = { low: asStats(iv.low), mid: asStats(iv.mid), high: asStats(iv.high) };
    }
    return result;
  }

  /** Frees the native weights now; idempotent. */
  dispose(): void {
    this.encoder.dispose();
  }
}

/** BERTScore of candidates against references with a model loaded for this call (see BertScorer). */
export async function bertScore(
  candidates: readonly string[],
  references: readonly (string | readonly string[])[],
  options: BertScoreOptions,
): Promise<BertScoreResult> {
  const scorer = await BertScorer.load(options);
  try {
    return await scorer.score(candidates, references);
  } finally {
    scorer.dispose();
  }
}
