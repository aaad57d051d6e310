// A checkpoint's tokenizer from its Hugging Face files, through @huggingface/tokenizers (tokenizers.js).
// Parity with the Rust `tokenizers` library is what test/tokenizers.test.ts checks, on the fixtures made by
// test/fixtures/tokenizers/make_fixture.py. One known gap: tokenizers.js approximates SentencePiece's Precompiled
// normaliser (PEGASUS, T5) by NFKC plus fixed replacements instead of reading the charsmap; tried on every code
// point against nmt_nfkc it differs at three, U+0344, U+061C and U+200D (zero-width joiner, so emoji sequences),
// none of which occurs in the summarisation data here.
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

import type { Tokenizer } from "@huggingface/tokenizers";

import { MODEL_LIMITS } from "../models/limits.ts";
import { TokenizerFormatError, TokenizerNotFoundError, type Seq2SeqTokenizer, type SpecialTokenIds } from "./types.ts";
import { NotRegularFileError, readTextFile } from "../io/read.ts";

type Json = Record<string, unknown>;

function readJson(file: string, required: boolean): Json | undefined {
  let text: string;
  try {
    text = readTextFile(file);
  } catch (err) {
    if (err instanceof NotRegularFileError) throw new TokenizerFormatError(file, `is ${err.kind}, expected a file`);
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    if (required) throw new TokenizerNotFoundError(file);
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new TokenizerFormatError(file, `not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TokenizerFormatError(file, "expected a JSON object");
  }
  return value as Json;
}

// transformers writes a special token either as its text or as a serialised AddedToken ({"content": …}).
function tokenText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null && typeof (value as Json).content === "string") {
    return (value as Json).content as string;
  }
  return undefined;
}

/** bos/eos as the post-processor frames a single sequence: what the checkpoint really adds to its inputs. */
function framingTokens(processor: unknown): { bos?: number; eos?: number } {
  if (typeof processor !== "object" || processor === null) return {};
  const p = processor as Json;
  if (p.type === "RobertaProcessing" || p.type === "BertProcessing") {
    const [cls, sep] = [p.cls, p.sep] as [unknown, unknown];
    return {
      bos: Array.isArray(cls) && typeof cls[1] === "number" ? cls[1] : undefined,
      eos: Array.isArray(sep) && typeof sep[1] === "number" ? sep[1] : undefined,
    };
  }
  if (p.type === "TemplateProcessing" && Array.isArray(p.single)) {
    const special = (p.special_tokens ?? {}) as Record<string, { ids?: number[] }>;
    const idOf = (piece: unknown) => {
      const name = ((piece as Json).SpecialToken as Json | undefined)?.id;
      return typeof name === "string" ? special[name]?.ids?.[0] : undefined;
    };
    const seq = p.single.findIndex((piece) => "Sequence" in (piece as Json));
    return { bos: seq > 0 ? idOf(p.single[0]) : undefined, eos: idOf(p.single[p.single.length - 1]) };
  }
  if (p.type === "Sequence" && Array.isArray(p.processors)) {
    return Object.assign({}, ...p.processors.map(framingTokens)) as { bos?: number; eos?: number };
  }
  return {};
}

function modelUnkToken(model: Json): string | undefined {
  if (typeof model.unk_token === "string") return model.unk_token;
  if (model.type === "Unigram" && typeof model.unk_id === "number" && Array.isArray(model.vocab)) {
    return tokenText((model.vocab[model.unk_id] as unknown[] | undefined)?.[0]);
  }
  return undefined;
}

const MODEL_TYPES = ["BPE", "WordPiece", "WordLevel", "Unigram"];

const isId = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;

/**
 * Checks tokenizer.json's model and added tokens as Hugging Face's `tokenizers` reads them (a known model type,
 * ids unsigned integers, Unigram's unk_id an index of its vocabulary), and that every id lies below the number of
 * tokens: the file's own size then bounds what tokenizers.js allocates, which grows with the largest id (an id
 * of 1e9 never finished), and no id outside [0, vocabSize) can be encoded. Returns the number of tokens.
 */
function checkVocabulary(file: string, json: Json): number {
  const model = json.model as Json;
  if (!MODEL_TYPES.includes(model.type as string)) {
    throw new TokenizerFormatError(
      file,
      `model.type: expected one of ${MODEL_TYPES.join(", ")}, got ${JSON.stringify(model.type) ?? "nothing"}`,
    );
  }
  const tokens = new Map<string, number>();
  if (model.type === "Unigram") {
    if (!Array.isArray(model.vocab)) throw new TokenizerFormatError(file, "model.vocab: expected an array of pairs");
    model.vocab.forEach((pair: unknown, i) => {
      if (!Array.isArray(pair) || typeof pair[0] !== "string" || typeof pair[1] !== "number") {
        throw new TokenizerFormatError(file, `model.vocab[${i}]: expected a [token, score] pair`);
      }
      tokens.set(pair[0], i);
    });
    const unk = model.unk_id;
    if (unk !== undefined && unk !== null && (!isId(unk) || unk >= model.vocab.length)) {
      throw new TokenizerFormatError(
        file,
        `model.unk_id: expected an index of model.vocab, below ${model.vocab.length}, got ${JSON.stringify(unk)}`,
      );
    }
  } else {
    const vocab = model.vocab;
    if (typeof vocab !== "object" || vocab === null || Array.isArray(vocab)) {
      throw new TokenizerFormatError(file, "model.vocab: expected an object of token → id");
    }
    for (const [token, id] of Object.entries(vocab)) {
      if (!isId(id) || id >= 2 ** 32) {
        throw new TokenizerFormatError(
          file,
          `model.vocab[${JSON.stringify(token)}]: expected a non-negative integer id, got ${JSON.stringify(id)}`,
        );
      }
      tokens.set(token, id);
    }
  }
  const added = json.added_tokens ?? [];
  if (!Array.isArray(added)) throw new TokenizerFormatError(file, "added_tokens: expected an array");
  added.forEach((a: unknown, i) => {
    const { id, content } = (a ?? {}) as Json;
    if (!isId(id) || typeof content !== "string") {
      throw new TokenizerFormatError(file, `added_tokens[${i}]: expected { id: a non-negative integer, content }`);
    }
    tokens.set(content, id);
  });
  const count = tokens.size;
  if (count > MODEL_LIMITS.vocab) {
    throw new TokenizerFormatError(file, `${count} tokens: more than any model here holds (${MODEL_LIMITS.vocab})`);
  }
  for (const [token, id] of tokens) {
    if (id >= count) {
      throw new TokenizerFormatError(
        file,
        `token ${JSON.stringify(token)} has id ${id}, outside the vocabulary of ${count} tokens [0, ${count})`,
      );
    }
  }
  return count;
}

/** Every id the post-processor inserts, with where it is written. */
function processorIds(processor: unknown, where = "post_processor"): [string, unknown][] {
  if (typeof processor !== "object" || processor === null) return [];
  const p = processor as Json;
  if (p.type === "RobertaProcessing" || p.type === "BertProcessing") {
    return (["cls", "sep"] as const).map((k) => [`${where}.${k}`, Array.isArray(p[k]) ? (p[k] as unknown[])[1] : -1]);
  }
  if (p.type === "TemplateProcessing" && typeof p.special_tokens === "object" && p.special_tokens !== null) {
    return Object.entries(p.special_tokens as Record<string, Json>).flatMap(([name, t]) =>
      (Array.isArray(t?.ids) ? t.ids : [-1]).map((id: unknown): [string, unknown] => [
        `${where}.special_tokens[${JSON.stringify(name)}].ids`,
        id,
      ]),
    );
  }
  if (p.type === "Sequence" && Array.isArray(p.processors)) {
    return p.processors.flatMap((q, i) => processorIds(q, `${where}.processors[${i}]`));
  }
  return [];
}

/**
 * Loads `tokenizer.json` (a directory holding it, or the file itself). Which ids are bos/eos/pad/unk/mask comes from
 * special_tokens_map.json, else tokenizer_config.json, else the tokenizer's own post-processor and model; the
 * decoder start id comes from the model's config.json when it sits beside them.
 */
export function loadTokenizer(dirOrFile: string): Seq2SeqTokenizer {
  const isDir = fs.existsSync(dirOrFile) && fs.statSync(dirOrFile).isDirectory();
  const file = isDir ? path.join(dirOrFile, "tokenizer.json") : dirOrFile;
  const dir = path.dirname(file);
  const json = readJson(file, true)!;
  const config = readJson(path.join(dir, "tokenizer_config.json"), false) ?? {};
  const specialMap = readJson(path.join(dir, "special_tokens_map.json"), false) ?? {};
  const modelConfig = readJson(path.join(dir, "config.json"), false) ?? {};
  if (typeof json.model !== "object" || json.model === null) {
    throw new TokenizerFormatError(file, 'no "model" object: not a Hugging Face tokenizer.json');
  }

  const count = checkVocabulary(file, json);
  for (const [where, id] of processorIds(json.post_processor)) {
    if (!isId(id) || id >= count) {
      throw new TokenizerFormatError(
        file,
        `${where}: expected an id of the vocabulary [0, ${count}), got ${JSON.stringify(id)}`,
      );
    }
  }

  let tok: Tokenizer;
  try {
    // Loaded on first use, not when the package is imported (test/package.test.ts).
    const { Tokenizer: HfTokenizer } = createRequire(import.meta.url)(
      "@huggingface/tokenizers",
    ) as typeof import("@huggingface/tokenizers");
    tok = new HfTokenizer(json, config);
  } catch (err) {
    throw new TokenizerFormatError(file, `@huggingface/tokenizers cannot build it: ${(err as Error).message}`, {
      cause: err,
    });
  }

  const idOf = (role: string, source: string, text: string): number => {
    const id = tok.token_to_id(text);
    if (id === undefined)
      throw new TokenizerFormatError(source, `${role} token ${JSON.stringify(text)} is not in the vocabulary`);
    return id;
  };
  const named = (role: "bos" | "eos" | "pad" | "unk" | "mask"): number | undefined => {
    const key = `${role}_token`;
    const fromMap = tokenText(specialMap[key]);
    if (fromMap !== undefined) return idOf(role, path.join(dir, "special_tokens_map.json"), fromMap);
    const fromConfig = tokenText(config[key]);
    if (fromConfig !== undefined) return idOf(role, path.join(dir, "tokenizer_config.json"), fromConfig);
    return undefined;
  };
  const framing = framingTokens(json.post_processor);
  const unkText = modelUnkToken(json.model as Json);
  const eos = named("eos") ?? framing.eos;
  const pad = named("pad") ?? tok.token_to_id("<pad>");
  if (eos === undefined) throw new TokenizerFormatError(file, "no end-of-sequence token found");
  if (pad === undefined) throw new TokenizerFormatError(file, "no padding token found");
  const start = modelConfig.decoder_start_token_id;
  if (start !== undefined && start !== null && (!isId(start) || start >= count)) {
    throw new TokenizerFormatError(
      path.join(dir, "config.json"),
      `decoder_start_token_id: expected an id of the tokenizer's vocabulary [0, ${count}), got ${JSON.stringify(start)}`,
    );
  }
  const specialTokens: SpecialTokenIds = {
    bos: named("bos") ?? framing.bos,
    eos,
    pad,
    unk: named("unk") ?? tok.token_to_id(unkText ?? "<unk>"),
    // BART's <mask>; PEGASUS's map names none (its <mask_1>/<mask_2> are sentence and token masks of its own kind)
    mask: named("mask") ?? tok.token_to_id("<mask>"),
    decoderStart: typeof start === "number" ? start : undefined,
  };
  for (const key of Object.keys(specialTokens) as (keyof SpecialTokenIds)[]) {
    if (specialTokens[key] === undefined) delete specialTokens[key];
  }

  // Ids are below the number of tokens (checkVocabulary), so this is the embedding rows the ids need.
  let vocabSize = 0;
  for (const id of tok.get_vocab(true).values()) vocabSize = Math.max(vocabSize, id + 1);

  return {
    vocabSize,
    specialTokens: Object.freeze(specialTokens),
    encode(text, options = {}) {
      return Int32Array.from(tok.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids);
    },
    decode(ids, options = {}) {
      // No clean-up pass: that is transformers' optional post-edit ("do ." -> "do."), not part of the tokenizer,
      // and the Rust tokenizers' decode, which the fixtures record, does not do it either.
      return tok.decode(Array.from(ids), {
        skip_special_tokens: options.skipSpecialTokens ?? false,
        clean_up_tokenization_spaces: false,
      });
    },
  };
}
