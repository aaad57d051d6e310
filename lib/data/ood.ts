// Out-of-domain evaluation text (ood_lm/ in the data folder): PTB newswire, tiny Shakespeare, Wikinews
// articles and book passages, each read into documents.
import fs from "node:fs";
import path from "node:path";

import { dataDir } from "./paths.ts";
import { readTextFile } from "../io/read.ts";

export type OodSplit = "valid" | "test";

export interface OodSet {
  description: string;
  /** file per split, relative to the data folder */
  files: Partial<Record<OodSplit, string>>;
  read(file: string): string[];
}

function readText(file: string): string {
  if (!fs.existsSync(file)) throw new Error(`OOD data file not found: ${file}`);
  const text = readTextFile(file, "OOD data file");
  if (text.trim() === "") throw new Error(`OOD data file ${file} holds no text`);
  return text;
}

/**
 * One sentence per line, far too short to be documents of their own: the file is one stream, its
 * non-blank lines kept as they are and joined by "\n".
 */
function readLineStream(file: string): string[] {
  const lines = readText(file)
    .split(/\r?\n/)
    .filter((l) => l.trim() !== "");
  return lines.length > 0 ? [lines.join("\n")] : [];
}

function readWholeFile(file: string): string[] {
  const text = readText(file);
  return text.trim() === "" ? [] : [text];
}

/** JSON lines whose `gold_ref` is the whole document (the prompt `instructions` is a prefix of it). */
function readGoldRefs(file: string): string[] {
  const docs: string[] = [];
  readText(file)
    .split(/\r?\n/)
    .forEach((line, i) => {
      if (line.trim() === "") return;
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch (e) {
        throw new Error(`${file}:${i + 1}: not JSON: ${(e as Error).message}`, { cause: e });
      }
      const ref = (row as { gold_ref?: unknown } | null)?.gold_ref;
      if (typeof ref !== "string") throw new Error(`${file}:${i + 1}: expected a string "gold_ref"`);
      docs.push(ref);
    });
  return docs;
}

export const OOD_SETS = {
  ptb: {
    description: "Penn Treebank (WSJ), Mikolov's LM preprocessing; one stream per file",
    files: { valid: "ood_lm/ptb/ptb.valid.txt", test: "ood_lm/ptb/ptb.test.txt" },
    read: readLineStream,
  },
  tinyshakespeare: {
    description: "tiny Shakespeare (char-rnn); the whole file is one document",
    files: { test: "ood_lm/tinyshakespeare/input.txt" },
    read: readWholeFile,
  },
  wikinews: {
    description: "500 English Wikinews articles (gold_ref)",
    files: { test: "ood_lm/wikinews_cd/test.jsonl" },
    read: readGoldRefs,
  },
  books: {
    description: "500 fiction passages (gold_ref)",
    files: { test: "ood_lm/book_cd/test.jsonl" },
    read: readGoldRefs,
  },
} as const satisfies Record<string, OodSet>;

export type OodName = keyof typeof OOD_SETS;
export const OOD_NAMES = Object.keys(OOD_SETS) as OodName[];

/** The file of an OOD set's split; only PTB has a validation split. */
export function oodFile(name: OodName, root: string, split: OodSplit = "test"): string {
  const set: OodSet = OOD_SETS[name];
  const rel = set.files[split];
  if (rel === undefined) {
    throw new RangeError(`OOD set "${name}" has no ${split} split (it has ${Object.keys(set.files).join(", ")})`);
  }
  return path.join(root, rel);
}

export function readOodDocuments(name: OodName, root: string = dataDir(), split: OodSplit = "test"): string[] {
  const set: OodSet | undefined = Object.hasOwn(OOD_SETS, name) ? OOD_SETS[name] : undefined;
  if (set === undefined)
    throw new RangeError(`unknown OOD set "${String(name)}": expected one of ${OOD_NAMES.join(", ")}`);
  return set.read(oodFile(name, root, split));
}
