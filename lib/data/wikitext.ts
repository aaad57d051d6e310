// WikiText splits as text and as documents, in the three layouts it is distributed in: the tokenized
// release (wiki.{split}.tokens, or pytorch/examples' {split}.txt), the raw release (wiki.{split}.raw), and
// Hugging Face's parquet shards of wikitext-{2,103}-raw-v1 (column `text`, one row per raw line).
import fs from "node:fs";
import path from "node:path";

import { parquetShards, readParquetStrings } from "./parquet.ts";
import { readTextFile } from "../io/read.ts";

export const SPLITS = ["train", "valid", "test"] as const;
export type Split = (typeof SPLITS)[number];

export const WIKITEXT_LAYOUTS = ["tokens", "raw", "parquet"] as const;
export type WikiTextLayout = (typeof WIKITEXT_LAYOUTS)[number];

/** The files holding one split, in reading order (several only for sharded parquet). */
export interface WikiTextFiles {
  dir: string;
  split: Split;
  layout: WikiTextLayout;
  files: string[];
}

const HF_SPLIT: Record<Split, string> = { train: "train", valid: "validation", test: "test" };
const HF_CONFIG = /^wikitext-(?:2|103)-raw-v1$/;

function isFile(p: string): boolean {
  return fs.statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;
}

function isDir(p: string): boolean {
  return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

function firstFile(bases: string[], names: string[]): string[] {
  for (const base of bases) {
    for (const name of names) {
      const p = path.join(base, name);
      if (isFile(p)) return [p];
    }
  }
  return [];
}

/** The folders that may hold parquet shards: `dir` and its wikitext-*-raw-v1 subfolders (or only `config`). */
function parquetBases(dir: string, config?: string): string[] {
  if (config !== undefined) return [dir, path.join(dir, config)];
  const subs = isDir(dir) ? fs.readdirSync(dir).filter((f) => HF_CONFIG.test(f) && isDir(path.join(dir, f))) : [];
  return [dir, ...subs.sort().map((f) => path.join(dir, f))];
}

function findFiles(dir: string, layout: WikiTextLayout, split: Split, config?: string): string[] {
  switch (layout) {
    case "tokens":
      return firstFile([dir, path.join(dir, "tokens")], [`wiki.${split}.tokens`, `${split}.txt`]);
    case "raw":
      return firstFile([dir, path.join(dir, "raw")], [`wiki.${split}.raw`]);
    case "parquet": {
      const found = parquetBases(dir, config)
        .map((base) => ({ base, files: parquetShards(base, HF_SPLIT[split]) }))
        .filter((f) => f.files.length > 0);
      if (found.length > 1) {
        throw new Error(
          `${dir}: parquet shards of ${HF_SPLIT[split]} in several folders (${found.map((f) => f.base).join(", ")}); pass the one to read as the folder`,
        );
      }
      return found[0]?.files ?? [];
    }
  }
}

function lookedFor(dir: string, layout: WikiTextLayout, config?: string): string {
  switch (layout) {
    case "tokens":
      return `wiki.{train,valid,test}.tokens or {train,valid,test}.txt in ${dir} or ${path.join(dir, "tokens")}`;
    case "raw":
      return `wiki.{train,valid,test}.raw in ${dir} or ${path.join(dir, "raw")}`;
    case "parquet":
      return (
        `{train,validation,test}-NNNNN-of-NNNNN.parquet or {train,validation,test}/NNNN.parquet in ${dir} or ` +
        path.join(dir, config ?? "wikitext-{2,103}-raw-v1")
      );
  }
}

/**
 * The one layout `dir` holds, whatever the split, so that every split of a folder is read the same way.
 * A folder with none, or with more than one, is an error that says what was looked for.
 */
export function detectWikiTextLayout(dir: string, config?: string): WikiTextLayout {
  if (!isDir(dir)) throw new Error(`WikiText folder not found: ${dir}`);
  const present = WIKITEXT_LAYOUTS.filter((layout) => SPLITS.some((s) => findFiles(dir, layout, s, config).length > 0));
  if (present.length === 1) return present[0]!;
  if (present.length === 0) {
    const all = WIKITEXT_LAYOUTS.map((l) => `  ${l}: ${lookedFor(dir, l, config)}`).join("\n");
    throw new Error(`no WikiText files found in ${dir}; looked for\n${all}`);
  }
  throw new Error(`${dir} holds more than one WikiText layout (${present.join(", ")}); pass the layout to read`);
}

/** The files of `split` under `dir` in `layout` (detected when not given). */
export function wikitextFiles(dir: string, split: Split, layout?: WikiTextLayout, config?: string): WikiTextFiles {
  if (!isDir(dir)) throw new Error(`WikiText folder not found: ${dir}`);
  const chosen = layout ?? detectWikiTextLayout(dir, config);
  const files = findFiles(dir, chosen, split, config);
  if (files.length === 0) {
    throw new Error(
      `WikiText ${split} split (${chosen} layout) not found under ${dir}; looked for ${lookedFor(dir, chosen, config)}`,
    );
  }
  return { dir, split, layout: chosen, files };
}

/** The file of `split` in the tokenized release under a WikiText folder (the folder itself, or its tokens/ subfolder). */
export function wikitextTokensFile(dir: string, split: Split): string {
  return wikitextFiles(dir, split, "tokens").files[0]!;
}

// An empty file read as a split of 0 documents (a perplexity of nothing); refused by name instead.
function emptySplit(files: readonly string[], split: Split): Error {
  return new Error(`WikiText ${split} split: ${files.join(", ")} hold(s) no text, expected a split's articles`);
}

/** The tokenized release's `split` as one string, exactly as stored. */
export function readWikiText(dir: string, split: Split): string {
  const file = wikitextTokensFile(dir, split);
  const text = readTextFile(file, "WikiText split");
  if (text.trim() === "") throw emptySplit([file], split);
  return text;
}

/** The lines of a split without their line ends (parquet rows carry their own "\n"; the raw test copy here is CRLF). */
export async function readWikiTextLines(found: WikiTextFiles): Promise<string[]> {
  const lines: string[] = [];
  for (const file of found.files) {
    const texts =
      found.layout === "parquet" ? await readParquetStrings(file, "text") : [readTextFile(file, "WikiText split")];
    for (const text of texts) {
      for (const line of text.split(/\r?\n/)) lines.push(line);
    }
  }
  if (lines.every((l) => l.trim() === "")) throw emptySplit(found.files, found.split);
  return lines;
}

/** A level-1 heading ` = Title = ` starts an article; ` = = Section = = ` and deeper do not. */
export function isArticleHeading(line: string): boolean {
  return /^= (?!=)(?:.*[^=])? =$/.test(line.trim());
}

/**
 * Articles: each starts at a level-1 heading and runs to the next; blank and whitespace-only lines are
 * dropped, every other line is kept as it is and the lines are joined by "\n". Lines before the first
 * heading (none in WikiText) form a document of their own rather than being lost.
 */
export function splitWikiTextDocuments(lines: Iterable<string>): string[] {
  const docs: string[] = [];
  let current: string[] = [];
  for (const raw of lines) {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "") continue;
    if (isArticleHeading(line) && current.length > 0) {
      docs.push(current.join("\n"));
      current = [];
    }
    current.push(line);
  }
  if (current.length > 0) docs.push(current.join("\n"));
  return docs;
}

/** The articles of `split` under `dir`, in file order. */
export async function readWikiTextDocuments(
  dir: string,
  split: Split,
  layout?: WikiTextLayout,
  config?: string,
): Promise<string[]> {
  return splitWikiTextDocuments(await readWikiTextLines(wikitextFiles(dir, split, layout, config)));
}
