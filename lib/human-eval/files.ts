// The human study's files, stated once: the public manifest (study.json), the key that unblinds it (key.json,
// kept from the raters), a rater's exported ratings, and the analysis they make (human-eval.md / .json). Ratings
// files come from outside, so they are validated by their schema here, each error naming the file and the field.
import fs from "node:fs";
import path from "node:path";

import { z } from "zod";

import { parseOrThrow } from "../config.ts";
import { readTextFile } from "../io/read.ts";

/** A bad argument or input file of `dpsm-native human-eval`: the message names it (the CLI exits 2). */
export class ArgumentError extends Error {
  override name = "ArgumentError";
}

export const STUDY_FILE = "study.json";
export const KEY_FILE = "key.json";
export const ANALYSIS_MD = "human-eval.md";
export const ANALYSIS_JSON = "human-eval.json";
export const STUDY_FORMAT = "dpsm-native human study";
export const RATINGS_FORMAT = "dpsm-native human-eval ratings";

export const CRITERIA = ["fluency", "informativeness"] as const;
export type Criterion = (typeof CRITERIA)[number];
export const CHOICES = ["A", "B", "tie"] as const;
export type Choice = (typeof CHOICES)[number];

/** study.json: what was prepared, from which run; nothing in it unblinds a rating. */
export interface StudyManifest {
  format: typeof STUDY_FORMAT;
  version: 1;
  id: string;
  created: string;
  /** the exp2 run folder, absolute */
  run: string;
  model: string;
  setting: string;
  runSeed: number;
  /** e.g. "dialogsum/test (jsonl)" */
  dataset: string;
  /** [reference, compared] per pair, as --pairs named them */
  pairs: [string, string][];
  /** articles per pair */
  n: number;
  raters: string[];
  seed: number;
  /** items each rater sees, attention checks included, and how many of them are checks */
  itemsPerRater: number;
  checksPerRater: number;
  /** each rater's page, relative to the study folder */
  pages: Record<string, string>;
}

/** One item of one rater's page, unblinded. */
export interface KeyItem {
  item: string;
  /** index into the manifest's pairs */
  pair: number;
  article: string;
  /** the systems shown as summary A and summary B */
  A: string;
  B: string;
  /** an attention check: the item it repeats (order flipped) */
  duplicateOf?: string;
}

/** key.json: per rater, every item of the page. */
export interface StudyKey {
  studyId: string;
  raters: Record<string, KeyItem[]>;
}

const choice = z.enum(CHOICES, { error: () => `expected "A", "B" or "tie"` }).nullable();

/** A rater's export (lib/human-eval/rater-page.js writes it). */
export const RatingsFileSchema = z.object({
  format: z.literal(RATINGS_FORMAT, { error: () => `expected "${RATINGS_FORMAT}"` }),
  version: z.literal(1),
  studyId: z.string().min(1),
  rater: z.string().min(1),
  exportedAt: z.string(),
  ratings: z.array(
    z.object({
      item: z.string().min(1),
      fluency: choice,
      informativeness: choice,
      comment: z.string().max(10_000),
      ratedAt: z.string().nullable(),
    }),
  ),
});
export type RatingsFile = z.output<typeof RatingsFileSchema>;

/** `file` parsed as JSON; an ArgumentError naming `what` and the file when it cannot be read or parsed. */
export function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = readTextFile(file, what);
  } catch (e) {
    throw new ArgumentError(`${what}: cannot read ${file} (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ArgumentError(`${what}: ${file} is not valid JSON (${(e as Error).message})`);
  }
}

/** A rater's ratings file, validated; errors name the file and the field. */
export function readRatingsFile(file: string): RatingsFile {
  const what = `ratings file ${file}`;
  try {
    return parseOrThrow(RatingsFileSchema, readJson(file, "ratings file"), what);
  } catch (e) {
    if (e instanceof ArgumentError) throw e;
    throw new ArgumentError((e as Error).message);
  }
}

/** The study in `dir`: its manifest and key; an ArgumentError when `dir` holds none. */
export function readStudy(dir: string): { manifest: StudyManifest; key: StudyKey } {
  const missing = [STUDY_FILE, KEY_FILE].filter((f) => !fs.existsSync(path.join(dir, f)));
  if (missing.length > 0) {
    throw new ArgumentError(
      `study folder: ${dir} holds no study prepared by \`dpsm-native human-eval prepare\` (missing ${missing.join(", ")})`,
    );
  }
  const manifest = readJson(path.join(dir, STUDY_FILE), "study folder") as StudyManifest;
  const key = readJson(path.join(dir, KEY_FILE), "study folder") as StudyKey;
  if (manifest.format !== STUDY_FORMAT || key.studyId !== manifest.id) {
    throw new ArgumentError(`study folder: ${dir}: ${STUDY_FILE} and ${KEY_FILE} are not of one study`);
  }
  return { manifest, key };
}
