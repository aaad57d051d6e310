// The one entry point from a data source to packed GPT-2 token sequences: validate the options, read the
// documents, tokenise, pack, and keep the result on disk keyed by everything it depends on.
import fs from "node:fs";
import path from "node:path";

import { z } from "zod";

import { parseOrThrow } from "../config.ts";
import { cacheFilePath, cacheKey, hashFileAsync, readTokenCacheAsync, writeTokenCache } from "./cache.ts";
import { OOD_NAMES, OOD_SETS, oodFile, readOodDocuments, type OodName, type OodSet } from "./ood.ts";
import { packDocuments, type PackedArrays, type PackedTokens } from "./pack.ts";
import { dataDir } from "./paths.ts";
import { encodeGpt2DocumentsAsync, GPT2_EOS, GPT2_TOKENIZER_ID } from "./tokenizer.ts";
import {
  readWikiTextLines,
  splitWikiTextDocuments,
  SPLITS,
  WIKITEXT_LAYOUTS,
  wikitextFiles,
  type Split,
  type WikiTextFiles,
} from "./wikitext.ts";

/** Bump when how documents are read, split or packed changes: cached arrays built the old way are then not reused. */
const PIPELINE_VERSION = 1;

export const WIKITEXT_NAMES = ["wikitext-2", "wikitext-103"] as const;

const SourceSchema = z.union(
  [
    z.enum(WIKITEXT_NAMES),
    z.object({ dir: z.string().min(1), layout: z.enum(WIKITEXT_LAYOUTS).optional() }).strict(),
    z.object({ ood: z.enum(OOD_NAMES as [OodName, ...OodName[]]) }).strict(),
  ],
  {
    error: () =>
      `expected ${WIKITEXT_NAMES.map((n) => `"${n}"`).join(", ")}, { dir, layout?: ${WIKITEXT_LAYOUTS.map((l) => `"${l}"`).join(" | ")} } ` +
      `or { ood: ${OOD_NAMES.map((n) => `"${n}"`).join(" | ")} }`,
  },
);

export const LanguageModelDataOptionsSchema = z
  .object({
    /** "wikitext-2" / "wikitext-103" (a folder of that name in the data folder), a WikiText folder, or an OOD set */
    source: SourceSchema,
    /** required for WikiText; OOD sets default to "test" (only PTB has "valid") */
    split: z.enum(SPLITS).optional(),
    contextLength: z
      .number()
      .int()
      .min(2)
      .max(1 << 20)
      .default(1024),
    /** a final partial sequence is kept only with at least this many tokens */
    minRemainder: z.number().int().min(2).default(32),
    /** the folder holding wikitext-2/, ood_lm/, … (default: DPSM_DATA_DIR, else the user cache folder; see paths.ts) */
    dataDir: z.string().min(1).optional(),
    /** where packed arrays are cached (default: DPSM_CACHE_DIR or ~/.cache/dpsm-native/tokens) */
    cacheDir: z.string().min(1).optional(),
    /** false: tokenise every time and write nothing */
    cache: z.boolean().default(true),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (typeof o.source === "object" && "ood" in o.source) {
      const set: OodSet = OOD_SETS[o.source.ood];
      const split = o.split ?? "test";
      if (split === "train" || set.files[split] === undefined) {
        const has = Object.keys(set.files).join(", ");
        ctx.addIssue({ code: "custom", path: ["split"], message: `OOD set "${o.source.ood}" has only: ${has}` });
      }
    } else if (o.split === undefined) {
      ctx.addIssue({ code: "custom", path: ["split"], message: 'required for WikiText: "train", "valid" or "test"' });
    }
  });

export type LanguageModelDataOptions = z.input<typeof LanguageModelDataOptionsSchema>;
type Options = z.output<typeof LanguageModelDataOptionsSchema>;

interface ResolvedSource {
  /** e.g. "wikitext-2/valid (tokens)" */
  label: string;
  /** what, besides the files' bytes, decides how they are read */
  reader: string;
  files: string[];
  read(): Promise<string[]>;
}

/** The folder holding wikitext-2/, ood_lm/, …: `override` (which must exist), else dataDir(). */
export function dataRoot(override?: string): string {
  if (override === undefined) return dataDir();
  const dir = path.resolve(override);
  if (!fs.existsSync(dir)) throw new Error(`data directory not found: ${dir}`);
  return dir;
}

/** The files of `split` of the WikiText set `name` in the data folder `root`, in whichever layout its folder holds. */
export function namedWikiTextFiles(root: string, name: (typeof WIKITEXT_NAMES)[number], split: Split): WikiTextFiles {
  const dir = path.join(root, name);
  const config = `${name}-raw-v1`;
  if (!fs.existsSync(dir)) {
    throw new Error(
      `${name} not found: ${dir} (expected there the tokenized release, the raw release, or Hugging Face's ${config} parquet shards)`,
    );
  }
  return wikitextFiles(dir, split, undefined, config);
}

function resolveSource(o: Options): ResolvedSource {
  const { source } = o;
  if (typeof source === "object" && "ood" in source) {
    const split = o.split === "valid" ? "valid" : "test";
    const root = dataRoot(o.dataDir);
    const file = oodFile(source.ood, root, split);
    if (!fs.existsSync(file)) {
      throw new Error(
        `OOD data file not found: ${file} (fetch the out-of-domain sets with \`dpsm-native data fetch ood_lm\`, ` +
          "place the file there yourself, or evaluate on fewer sets, e.g. exp1's --ood)",
      );
    }
    return {
      label: `ood:${source.ood}/${split}`,
      reader: `ood:${source.ood}`,
      files: [file],
      read: async () => readOodDocuments(source.ood, root, split),
    };
  }
  const split = o.split!; // the schema requires it for WikiText
  const found =
    typeof source === "string"
      ? namedWikiTextFiles(dataRoot(o.dataDir), source, split)
      : wikitextFiles(path.resolve(source.dir), split, source.layout);
  const name = typeof source === "string" ? source : found.dir;
  return {
    label: `${name}/${split} (${found.layout})`,
    reader: `wikitext:${found.layout}`,
    files: found.files,
    read: async () => splitWikiTextDocuments(await readWikiTextLines(found)),
  };
}

/** The files `options` would read, found (or an Error saying what is missing where) without reading them. */
export function locateLanguageModelData(options: LanguageModelDataOptions): { label: string; files: string[] } {
  const { label, files } = resolveSource(parseOrThrow(LanguageModelDataOptionsSchema, options, "data options"));
  return { label, files };
}

/**
 * Packed GPT-2 token sequences of a corpus split: each document encoded whole with tiktoken's GPT-2 BPE
 * (`encode_ordinary`: "<|endoftext|>" in the text is text), followed by EOS 50256, the stream cut into rows of
 * `contextLength`. Read back from the disk cache when the same files, tokenizer and settings were prepared
 * before (`fromCache`).
 */
export async function prepareLanguageModelData(options: LanguageModelDataOptions): Promise<PackedTokens> {
  const o = parseOrThrow(LanguageModelDataOptionsSchema, options, "prepareLanguageModelData options");
  const src = resolveSource(o);
  const settings = { contextLength: o.contextLength, minRemainder: o.minRemainder, eos: GPT2_EOS };
  // Off the event loop's critical path: files read and hashed in slices, documents encoded a few at a time.
  const build = async (): Promise<PackedArrays> =>
    packDocuments(await encodeGpt2DocumentsAsync(await src.read(), src.label), settings);
  if (!o.cache) return { ...(await build()), source: src.label, fromCache: false };

  const key = cacheKey({
    pipeline: PIPELINE_VERSION,
    tokenizer: GPT2_TOKENIZER_ID,
    reader: src.reader,
    split: o.split ?? "test",
    settings,
    // the bytes decide, not where they are: a moved data folder keeps its cache
    files: await Promise.all(src.files.map(async (f) => ({ name: path.basename(f), sha256: await hashFileAsync(f) }))),
  });
  const file = cacheFilePath(o.cacheDir, `${src.label}-${o.contextLength}`, key);
  const cached = await readTokenCacheAsync(file, key, (why) =>
    process.emitWarning(`token cache ${file}: ${why}; rebuilding it`),
  );
  if (cached !== undefined) return { ...cached, source: src.label, fromCache: true, cacheFile: file };

  const packed = await build();
  writeTokenCache(file, key, packed);
  return { ...packed, source: src.label, fromCache: false, cacheFile: file };
}
