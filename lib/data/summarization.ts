// Summarisation pairs — CNN/DailyMail 3.0.0, XSum, DialogSum, AESLC — read from the layouts they are distributed
// in (Hugging Face parquet shards, CNN/DM's .story files, JSON lines as in the data folder), and turned into
// packed encoder–decoder token arrays with the seed's preprocessing, cached like the language-model data.
import fs from "node:fs";
import path from "node:path";

import { z } from "zod";

import { parseOrThrow } from "../config.ts";
import type { NativeExamples } from "../native.ts";
import { cacheFilePath, cacheKey, hashFile, readArrayCache, writeArrayCache } from "./cache.ts";
import { parquetShards, readParquetColumns } from "./parquet.ts";
import { dataDir } from "./paths.ts";
import { readTextFile } from "../io/read.ts";

/** Bump when how records are read, filtered, tokenised or packed changes: older cache entries are then not reused. */
const PIPELINE_VERSION = 1;

export const SUMMARIZATION_SOURCES = ["cnn_dailymail", "xsum", "dialogsum", "aeslc"] as const;
export type SummarizationSource = (typeof SUMMARIZATION_SOURCES)[number];

/** Hugging Face's split names; the local files' "dev", "val" and "valid" are read as "validation". */
export const SUMMARIZATION_SPLITS = ["train", "validation", "test"] as const;
export type SummarizationSplitName = (typeof SUMMARIZATION_SPLITS)[number];

export const SUMMARIZATION_LAYOUTS = ["parquet", "story", "jsonl"] as const;
export type SummarizationLayout = (typeof SUMMARIZATION_LAYOUTS)[number];

/** One document with its reference summaries (several only where the data set has several, e.g. DialogSum test). */
export interface SummarizationRecord {
  id: string;
  document: string;
  references: string[];
}

interface SourceSpec {
  layouts: readonly SummarizationLayout[];
  /** Hugging Face's parquet columns and the config folder its shards may sit in */
  parquet?: { id: string; document: string; summary: string; config: string };
  /** the full official split sizes, so a partial local copy is reported as such */
  published: Record<SummarizationSplitName, number>;
}

const SOURCES: Record<SummarizationSource, SourceSpec> = {
  cnn_dailymail: {
    layouts: ["parquet", "story", "jsonl"],
    parquet: { id: "id", document: "article", summary: "highlights", config: "3.0.0" },
    published: { train: 287113, validation: 13368, test: 11490 },
  },
  xsum: {
    layouts: ["parquet", "jsonl"],
    parquet: { id: "id", document: "document", summary: "summary", config: "default" },
    published: { train: 204045, validation: 11332, test: 11334 },
  },
  dialogsum: { layouts: ["jsonl"], published: { train: 12460, validation: 500, test: 500 } },
  aeslc: { layouts: ["jsonl"], published: { train: 14436, validation: 1960, test: 1906 } },
};

const SPLIT_ALIASES: Record<SummarizationSplitName, string[]> = {
  train: ["train"],
  validation: ["validation", "dev", "val", "valid"],
  test: ["test"],
};
// A whole split first: the data folder's partial copies are named <split>_subset / <split>_sample.
const JSONL_SUFFIXES = ["", "_subset", "_sample"];

/** The official XSum split definition (ids only), in the XSum folder. */
export const XSUM_SPLIT_FILE = "XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json";

function isFile(p: string): boolean {
  return fs.statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;
}

function isDir(p: string): boolean {
  return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

function findFiles(
  dir: string,
  source: SummarizationSource,
  layout: SummarizationLayout,
  split: SummarizationSplitName,
): string[] {
  const aliases = SPLIT_ALIASES[split];
  switch (layout) {
    case "jsonl":
      for (const suffix of JSONL_SUFFIXES) {
        for (const name of aliases) {
          const file = path.join(dir, `${name}${suffix}.jsonl`);
          // Whatever stands there: a folder or FIFO of that name is refused by name when read.
          if (fs.existsSync(file)) return [file];
        }
      }
      return [];
    case "story":
      for (const name of aliases) {
        const sub = path.join(dir, name);
        const stories = isDir(sub) ? fs.readdirSync(sub).filter((f) => f.endsWith(".story")) : [];
        if (stories.length > 0) return stories.sort().map((f) => path.join(sub, f));
      }
      return [];
    case "parquet": {
      const config = SOURCES[source].parquet!.config;
      for (const base of [dir, path.join(dir, config), path.join(dir, "data")]) {
        const shards = parquetShards(base, split);
        if (shards.length > 0) return shards;
      }
      return [];
    }
  }
}

/** What to place where for one layout: the error for a missing split says this. */
function placement(dir: string, source: SummarizationSource, layout: SummarizationLayout, split: string): string {
  switch (layout) {
    case "parquet": {
      const p = SOURCES[source].parquet!;
      return (
        `${split}-NNNNN-of-NNNNN.parquet or ${split}/NNNN.parquet (Hugging Face shards, columns ` +
        `${p.id}/${p.document}/${p.summary}) in ${dir}, ${path.join(dir, p.config)} or ${path.join(dir, "data")}`
      );
    }
    case "story":
      return `${split}/<id>.story (the original CNN/DailyMail story files of that split) in ${dir}`;
    case "jsonl":
      return `${split}.jsonl (one {"id", "document", "summary"} object per line) in ${dir}`;
  }
}

/** The files of one split, and how they are read. */
export interface SummarizationFiles {
  source: SummarizationSource;
  split: SummarizationSplitName;
  layout: SummarizationLayout;
  dir: string;
  files: string[];
}

/**
 * The files of `split` of `source` under `dir`, in `layout` (else the one layout that holds the split). A
 * split no layout holds is an error that names the splits present and what to place where.
 */
export function summarizationFiles(
  dir: string,
  source: SummarizationSource,
  split: SummarizationSplitName,
  layout?: SummarizationLayout,
): SummarizationFiles {
  if (!isDir(dir)) {
    const where = SOURCES[source].layouts.map((l) => placement(dir, source, l, "<split>")).join("; or ");
    throw new Error(`${source} folder not found: ${dir} (expected ${where})`);
  }
  if (layout !== undefined && !SOURCES[source].layouts.includes(layout)) {
    throw new RangeError(`${source} is read from: ${SOURCES[source].layouts.join(", ")} (not ${layout})`);
  }
  const layouts = layout === undefined ? SOURCES[source].layouts : [layout];
  const found = layouts
    .map((l) => ({ layout: l, files: findFiles(dir, source, l, split) }))
    .filter((f) => f.files.length);
  if (found.length === 1) return { source, split, layout: found[0]!.layout, dir, files: found[0]!.files };
  if (found.length > 1) {
    throw new Error(
      `${dir} holds ${source} ${split} in more than one layout (${found.map((f) => f.layout).join(", ")}); pass the layout to read`,
    );
  }
  const present = SUMMARIZATION_SPLITS.flatMap((s) =>
    SOURCES[source].layouts.filter((l) => findFiles(dir, source, l, s).length > 0).map((l) => `${s} (${l})`),
  );
  const where = layouts.map((l) => placement(dir, source, l, split)).join("; or ");
  throw new Error(
    `${source} ${split} split not found under ${dir} (this copy has: ${present.join(", ") || "nothing readable"}); ` +
      `to use it, place ${where}`,
  );
}

function str(value: unknown, where: string): string {
  if (typeof value !== "string") throw new Error(`${where}: expected a string, got ${JSON.stringify(value)}`);
  return value;
}

export interface JsonlReadOptions {
  /** AESLC: "subject" (the email's own subject line, TFDS/HF's target) or "annotations" (3 human ones, dev/test) */
  aeslcReferences?: "subject" | "annotations";
}

/**
 * Records of a JSON-lines file. Field names of the data folder's files and of the originals are both read:
 * `document` | `article` (CNN/DM) | `dialogue` (DialogSum), `summary` | `highlights`, `id` | `fname`. References
 * are `references` (DialogSum test, 3 each), else `summary1..3` (DialogSum's original test file), else the one
 * summary. A row whose id is null (some CNN/DM validation rows here) gets `<file stem>-<line number>`, which is
 * stable and unique within the file.
 */
export function readSummarizationJsonl(file: string, options: JsonlReadOptions = {}): SummarizationRecord[] {
  const stem = path.basename(file, ".jsonl");
  const records: SummarizationRecord[] = [];
  const lines = readTextFile(file, "JSON-lines split").split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() === "") continue;
    const where = `${file}:${i + 1}`;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(lines[i]!) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`${where}: not JSON: ${(e as Error).message}`, { cause: e });
    }
    if (typeof row !== "object" || row === null || Array.isArray(row)) {
      throw new Error(
        `${where}: expected a JSON object (one record), got ${row === null ? "null" : Array.isArray(row) ? "an array" : typeof row}`,
      );
    }
    const rawId = row.id ?? row.fname;
    const id = rawId === null || rawId === undefined ? `${stem}-${i + 1}` : String(rawId);
    const document = str(row.document ?? row.article ?? row.dialogue, `${where} document`);
    let references: string[];
    if (options.aeslcReferences === "annotations") {
      if (!Array.isArray(row.annotations)) throw new Error(`${where}: no "annotations" (AESLC has them for dev/test)`);
      references = row.annotations.map((r, k) => str(r, `${where} annotations[${k}]`));
    } else if (Array.isArray(row.references)) {
      references = row.references.map((r, k) => str(r, `${where} references[${k}]`));
    } else if (row.summary1 !== undefined) {
      references = ["summary1", "summary2", "summary3"]
        .filter((k) => k in row)
        .map((k) => str(row[k], `${where} ${k}`));
    } else {
      references = [str(row.summary ?? row.highlights, `${where} summary`)];
    }
    if (references.length === 0) throw new Error(`${where}: no reference summary`);
    records.push({ id, document, references });
  }
  // An empty file read as a split of 0 examples; refused by name instead.
  if (records.length === 0) throw new Error(`${file}: holds no records, expected one JSON object per line`);
  return records;
}

// CNN/DM's own end-of-sentence marks (stories use U+2019 and U+201D as closing quotes).
const END_TOKENS = [".", "!", "?", "...", "'", "`", '"', "\u2019", "\u201d", ")"];

/**
 * One original CNN/DailyMail `.story` file, read as Hugging Face's cnn_dailymail 3.0.0 builds its rows: lines
 * stripped; a non-empty line not ending in an end-of-sentence mark gets " ." (captions run into the text
 * otherwise); article lines joined by " "; every line after an "@highlight" line is a highlight, highlights
 * joined by "\n". The id is the file name without ".story" (the SHA-1 of the story's URL).
 */
export function readCnnStory(file: string): SummarizationRecord {
  const article: string[] = [];
  const highlights: string[] = [];
  let inHighlights = false;
  for (const raw of readTextFile(file, "CNN/DailyMail story").split("\n")) {
    let line = raw.trim();
    if (line === "") continue;
    if (line.startsWith("@highlight")) {
      inHighlights = true;
      continue;
    }
    if (!END_TOKENS.some((t) => line.endsWith(t))) line += " .";
    (inHighlights ? highlights : article).push(line);
  }
  if (highlights.length === 0) throw new Error(`${file}: no @highlight block`);
  return { id: path.basename(file, ".story"), document: article.join(" "), references: [highlights.join("\n")] };
}

/** Rows of Hugging Face parquet shards of `source`, in shard then row order. */
export async function readSummarizationParquet(
  files: readonly string[],
  source: SummarizationSource,
): Promise<SummarizationRecord[]> {
  const p = SOURCES[source].parquet;
  if (p === undefined) throw new Error(`${source} is not read from parquet`);
  const records: SummarizationRecord[] = [];
  for (const file of files) {
    const cols = await readParquetColumns(file, [p.id, p.document, p.summary]);
    const ids = cols[p.id]!;
    for (let i = 0; i < ids.length; i++) {
      records.push({ id: ids[i]!, document: cols[p.document]![i]!, references: [cols[p.summary]![i]!] });
    }
  }
  return records;
}

/** Records of the files found by summarizationFiles. */
export async function readSummarizationFiles(
  found: SummarizationFiles,
  options: JsonlReadOptions = {},
): Promise<SummarizationRecord[]> {
  switch (found.layout) {
    case "parquet":
      return readSummarizationParquet(found.files, found.source);
    case "story":
      return found.files.map(readCnnStory);
    case "jsonl":
      return readSummarizationJsonl(found.files[0]!, options);
  }
}

/** Which ids of an official XSum split a set of records covers. */
export interface XSumCoverage {
  split: SummarizationSplitName;
  /** ids in the official split */
  expected: number;
  /** official ids present among the records */
  present: string[];
  /** official ids with no record */
  missing: string[];
  /** record ids that are not in this official split */
  outside: string[];
}

/** Compares record ids with `split` of XSum's official split file (XSUM_SPLIT_FILE). */
export function xsumSplitCoverage(
  splitFile: string,
  split: SummarizationSplitName,
  ids: readonly string[],
): XSumCoverage {
  const lists = JSON.parse(readTextFile(splitFile, "XSum split file")) as Record<string, unknown>;
  const official = lists[split];
  if (!Array.isArray(official)) throw new Error(`${splitFile}: no "${split}" list`);
  const want = official.map(String);
  const have = new Set(ids);
  const inSplit = new Set(want);
  return {
    split,
    expected: want.length,
    present: want.filter((id) => have.has(id)),
    missing: want.filter((id) => !have.has(id)),
    outside: ids.filter((id) => !inSplit.has(id)),
  };
}

const LocationShape = {
  source: z.enum(SUMMARIZATION_SOURCES),
  split: z.enum(SUMMARIZATION_SPLITS, {
    error: () => `expected ${SUMMARIZATION_SPLITS.map((s) => `"${s}"`).join(", ")}`,
  }),
  /** the folder holding xsum/, cnn_dailymail/, … (default: DPSM_DATA_DIR, else the user cache folder; see paths.ts) */
  dataDir: z.string().min(1).optional(),
  /** the data set's own folder, instead of `<dataDir>/<source>` */
  dir: z.string().min(1).optional(),
  /** which layout to read when the folder holds the split in several */
  layout: z.enum(SUMMARIZATION_LAYOUTS).optional(),
  /** AESLC only: "subject" (default; TFDS/HF's target) or "annotations" (dev/test: 3 human subject lines) */
  aeslcReferences: z.enum(["subject", "annotations"]).optional(),
};

type Location = z.output<z.ZodObject<typeof LocationShape>>;

function checkLocation(o: Location, ctx: z.RefinementCtx): void {
  const issue = (p: string, message: string) => ctx.addIssue({ code: "custom", path: [p], message });
  if (o.layout !== undefined && !SOURCES[o.source].layouts.includes(o.layout)) {
    issue("layout", `${o.source} is read from: ${SOURCES[o.source].layouts.join(", ")}`);
  }
  if (o.aeslcReferences !== undefined && o.source !== "aeslc") issue("aeslcReferences", "only applies to aeslc");
  if (o.aeslcReferences === "annotations" && o.split === "train") {
    issue("aeslcReferences", "AESLC train has no annotations (dev and test have 3 each)");
  }
}

export const SummarizationSplitOptionsSchema = z.object(LocationShape).strict().superRefine(checkLocation);
export type SummarizationSplitOptions = z.input<typeof SummarizationSplitOptionsSchema>;

/** One split as read, with how it compares to the full official split. */
export interface SummarizationSplit extends SummarizationFiles {
  /** e.g. "xsum/test (jsonl)" */
  label: string;
  records: SummarizationRecord[];
  /** the official split's size; records.length is smaller for a partial local copy */
  published: number;
  /** XSum, when the folder holds XSUM_SPLIT_FILE: which official ids are present */
  coverage?: XSumCoverage;
}

function locate(o: Location): SummarizationFiles {
  let dir: string;
  if (o.dir !== undefined) dir = path.resolve(o.dir);
  else {
    const root = o.dataDir === undefined ? dataDir() : path.resolve(o.dataDir);
    if (!isDir(root)) throw new Error(`data directory not found: ${root}`);
    dir = path.join(root, o.source);
  }
  return summarizationFiles(dir, o.source, o.split, o.layout);
}

async function readLocated(found: SummarizationFiles, o: Location): Promise<SummarizationSplit> {
  const records = await readSummarizationFiles(found, { aeslcReferences: o.aeslcReferences });
  const splitFile = path.join(found.dir, XSUM_SPLIT_FILE);
  const coverage =
    found.source === "xsum" && isFile(splitFile)
      ? xsumSplitCoverage(
          splitFile,
          found.split,
          records.map((r) => r.id),
        )
      : undefined;
  return {
    ...found,
    label: `${found.source}/${found.split} (${found.layout})`,
    records,
    published: SOURCES[found.source].published[found.split],
    ...(coverage && { coverage }),
  };
}

/** The records of one split of a summarisation data set, with the options validated first. */
export async function summarizationSplit(options: SummarizationSplitOptions): Promise<SummarizationSplit> {
  const o = parseOrThrow(SummarizationSplitOptionsSchema, options, "summarizationSplit options");
  return readLocated(locate(o), o);
}

/** Words as the seed's filter counts them: runs of non-whitespace. */
export function countWords(text: string): number {
  return text.match(/\S+/g)?.length ?? 0;
}

const TokenizerSchema = z
  .object({
    /** names the tokenizer and its version: part of the cache key */
    id: z.string().min(1),
    encode: z.custom<(text: string) => Int32Array | Uint32Array>((v) => typeof v === "function", {
      error: "expected a function (text: string) => Int32Array",
    }),
  })
  .strict();

export const SummarizationDataOptionsSchema = z
  .object({
    ...LocationShape,
    tokenizer: TokenizerSchema,
    /** documents with fewer words are dropped (0 keeps all) */
    minDocumentWords: z.number().int().min(0).default(50),
    /** source ids kept per example, EOS included when eosId is given */
    maxSourceTokens: z.number().int().min(1).default(1024),
    /** target ids kept per example, EOS included when eosId is given */
    maxTargetTokens: z.number().int().min(1).default(128),
    /** appended to every source and target after truncation (none: the tokenizer adds its own specials) */
    eosId: z.number().int().min(0).optional(),
    /** fills each row after its length; consumers mask by length */
    padId: z.number().int().default(0),
    /** where arrays are cached (default: DPSM_CACHE_DIR or ~/.cache/dpsm-native/tokens) */
    cacheDir: z.string().min(1).optional(),
    /** false: tokenise every time and write nothing */
    cache: z.boolean().default(true),
  })
  .strict()
  .superRefine((o, ctx) => {
    checkLocation(o, ctx);
    for (const key of ["maxSourceTokens", "maxTargetTokens"] as const) {
      if (o.eosId !== undefined && o[key] < 2) {
        ctx.addIssue({ code: "custom", path: [key], message: "at least 2 when eosId is given (one id and EOS)" });
      }
    }
  });

export type SummarizationDataOptions = z.input<typeof SummarizationDataOptionsSchema>;

/**
 * Encoder–decoder arrays, row-major: example i's source is sourceTokens[i·S .. i·S + sourceLengths[i]), the rest
 * of its row padId; likewise its target in targetTokens with T. S and T are the longest kept lengths (so at most
 * maxSourceTokens / maxTargetTokens). The target is the first reference; multi-reference evaluation reads
 * the records' `references`.
 */
export interface SummarizationArrays extends NativeExamples {
  ids: string[];
}

/** Examples [from, from + n) of `d` (rows keep their width), with their ids. */
export function sliceExamples<T extends SummarizationArrays>(d: T, from: number, n: number): T {
  const end = Math.min(d.ids.length, from + n);
  const { maxSource: S, maxTarget: T } = d;
  return {
    ...d,
    sourceTokens: d.sourceTokens.slice(from * S, end * S),
    sourceLengths: d.sourceLengths.slice(from, end),
    targetTokens: d.targetTokens.slice(from * T, end * T),
    targetLengths: d.targetLengths.slice(from, end),
    ids: d.ids.slice(from, end),
  };
}

/** What preprocessing did to a split. */
export interface SummarizationCounts {
  /** records read */
  read: number;
  /** dropped for fewer than minDocumentWords words */
  dropped: number;
  /** kept examples whose source / target was cut */
  truncatedSources: number;
  truncatedTargets: number;
}

export interface PreparedSummarization extends SummarizationArrays, SummarizationCounts {
  /** e.g. "xsum/test (jsonl)" */
  source: string;
  fromCache: boolean;
  cacheFile?: string;
}

interface Settings {
  minDocumentWords: number;
  maxSourceTokens: number;
  maxTargetTokens: number;
  eosId?: number;
  padId: number;
}

function packRows(seqs: readonly (Int32Array | Uint32Array)[], width: number, pad: number) {
  const tokens = new Int32Array(seqs.length * width).fill(pad);
  const lengths = new Int32Array(seqs.length);
  seqs.forEach((s, i) => {
    tokens.set(s, i * width);
    lengths[i] = s.length;
  });
  return { tokens, lengths };
}

/**
 * The seed's preprocessing: drop documents under `minDocumentWords` words, encode source and first reference,
 * keep the first max − 1 ids and EOS when `eosId` is given (else the first max ids), pack into padded rows.
 */
export function preprocessSummarization(
  records: readonly SummarizationRecord[],
  encode: (text: string) => Int32Array | Uint32Array,
  settings: Settings,
): SummarizationArrays & SummarizationCounts {
  const kept = records.filter((r) => countWords(r.document) >= settings.minDocumentWords);
  const cut = (ids: Int32Array | Uint32Array, max: number): [Int32Array, boolean] => {
    const room = settings.eosId === undefined ? max : max - 1;
    const body = Int32Array.from(ids.subarray(0, room));
    if (settings.eosId === undefined) return [body, ids.length > room];
    const out = new Int32Array(body.length + 1);
    out.set(body);
    out[body.length] = settings.eosId;
    return [out, ids.length > room];
  };
  let truncatedSources = 0;
  let truncatedTargets = 0;
  const sources: Int32Array[] = [];
  const targets: Int32Array[] = [];
  for (const r of kept) {
    const [s, sCut] = cut(encode(r.document), settings.maxSourceTokens);
    const [t, tCut] = cut(encode(r.references[0]!), settings.maxTargetTokens);
    sources.push(s);
    targets.push(t);
    truncatedSources += sCut ? 1 : 0;
    truncatedTargets += tCut ? 1 : 0;
  }
  const maxSource = sources.reduce((m, s) => Math.max(m, s.length), 0);
  const maxTarget = targets.reduce((m, t) => Math.max(m, t.length), 0);
  const src = packRows(sources, maxSource, settings.padId);
  const tgt = packRows(targets, maxTarget, settings.padId);
  return {
    sourceTokens: src.tokens,
    sourceLengths: src.lengths,
    targetTokens: tgt.tokens,
    targetLengths: tgt.lengths,
    maxSource,
    maxTarget,
    ids: kept.map((r) => r.id),
    read: records.length,
    dropped: records.length - kept.length,
    truncatedSources,
    truncatedTargets,
  };
}

const ARRAY_NAMES = ["sourceTokens", "sourceLengths", "targetTokens", "targetLengths"] as const;

/**
 * Packed encoder–decoder arrays of one split (see preprocessSummarization), read back from the disk cache when
 * the same files, tokenizer id, reader and settings were prepared before (`fromCache`).
 */
export async function prepareSummarizationData(options: SummarizationDataOptions): Promise<PreparedSummarization> {
  const o = parseOrThrow(SummarizationDataOptionsSchema, options, "prepareSummarizationData options");
  const found = locate(o);
  const label = `${found.source}/${found.split} (${found.layout})`;
  const settings: Settings = {
    minDocumentWords: o.minDocumentWords,
    maxSourceTokens: o.maxSourceTokens,
    maxTargetTokens: o.maxTargetTokens,
    ...(o.eosId !== undefined && { eosId: o.eosId }),
    padId: o.padId,
  };
  const build = async () =>
    preprocessSummarization((await readLocated(found, o)).records, o.tokenizer.encode, settings);
  if (!o.cache) return { ...(await build()), source: label, fromCache: false };

  const key = cacheKey({
    pipeline: PIPELINE_VERSION,
    kind: "summarization",
    tokenizer: o.tokenizer.id,
    reader: { source: found.source, layout: found.layout, aeslcReferences: o.aeslcReferences ?? "subject" },
    split: found.split,
    settings,
    // the bytes decide, not where they are: a moved data folder keeps its cache
    files: found.files.map((f) => ({ name: path.basename(f), sha256: hashFile(f) })),
  });
  const file = cacheFilePath(o.cacheDir, `sum-${label}`, key);
  return { ...(await cachedExamples(file, key, build)), source: label };
}

/**
 * Encoder–decoder arrays (with any extra fields of T) read back from the cache file `file` when its key is `key`
 * and its arrays fit its header, else built by `build` and written there.
 */
export async function cachedExamples<T extends SummarizationArrays>(
  file: string,
  key: string,
  build: () => Promise<T>,
): Promise<T & { fromCache: boolean; cacheFile: string }> {
  const onInvalid = (why: string) => process.emitWarning(`token cache ${file}: ${why}; rebuilding it`);
  const cached = readArrayCache(file, key, ARRAY_NAMES, onInvalid);
  if (cached !== undefined) {
    const meta = cached.meta as Omit<T, (typeof ARRAY_NAMES)[number]>;
    const a = cached.arrays as Record<(typeof ARRAY_NAMES)[number], Int32Array>;
    const n = Array.isArray(meta?.ids) ? meta.ids.length : -1;
    if (
      n >= 0 &&
      a.sourceTokens.length === n * meta.maxSource &&
      a.targetTokens.length === n * meta.maxTarget &&
      a.sourceLengths.length === n &&
      a.targetLengths.length === n
    ) {
      return { ...meta, ...a, fromCache: true, cacheFile: file } as T & { fromCache: boolean; cacheFile: string };
    }
    onInvalid("inconsistent header");
  }
  const built = await build();
  const { sourceTokens, sourceLengths, targetTokens, targetLengths, ...meta } = built;
  writeArrayCache(file, key, meta, { sourceTokens, sourceLengths, targetTokens, targetLengths });
  return { ...built, fromCache: false, cacheFile: file };
}
