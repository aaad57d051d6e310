// `dpsm-native human-eval prepare`: a pairwise human preference study from an exp2 run folder. For each pair of
// variations (--pairs ce:dpsm-warm10) the same n test articles, drawn by the study's seed from those both
// variations summarised; each rater gets a page (page.ts) with every (pair, article) once, in an order and with an
// A/B assignment of their own, plus attention checks: an item shown again later with A and B swapped. Orders and
// flips come from SHA-256 of the seed and the item, so the same command prepares the same study. The key that
// unblinds the pages (key.json) stays in the study folder and is never written into a page.
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

import { summarizationSplit, type SummarizationSource } from "../data/summarization.ts";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import { ensureFolder } from "../io/paths.ts";
import { readTextFile } from "../io/read.ts";
import {
  ArgumentError,
  KEY_FILE,
  type KeyItem,
  readJson,
  STUDY_FILE,
  STUDY_FORMAT,
  type StudyKey,
  type StudyManifest,
} from "./files.ts";
import { type PageItem, raterPage } from "./page.ts";

export interface PrepareOptions {
  /** the exp2 run folder (its config.json and runs/) */
  run: string;
  /** "ce:dpsm-warm10" or several, comma-separated: reference:compared */
  pairs: string;
  /** articles per pair */
  n: number;
  raters: number;
  /** the study folder to write */
  out: string;
  /** the study's randomisation (default 0) */
  seed?: number;
  /** the run's model (default: its first) */
  model?: string;
  /** the run's seed whose summaries are rated (default: its first) */
  runSeed?: number;
  /** attention checks per rater (default: 5 % of the items, at least 1) */
  checks?: number;
}

/** What exp2's pinned config.json says that a study needs. */
interface RunConfig {
  experiment: string;
  models: string[];
  seeds: number[];
  variations: string[];
  dataset: { source: SummarizationSource; dir?: string };
  dataDir?: string;
}

const SETTING = "clean";

/** The run's config.json, checked to be an exp2 run folder's. */
export function readRunConfig(run: string): RunConfig {
  const file = path.join(run, "config.json");
  if (!fs.existsSync(run) || !fs.statSync(run).isDirectory()) {
    throw new ArgumentError(`run folder: ${run} is not a folder`);
  }
  if (!fs.existsSync(file)) {
    throw new ArgumentError(
      `run folder: ${run} is not an exp2 run folder (no config.json; expected the --out of exp2)`,
    );
  }
  const c = readJson(file, "run folder") as Partial<RunConfig>;
  if (c.experiment !== "exp2") {
    throw new ArgumentError(
      `run folder: ${run} holds an experiment ${JSON.stringify(c.experiment)}, expected "exp2" (summaries are rated)`,
    );
  }
  if (!Array.isArray(c.models) || !Array.isArray(c.seeds) || !Array.isArray(c.variations) || !c.dataset) {
    throw new ArgumentError(`run folder: ${file} lacks models, seeds, variations or dataset`);
  }
  return c as RunConfig;
}

/** "ce:dpsm-warm10,ce:brier" → [["ce", "dpsm-warm10"], ["ce", "brier"]], each variation one the run trained. */
export function parsePairs(text: string, variations: readonly string[]): [string, string][] {
  const pairs = text.split(",").map((p) => p.trim().split(":"));
  const known = `this run trained ${variations.join(", ")}`;
  const seen = new Set<string>();
  return pairs.map((p) => {
    if (p.length !== 2 || !p[0] || !p[1]) {
      throw new ArgumentError(
        `--pairs: expected reference:compared (e.g. ce:dpsm-warm10), got ${JSON.stringify(text)}`,
      );
    }
    for (const v of p) {
      if (!variations.includes(v)) throw new ArgumentError(`--pairs: unknown variation ${JSON.stringify(v)}; ${known}`);
    }
    if (p[0] === p[1]) throw new ArgumentError(`--pairs: ${p[0]}:${p[1]} compares a variation with itself`);
    const id = [...p].sort().join(":");
    if (seen.has(id)) throw new ArgumentError(`--pairs: ${p[0]}:${p[1]} named twice`);
    seen.add(id);
    return [p[0], p[1]];
  });
}

/** The test summaries of one run: id → summary, in the file's order. */
function readSummaries(run: string, model: string, variation: string, seed: number): Map<string, string> {
  const file = path.join(run, "runs", model, SETTING, variation, `seed${seed}`, "summaries-last-test.jsonl");
  if (!fs.existsSync(file)) {
    throw new ArgumentError(
      `--pairs: ${variation} has no test summaries in the run folder (${file} not found; has that run finished?)`,
    );
  }
  const out = new Map<string, string>();
  readTextFile(file, "test summaries")
    .split("\n")
    .forEach((line, i) => {
      if (line.trim() === "") return;
      const row = JSON.parse(line) as { id?: unknown; summary?: unknown };
      if (typeof row.id !== "string" || typeof row.summary !== "string") {
        throw new ArgumentError(`run folder: ${file}:${i + 1} is not {"id", "summary"}`);
      }
      out.set(row.id, row.summary);
    });
  return out;
}

/** A hex string that orders items reproducibly from the study's seed: SHA-256 of the parts. */
const rank = (...parts: (string | number)[]) => createHash("sha256").update(parts.join("\u0000")).digest("hex");

function checkCount(name: string, x: number | undefined, min: number): void {
  if (x !== undefined && (!Number.isSafeInteger(x) || x < min)) {
    throw new ArgumentError(`${name}: expected an integer ≥ ${min}, got ${x}`);
  }
}

export interface PreparedStudy {
  dir: string;
  manifest: StudyManifest;
  pages: string[];
}

/** Prepares the study described by `o` into o.out (see the top of this file). */
export async function prepareStudy(o: PrepareOptions): Promise<PreparedStudy> {
  checkCount("--n", o.n, 1);
  checkCount("--raters", o.raters, 1);
  checkCount("--seed", o.seed, 0);
  checkCount("--checks", o.checks, 0);
  const run = path.resolve(o.run);
  const c = readRunConfig(run);
  const model = o.model ?? c.models[0]!;
  if (!c.models.includes(model)) {
    throw new ArgumentError(
      `--model: ${JSON.stringify(model)} is not one of the run's models (${c.models.join(", ")})`,
    );
  }
  const runSeed = o.runSeed ?? c.seeds[0]!;
  if (!c.seeds.includes(runSeed)) {
    throw new ArgumentError(`--run-seed: ${runSeed} is not one of the run's seeds (${c.seeds.join(", ")})`);
  }
  const pairs = parsePairs(o.pairs, c.variations);
  const systems = [...new Set(pairs.flat())];
  const summaries = new Map(systems.map((v) => [v, readSummaries(run, model, v, runSeed)]));
  // Articles every system of the study summarised, in the first one's order.
  const common = [...summaries.get(systems[0]!)!.keys()].filter((id) =>
    systems.every((v) => summaries.get(v)!.has(id)),
  );
  if (o.n > common.length) {
    throw new ArgumentError(
      `--n: ${o.n} articles asked for, but the run's test summaries cover ${common.length} ` +
        `(its testMaxExamples); ask for at most ${common.length} or run exp2 with more test examples`,
    );
  }
  const split = await summarizationSplit({
    source: c.dataset.source,
    split: "test",
    ...(c.dataset.dir ? { dir: c.dataset.dir } : {}),
    ...(c.dataDir ? { dataDir: c.dataDir } : {}),
  });
  const documents = new Map(split.records.map((r) => [r.id, r.document]));
  const seed = o.seed ?? 0;
  const articles = [...common].sort((a, b) => rank(seed, "article", a).localeCompare(rank(seed, "article", b)));
  articles.length = o.n;
  for (const a of articles) {
    if (!documents.has(a)) throw new ArgumentError(`run folder: article ${a} is not in ${split.label} any more`);
  }

  const base = pairs.flatMap((_, p) => articles.map((article) => ({ pair: p, article })));
  const checks = o.checks ?? Math.max(1, Math.round(0.05 * base.length));
  const most = Math.floor(base.length / 2);
  if (checks > most) {
    throw new ArgumentError(`--checks: ${checks} attention checks per rater, at most ${most} for ${base.length} items`);
  }
  const raters = Array.from({ length: o.raters }, (_, r) => `rater-${r + 1}`);
  const id = rank(run, model, runSeed, o.pairs, o.n, o.raters, seed, checks).slice(0, 12);
  const key: StudyKey = { studyId: id, raters: {} };
  const out = ensureFolder(o.out, "--out");
  if (fs.existsSync(path.join(out, KEY_FILE))) {
    throw new ArgumentError(
      `--out: ${out} holds a study already (its ${KEY_FILE}); preparing again would re-randomise what raters see — ` +
        "use another folder",
    );
  }
  const pages: Record<string, string> = {};
  for (const rater of raters) {
    key.raters[rater] = raterItems(base, pairs, rater, seed, checks);
    const items: PageItem[] = key.raters[rater].map((k) => ({
      id: k.item,
      article: documents.get(k.article)!,
      a: summaries.get(k.A)!.get(k.article)!,
      b: summaries.get(k.B)!.get(k.article)!,
    }));
    pages[rater] = `${rater}.html`;
    writeFileAtomic(path.join(out, pages[rater]), raterPage({ studyId: id, rater, items }));
  }
  const manifest: StudyManifest = {
    format: STUDY_FORMAT,
    version: 1,
    id,
    created: new Date().toISOString(),
    run,
    model,
    setting: SETTING,
    runSeed,
    dataset: split.label,
    pairs,
    n: o.n,
    raters,
    seed,
    itemsPerRater: base.length + checks,
    checksPerRater: checks,
    pages,
  };
  writeJsonAtomic(path.join(out, KEY_FILE), key);
  writeJsonAtomic(path.join(out, STUDY_FILE), manifest);
  return { dir: out, manifest, pages: raters.map((r) => path.join(out, pages[r]!)) };
}

/**
 * One rater's items in page order: every (pair, article) once, ordered and A/B-assigned by the rater's hashes, and
 * `checks` of those from the first half shown again with A and B swapped, at least 5 items later when there is room.
 */
function raterItems(
  base: readonly { pair: number; article: string }[],
  pairs: readonly [string, string][],
  rater: string,
  seed: number,
  checks: number,
): KeyItem[] {
  const order = [...base].sort((x, y) =>
    rank(seed, rater, "order", x.pair, x.article).localeCompare(rank(seed, rater, "order", y.pair, y.article)),
  );
  const shown = order.map((b, i) => {
    const flip = parseInt(rank(seed, rater, "flip", b.pair, b.article).slice(0, 2), 16) % 2 === 1;
    const [first, second] = pairs[b.pair]!;
    return { ...b, A: flip ? second : first, B: flip ? first : second, at: i };
  });
  const N = shown.length;
  const half = Math.ceil(N / 2);
  const repeated = shown
    .slice(0, half)
    .sort((x, y) => rank(seed, rater, "check", x.at).localeCompare(rank(seed, rater, "check", y.at)))
    .slice(0, checks)
    .map((s) => {
      // Somewhere after the original, at least 5 items later where there is room.
      const earliest = Math.min(s.at + 5, N - 0.5);
      const u = parseInt(rank(seed, rater, "place", s.at).slice(0, 8), 16) / 2 ** 32;
      return { ...s, A: s.B, B: s.A, at: earliest + u * (N - earliest), original: s.at };
    });
  const all = [...shown, ...repeated.map((r) => ({ ...r }))].sort((x, y) => x.at - y.at);
  const itemOf = new Map<number, string>();
  const items: KeyItem[] = all.map((s, i) => {
    const item = `q${i + 1}`;
    if (!("original" in s)) itemOf.set(s.at, item);
    return { item, pair: s.pair, article: s.article, A: s.A, B: s.B };
  });
  all.forEach((s, i) => {
    if ("original" in s) items[i]!.duplicateOf = itemOf.get(s.original as number)!;
  });
  return items;
}
