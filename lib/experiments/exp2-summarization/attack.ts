// Experiment 2 under attack: TextFooler (lib/attack/textfooler.ts) on the first test sources of every clean run's
// last checkpoint, each attacked against that model's own clean summary, then the attacked sources summarised and
// scored as the clean ones are (ROUGE against the references, calibration teacher-forced on the first reference),
// for the report's "Robustness under attack" table. Without word vectors it is not run, and the report says so.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

import { seq2seqScorer } from "../../attack/seq2seq-scorer.ts";
import { type AttackResult, textFooler } from "../../attack/textfooler.ts";
import { WordVectors } from "../../attack/word-vectors.ts";
import { preprocessSummarization } from "../../data/summarization.ts";
import { Evaluator } from "../../evaluator.ts";
import { writeFileAtomic } from "../../io/atomic.ts";
import { bootstrapInterval, seededResampler } from "../../metrics/bootstrap.ts";
import { rougeCorpus } from "../../metrics/rouge.ts";
import type { Seq2SeqModel } from "../../models/bart.ts";
import type { EvalMetrics } from "../../native.ts";
import { fmt, formatTable } from "../../report/table.ts";
import type { Finished } from "../framework/spec.ts";
import type { Seq2SeqTokenizer } from "../../tokenizers/index.ts";
import type { AttackSettings } from "./attack-settings.ts";
import type { Exp2Config } from "./config.ts";
import type { EvalSet } from "./data.ts";

/** What one run's last checkpoint did on attacked sources (run-job.ts keeps it in its result). */
export interface AttackSetResult {
  /** the vectors' file name and sha256 */
  vectors: string;
  examples: number;
  /** per example: the attack (the text itself is in the job folder's summaries file) */
  attacks: Omit<AttackResult, "text">[];
  /** ROUGE-L F of the clean and the attacked summaries against the references, per example */
  cleanRougeL: number[];
  attackedRougeL: number[];
  /** ROUGE-L F of the attacked summary against the clean one, per example */
  rougeLVsClean: number[];
  /** teacher-forced on the first reference, the same examples clean and attacked */
  clean: EvalMetrics;
  attacked: EvalMetrics;
}

function vectorsId(file: string): string {
  const hash = crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
  return `${path.basename(file)} (sha256 ${hash.slice(0, 16)})`;
}

let loaded: { file: string; vectors: WordVectors; id: string } | undefined;

/**
 * The attack on the first `c.attack.examples` of `set` (capped by the set), the attacked sources and summaries
 * written to `summariesFile`; undefined without vectors.
 */
export async function attackPass(
  c: Exp2Config & { attack: AttackSettings },
  model: Seq2SeqModel,
  tokenizer: Seq2SeqTokenizer,
  set: EvalSet,
  summariesFile: string,
): Promise<AttackSetResult | undefined> {
  const { vectors, examples, batchSize, ...options } = c.attack;
  if (vectors === undefined) return undefined;
  if (loaded?.file !== vectors) {
    loaded = { file: vectors, vectors: WordVectors.load(vectors, "attack.vectors"), id: vectorsId(vectors) };
  }
  const n = Math.min(examples, set.records.length);
  const records = set.records.slice(0, n);
  const { eos, pad } = tokenizer.specialTokens;
  // The sources as exp2 prepares them (data.ts): the tokenizer's ids, cut to maxSourceTokens − 1, then EOS.
  const settings = {
    minDocumentWords: 0,
    maxSourceTokens: c.maxSourceTokens,
    maxTargetTokens: c.maxTargetTokens,
    eosId: eos,
    padId: pad,
  };
  const ids = (text: string) => {
    const t = tokenizer.encode(text);
    return t.length > 0 && t[t.length - 1] === eos ? t.subarray(0, t.length - 1) : t;
  };
  const encode = (text: string) => {
    const body = ids(text).subarray(0, c.maxSourceTokens - 1);
    const out = new Int32Array(body.length + 1);
    out.set(body);
    out[body.length] = eos;
    return out;
  };
  // A prefix the encoder reads whole: its ids and the closing EOS within maxSourceTokens.
  const fits = (prefix: string) => ids(prefix).length <= c.maxSourceTokens - 1;
  const arrays = (docs: string[]) =>
    preprocessSummarization(
      records.map((r, i) => ({ ...r, document: docs[i]! })),
      ids,
      settings,
    );
  const sourceBatch = (arr: ReturnType<typeof arrays>) => {
    const S = arr.maxSource;
    const mask = new Int32Array(arr.sourceTokens.length);
    for (let i = 0; i < n; i++) mask.fill(1, i * S, i * S + arr.sourceLengths[i]!);
    return { ids: arr.sourceTokens, mask, length: S };
  };
  const summarise = async (arr: ReturnType<typeof arrays>) => {
    const generated = await model.generate(sourceBatch(arr), c.generation, { batchSize: c.batchSize });
    return generated;
  };
  const decode = (g: Int32Array) => tokenizer.decode(g, { skipSpecialTokens: true }).trim();
  const cleanArrays = arrays(records.map((r) => r.document));
  const cleanGenerated = await summarise(cleanArrays);
  const attacks: AttackResult[] = [];
  for (let i = 0; i < n; i++) {
    const score = seq2seqScorer(model, cleanGenerated[i]!, { encode, padId: pad, batchSize });
    attacks.push(await textFooler(records[i]!.document, score, loaded.vectors, options, fits));
  }
  const attackedArrays = arrays(attacks.map((x) => x.text));
  const cleanSummaries = cleanGenerated.map(decode);
  const attackedSummaries = (await summarise(attackedArrays)).map(decode);
  writeFileAtomic(
    summariesFile,
    records
      .map(
        (r, i) =>
          `${JSON.stringify({ id: r.id, source: attacks[i]!.text, clean: cleanSummaries[i], summary: attackedSummaries[i] })}\n`,
      )
      .join(""),
  );
  const rougeL = (summaries: string[], refs: (i: number) => string[]) =>
    rougeCorpus(
      summaries.map((candidate, i) => ({ candidate, references: refs(i) })),
      { types: ["rougeL"] },
    ).pairs.map((p) => p.rougeL.fmeasure);
  const ev = new Evaluator(model, { batchSize: c.batchSize, bf16: c.precision === "bf16" });
  return {
    vectors: loaded.id,
    examples: n,
    attacks: attacks.map(({ text: _, ...rest }) => rest),
    cleanRougeL: rougeL(cleanSummaries, (i) => records[i]!.references),
    attackedRougeL: rougeL(attackedSummaries, (i) => records[i]!.references),
    rougeLVsClean: rougeL(attackedSummaries, (i) => [cleanSummaries[i]!]),
    clean: await ev.evaluate(cleanArrays),
    attacked: await ev.evaluate(attackedArrays),
  };
}

interface AttackRow {
  name: string;
  seed: number;
  result: AttackSetResult;
}

/**
 * The report's "Robustness under attack" section: per variation (its first seed that ran the attack), ROUGE-L
 * clean and attacked with 95 % bootstrap intervals over the attacked examples, ECE-10 and NLL clean and attacked,
 * the share of words changed, the likelihood drop of the attacked target and the queries; or why it was not run.
 */
export function attackSection(
  c: Exp2Config & { attack: AttackSettings },
  rows: { name: string; observations: { key: { seed: number }; source: unknown }[] }[],
): string[] {
  const title = "### Robustness under attack (TextFooler on the test sources, last checkpoint)";
  if (c.attack.vectors === undefined) {
    return [
      title,
      "",
      "Not measured: no word vectors were given (--attack.vectors <file>, GloVe's text format; TextFooler's recipe " +
        "uses counter-fitted vectors, which this package cannot download).",
      "",
    ];
  }
  const shown: AttackRow[] = [];
  for (const g of rows) {
    for (const o of g.observations) {
      const r = (o.source as Finished<{ last?: { attack?: AttackSetResult } }>).last?.attack;
      if (r) {
        shown.push({ name: g.name, seed: o.key.seed, result: r });
        break;
      }
    }
  }
  if (!shown.length) return [title, "", "Not measured: these runs finished before the attack was set.", ""];
  const ci = (values: number[], scale: number, digits: number) => {
    const iv = bootstrapInterval(
      values.map((v) => [v * scale]),
      c.rougeBootstrap,
      0.95,
      seededResampler(0),
    );
    const mean = (scale * values.reduce((s, v) => s + v, 0)) / values.length;
    return `${fmt(mean, digits)} [${fmt(iv.low[0], digits)}, ${fmt(iv.high[0], digits)}]`;
  };
  const a = c.attack;
  const first = shown[0]!.result;
  return [
    title,
    "",
    `Each source's words are ranked by how much deleting one lowers the model's log-likelihood of its own clean ` +
      `summary; in that order each is swapped for the one of its ${a.candidates} nearest neighbours (cosine ≥ ` +
      `${a.minCosine}) in ${first.vectors} that lowers it most (by ${a.minDrop} nats per token or more), keeping the word's part of speech (wink-nlp's tagger, ` +
      `in place of NLTK / flair) and a ${a.window}-word window's angular similarity ≥ ${a.minSimilarity} by mean ` +
      `word vectors (in place of the Universal Sentence Encoder, which is TensorFlow Hub only), stop words never; ` +
      `at most ${100 * a.maxChangedShare} % of the words and ${a.maxQueries} queries per example, on the first ` +
      `${first.examples} test examples (the seed names 500 validation articles; the test split is the one every ` +
      `other table here is on). Intervals: 95 % percentile bootstrap over those examples ` +
      `(${c.rougeBootstrap} samples). R-L vs clean: the attacked summary against the clean one.`,
    "",
    formatTable(
      [
        { header: "variation (seed)", align: "left" },
        "R-L clean",
        "R-L attacked",
        "R-L vs clean",
        "ECE-10 clean → attacked",
        "NLL clean → attacked",
        "words changed %",
        "log-lik/token drop",
        "queries",
      ],
      shown.map(({ name, seed, result: r }) => [
        `${name} (${seed})`,
        ci(r.cleanRougeL, 100, 2),
        ci(r.attackedRougeL, 100, 2),
        ci(r.rougeLVsClean, 100, 2),
        `${fmt(r.clean.ece10, 4)} → ${fmt(r.attacked.ece10, 4)}`,
        `${fmt(r.clean.nll, 3)} → ${fmt(r.attacked.nll, 3)}`,
        ci(
          r.attacks.map((x) => x.changedShare),
          100,
          1,
        ),
        ci(
          r.attacks.map((x) => x.cleanScore - x.attackedScore),
          1,
          4,
        ),
        fmt(r.attacks.reduce((s, x) => s + x.queries, 0) / r.attacks.length, 0),
      ]),
    ),
    "",
  ];
}
