// The data a model trains and evaluates on, as it crosses into the native core: packed sequences (causal
// models) or encoder–decoder examples, each checked here, once, before any native work — its shape, and its
// fit to a model (kind, widths, positions, vocabulary). The Trainer and the Evaluator both call these.
import type { PackedTokens } from "./pack.ts";
import type { SummarizationArrays } from "./summarization.ts";
import type { NativeData } from "../native.ts";

/** What a model evaluates and trains on: packed sequences (GPT-2) or encoder–decoder examples (BART, PEGASUS). */
export type ModelData = PackedTokens | SummarizationArrays;

export function isSeq2SeqData(d: ModelData): d is SummarizationArrays {
  return "sourceTokens" in d;
}

/**
 * `d` as model data, or a TypeError naming `name` and what was expected. Typed arrays are checked by tag, so
 * arrays made in another realm pass.
 */
export function checkModelData(d: unknown, name: string): ModelData {
  const isInt32 = (a: unknown) => ArrayBuffer.isView(a) && Object.prototype.toString.call(a) === "[object Int32Array]";
  const o = d as Record<string, unknown> | null;
  const got = d === null ? "null" : Array.isArray(d) ? "an array" : typeof d;
  if (typeof o !== "object" || o === null || Array.isArray(o)) {
    throw new TypeError(
      `${name}: expected packed sequences (prepareLanguageModelData) or encoder-decoder examples ` +
        `(prepareSummarizationData), got ${got}`,
    );
  }
  if ("sourceTokens" in o) {
    const bad = ["sourceTokens", "sourceLengths", "targetTokens", "targetLengths"].find((k) => !isInt32(o[k]));
    if (bad) throw new TypeError(`${name}.${bad}: expected an Int32Array`);
    for (const k of ["maxSource", "maxTarget"]) {
      if (!Number.isSafeInteger(o[k]) || (o[k] as number) < 0) {
        throw new TypeError(`${name}.${k}: expected an integer >= 0, got ${String(o[k])}`);
      }
    }
    return d as ModelData;
  }
  const bad = ["tokens", "lengths"].find((k) => !isInt32(o[k]));
  if (bad) {
    throw new TypeError(
      `${name}.${bad}: expected an Int32Array (packed sequences from prepareLanguageModelData, or encoder-decoder ` +
        "examples with sourceTokens)",
    );
  }
  if (!Number.isSafeInteger(o.contextLength) || (o.contextLength as number) < 2) {
    throw new TypeError(`${name}.contextLength: expected an integer >= 2, got ${String(o.contextLength)}`);
  }
  return d as ModelData;
}

/** What data needs of a model: its kind, ids below its vocabulary, lengths within its positions. */
export interface ModelShape {
  seq2seq: boolean;
  vocabSize: number;
  positions: number;
}

// The first id outside [0, vocabSize) among the first lengths[i] of each row of width `width`.
function firstBadId(tokens: Int32Array, lengths: Int32Array, width: number, vocabSize: number) {
  for (let i = 0; i < lengths.length; i++) {
    const n = lengths[i]!;
    if (n < 0 || n > width) return { row: i, length: n };
    for (let j = i * width; j < i * width + n; j++) {
      const id = tokens[j]!;
      if (id < 0 || id >= vocabSize) return { row: i, position: j - i * width, id };
    }
  }
  return undefined;
}

/**
 * Checks, before any native work, that `d` (already shaped as model data) fits a model of `shape`: the right
 * kind, row arrays of the stated widths, lengths within the rows and the model's positions, every id within its
 * vocabulary. Errors name `name` and what was expected.
 */
export function checkDataFits(d: ModelData, shape: ModelShape, name: string): void {
  if (isSeq2SeqData(d) !== shape.seq2seq) {
    throw new TypeError(
      `${name}: ${shape.seq2seq ? "an encoder-decoder takes encoder-decoder examples (prepareSummarizationData)" : "a GPT-2 takes packed sequences (prepareLanguageModelData)"}`,
    );
  }
  const rows: [string, Int32Array, Int32Array, number][] = isSeq2SeqData(d)
    ? [
        ["source", d.sourceTokens, d.sourceLengths, d.maxSource],
        ["target", d.targetTokens, d.targetLengths, d.maxTarget],
      ]
    : [["sequence", d.tokens, d.lengths, d.contextLength]];
  for (const [what, tokens, lengths, width] of rows) {
    if (tokens.length !== lengths.length * width) {
      throw new RangeError(
        `${name}: ${lengths.length} ${what} rows of width ${width} need ${lengths.length * width} ids, got ${tokens.length}`,
      );
    }
    if (width > shape.positions) {
      throw new RangeError(
        `${name}: ${what}s of up to ${width} tokens exceed the model's ${shape.positions} positions`,
      );
    }
    const bad = firstBadId(tokens, lengths, width, shape.vocabSize);
    if (bad && "length" in bad) {
      throw new RangeError(`${name}: ${what} ${bad.row} has length ${bad.length}, outside [0, ${width}]`);
    }
    if (bad) {
      throw new RangeError(
        `${name}: ${what} ${bad.row} holds id ${bad.id} at position ${bad.position}, outside the model's ` +
          `vocabulary [0, ${shape.vocabSize})`,
      );
    }
  }
}

/** The arrays the native side reads (only those: no strings or ids cross the boundary). */
export function toNativeData(d: ModelData): NativeData {
  if (isSeq2SeqData(d)) {
    const { sourceTokens, sourceLengths, targetTokens, targetLengths, maxSource, maxTarget } = d;
    return { sourceTokens, sourceLengths, targetTokens, targetLengths, maxSource, maxTarget };
  }
  return { tokens: d.tokens, lengths: d.lengths, contextLength: d.contextLength };
}
