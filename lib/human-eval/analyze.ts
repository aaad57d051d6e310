// `dpsm-native human-eval analyze`: a study's ratings unblinded with its key and summarised per pair and
// criterion. The unit the tests resample is the article (raters of one article are not independent): shares of
// "compared preferred / tie / reference preferred" are means over articles of each article's share among its
// raters, with a 95 % percentile bootstrap over articles (lib/metrics/bootstrap.ts); the sign test takes each
// article's majority (more raters preferring one system than the other; an even split is a tie and left out),
// two-sided exact, Holm-adjusted over every pair and criterion (lib/metrics/stats.ts). Bradley–Terry strengths
// per criterion come from every judgement (ties as half-wins; bradley-terry.ts), Krippendorff's α (nominal) from
// the raters' unblinded choices per (pair, article) (agreement.ts). Attention checks (an item repeated with A and
// B swapped) are left out of all of these and reported per rater: a check fails when the repeat prefers the
// other system, or a tie where the first did not (or the reverse), on either criterion.
import path from "node:path";

import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import { ensureFolder } from "../io/paths.ts";
import { bootstrapInterval, seededResampler } from "../metrics/bootstrap.ts";
import { holm, signTest } from "../metrics/stats.ts";
import { fmt, formatTable } from "../report/table.ts";
import { krippendorffAlphaNominal } from "./agreement.ts";
import { bradleyTerry } from "./bradley-terry.ts";
import {
  ANALYSIS_JSON,
  ANALYSIS_MD,
  ArgumentError,
  type Choice,
  CRITERIA,
  type Criterion,
  type KeyItem,
  type RatingsFile,
  readRatingsFile,
  readStudy,
  type StudyManifest,
} from "./files.ts";

/** An unblinded choice: the pair's compared system (its second), its reference (first), or a tie. */
type Outcome = "compared" | "tie" | "reference";

const BOOTSTRAP_SAMPLES = 2000;

export interface Share {
  estimate: number;
  low: number;
  high: number;
}

export interface PairCriterion {
  pair: [string, string];
  criterion: Criterion;
  judgements: number;
  articles: number;
  counts: Record<Outcome, number>;
  /** mean over articles of each outcome's share among the article's raters, 95 % bootstrap over articles */
  shares: Record<Outcome, Share>;
  /** articles whose raters' majority preferred the compared system, the reference, or split evenly */
  signTest: { wins: number; losses: number; ties: number; p: number; holm: number };
}

export interface RaterSummary {
  rater: string;
  file: string;
  items: number;
  rated: number;
  comments: number;
  checks: number;
  /** checks answered on both criteria, and those that failed */
  checksAnswered: number;
  checksFailed: number;
}

export interface StudyAnalysis {
  study: StudyManifest;
  samples: number;
  results: PairCriterion[];
  bradleyTerry: Record<Criterion, { system: string; strength: number }[]>;
  alpha: Record<Criterion, number>;
  raters: RaterSummary[];
  comments: { rater: string; article: string; pair: [string, string]; text: string }[];
}

function unblind(choice: Choice, k: KeyItem, pair: [string, string]): Outcome {
  if (choice === "tie") return "tie";
  return (choice === "A" ? k.A : k.B) === pair[1] ? "compared" : "reference";
}

function checkRatings(file: string, r: RatingsFile, manifest: StudyManifest, keys: Map<string, KeyItem>): void {
  if (r.studyId !== manifest.id) {
    throw new ArgumentError(
      `ratings file ${file}: studyId ${JSON.stringify(r.studyId)} is not this study's (${manifest.id})`,
    );
  }
  const seen = new Set<string>();
  r.ratings.forEach((x, i) => {
    if (!keys.has(x.item)) {
      throw new ArgumentError(
        `ratings file ${file}: ratings.${i}.item: ${JSON.stringify(x.item)} is not an item of ${r.rater}'s page`,
      );
    }
    if (seen.has(x.item)) throw new ArgumentError(`ratings file ${file}: ratings.${i}.item: ${x.item} rated twice`);
    seen.add(x.item);
  });
}

/** Reads the study in `dir` and the raters' `files`, and analyses them (see the top of this file). */
export function analyzeStudy(dir: string, files: readonly string[], seed = 0): StudyAnalysis {
  const { manifest, key } = readStudy(dir);
  if (files.length === 0) throw new ArgumentError("ratings: expected at least one ratings file");
  const byRater = new Map<string, { file: string; ratings: RatingsFile }>();
  for (const file of files) {
    const ratings = readRatingsFile(file);
    const items = key.raters[ratings.rater];
    if (!items) {
      throw new ArgumentError(
        `ratings file ${file}: rater: ${JSON.stringify(ratings.rater)} is not one of ${manifest.raters.join(", ")}`,
      );
    }
    const before = byRater.get(ratings.rater);
    if (before) throw new ArgumentError(`ratings file ${file}: ${ratings.rater} is rated already by ${before.file}`);
    checkRatings(file, ratings, manifest, new Map(items.map((k) => [k.item, k])));
    byRater.set(ratings.rater, { file, ratings });
  }

  // Per rater, unit (pair/article) and criterion: the unblinded outcome, attention checks aside.
  const outcome = new Map<string, Map<string, Partial<Record<Criterion, Outcome>>>>();
  const raters: RaterSummary[] = [];
  const comments: StudyAnalysis["comments"] = [];
  for (const [rater, { file, ratings }] of byRater) {
    const keyOf = new Map(key.raters[rater]!.map((k) => [k.item, k]));
    const given = new Map(ratings.ratings.map((x) => [x.item, x]));
    const mine = new Map<string, Partial<Record<Criterion, Outcome>>>();
    outcome.set(rater, mine);
    let checksAnswered = 0;
    let checksFailed = 0;
    for (const x of ratings.ratings) {
      const k = keyOf.get(x.item)!;
      const pair = manifest.pairs[k.pair]!;
      if (x.comment.trim()) comments.push({ rater, article: k.article, pair, text: x.comment.trim() });
      if (k.duplicateOf !== undefined) continue;
      const o: Partial<Record<Criterion, Outcome>> = {};
      for (const c of CRITERIA) if (x[c] !== null) o[c] = unblind(x[c], k, pair);
      mine.set(`${k.pair}/${k.article}`, o);
    }
    for (const k of key.raters[rater]!.filter((k) => k.duplicateOf !== undefined)) {
      const [again, first] = [given.get(k.item), given.get(k.duplicateOf!)];
      if (!again || !first || CRITERIA.some((c) => again[c] === null || first[c] === null)) continue;
      checksAnswered++;
      const pair = manifest.pairs[k.pair]!;
      const original = keyOf.get(k.duplicateOf!)!;
      if (CRITERIA.some((c) => unblind(again[c]!, k, pair) !== unblind(first[c]!, original, pair))) checksFailed++;
    }
    raters.push({
      rater,
      file,
      items: key.raters[rater]!.length,
      rated: ratings.ratings.filter((x) => CRITERIA.every((c) => x[c] !== null)).length,
      comments: ratings.ratings.filter((x) => x.comment.trim()).length,
      checks: manifest.checksPerRater,
      checksAnswered,
      checksFailed,
    });
  }

  const units = [...new Set(manifest.raters.flatMap((r) => [...(outcome.get(r)?.keys() ?? [])]))].sort();
  const results: PairCriterion[] = [];
  for (const [p, pair] of manifest.pairs.entries()) {
    const mine = units.filter((u) => u.startsWith(`${p}/`));
    for (const criterion of CRITERIA) {
      const counts: Record<Outcome, number> = { compared: 0, tie: 0, reference: 0 };
      const rows: number[][] = [];
      const majority = { wins: 0, losses: 0, ties: 0 };
      for (const u of mine) {
        const per: Record<Outcome, number> = { compared: 0, tie: 0, reference: 0 };
        for (const o of outcome.values()) {
          const x = o.get(u)?.[criterion];
          if (x !== undefined) per[x]++;
        }
        const m = per.compared + per.tie + per.reference;
        if (m === 0) continue;
        for (const x of ["compared", "tie", "reference"] as const) counts[x] += per[x];
        rows.push([per.compared / m, per.tie / m, per.reference / m]);
        if (per.compared > per.reference) majority.wins++;
        else if (per.compared < per.reference) majority.losses++;
        else majority.ties++;
      }
      const judgements = counts.compared + counts.tie + counts.reference;
      const ci = rows.length
        ? bootstrapInterval(rows, BOOTSTRAP_SAMPLES, 0.95, seededResampler(seed))
        : { low: [NaN, NaN, NaN], high: [NaN, NaN, NaN] };
      const mean = (k: number) => rows.reduce((s, r) => s + r[k]!, 0) / rows.length;
      const share = (k: number): Share => ({ estimate: mean(k), low: ci.low[k]!, high: ci.high[k]! });
      results.push({
        pair,
        criterion,
        judgements,
        articles: rows.length,
        counts,
        shares: { compared: share(0), tie: share(1), reference: share(2) },
        signTest: { ...majority, p: signTest(majority.wins, majority.losses), holm: NaN },
      });
    }
  }
  holm(results.map((r) => r.signTest.p)).forEach((p, i) => (results[i]!.signTest.holm = p));

  const systems = [...new Set(manifest.pairs.flat())];
  const bt = {} as StudyAnalysis["bradleyTerry"];
  const alpha = {} as StudyAnalysis["alpha"];
  for (const criterion of CRITERIA) {
    const fit = bradleyTerry(
      systems.length,
      results
        .filter((r) => r.criterion === criterion)
        .map((r) => ({
          a: systems.indexOf(r.pair[1]),
          b: systems.indexOf(r.pair[0]),
          winsA: r.counts.compared,
          winsB: r.counts.reference,
          ties: r.counts.tie,
        })),
    );
    bt[criterion] = systems
      .map((system, i) => ({ system, strength: fit.strengths[i]! }))
      .sort((x, y) => y.strength - x.strength);
    alpha[criterion] = krippendorffAlphaNominal(
      manifest.raters.map((r) => units.map((u) => outcome.get(r)?.get(u)?.[criterion] ?? null)),
    );
  }
  return { study: manifest, samples: BOOTSTRAP_SAMPLES, results, bradleyTerry: bt, alpha, raters, comments };
}

const pct = (s: Share) => `${fmt(100 * s.estimate, 1)} % [${fmt(100 * s.low, 1)}, ${fmt(100 * s.high, 1)}]`;
const p = (x: number) => (!Number.isFinite(x) ? "–" : x < 0.001 ? "< 0.001" : x.toFixed(3));

/** The analysis as a Markdown section (what exp-2's report links to). */
export function analysisMarkdown(a: StudyAnalysis, dir: string): string {
  const s = a.study;
  const left = (header: string) => ({ header, align: "left" as const });
  const lines = [
    `## Human preference study ${s.id}`,
    "",
    `Prepared from ${s.run} (model ${s.model}, seed ${s.runSeed}, ${s.dataset}, last checkpoint): ${s.n} articles per ` +
      `pair, pairs ${s.pairs.map(([x, y]) => `${y} against ${x}`).join(", ")}; ${s.raters.length} raters, each with ` +
      `${s.itemsPerRater} items in their own order and A/B assignment (seed ${s.seed}), ${s.checksPerRater} of them ` +
      `attention check${s.checksPerRater === 1 ? "" : "s"}. Ratings read: ${a.raters.map((r) => path.relative(dir, r.file) || r.file).join(", ")}.`,
    "",
    `Shares are means over articles of each article's share among its raters, with 95 % percentile bootstrap ` +
      `intervals over articles (${a.samples} samples). The sign test takes each article's majority (an even split is ` +
      "a tie, left out), two-sided exact binomial; Holm-adjusted over every pair and criterion below. Attention " +
      "checks are left out of all of these.",
    "",
    formatTable(
      [
        left("compared against reference"),
        left("criterion"),
        "judgements",
        "compared preferred",
        "tie",
        "reference preferred",
        "articles won / tied / lost",
        "sign test p",
        "Holm p",
      ],
      a.results.map((r) => [
        `${r.pair[1]} against ${r.pair[0]}`,
        r.criterion,
        String(r.judgements),
        `${r.counts.compared}: ${pct(r.shares.compared)}`,
        `${r.counts.tie}: ${pct(r.shares.tie)}`,
        `${r.counts.reference}: ${pct(r.shares.reference)}`,
        `${r.signTest.wins} / ${r.signTest.ties} / ${r.signTest.losses}`,
        p(r.signTest.p),
        p(r.signTest.holm),
      ]),
    ),
    "",
    "Bradley–Terry strengths (maximum likelihood by Hunter's MM algorithm, every judgement, a tie half a win for " +
      "each side; strengths sum to 1, P(i preferred to j) = π_i / (π_i + π_j)) and inter-rater agreement " +
      "(Krippendorff's α, nominal, over the raters' unblinded choices per pair and article):",
    "",
    formatTable(
      [left("criterion"), left("Bradley–Terry strengths"), "Krippendorff's α"],
      CRITERIA.map((c) => [
        c,
        a.bradleyTerry[c].map((x) => `${x.system} ${fmt(x.strength, 3)}`).join(", "),
        fmt(a.alpha[c], 3),
      ]),
    ),
    "",
    "Raters (an attention check fails when the repeated item, A and B swapped, is answered for the other system " +
      "or a tie differently on either criterion):",
    "",
    formatTable(
      [left("rater"), "items rated", "comments", "attention checks answered", "failed"],
      a.raters.map((r) => [
        r.rater,
        `${r.rated} / ${r.items}`,
        String(r.comments),
        `${r.checksAnswered} / ${r.checks}`,
        String(r.checksFailed),
      ]),
    ),
    "",
  ];
  return lines.join("\n");
}

/** Writes human-eval.md and human-eval.json into the study folder; returns their paths. */
export function writeAnalysis(a: StudyAnalysis, dir: string): { markdown: string; json: string } {
  const markdown = path.join(dir, ANALYSIS_MD);
  const json = path.join(dir, ANALYSIS_JSON);
  ensureFolder(dir, "the study folder");
  writeFileAtomic(markdown, analysisMarkdown(a, dir));
  writeJsonAtomic(json, a);
  return { markdown, json };
}
