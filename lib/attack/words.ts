// The words of a source text as the attack sees them: wink-nlp's tokens (MIT, maintained; its English lite model
// tags Universal POS in context at about 95 % accuracy, and flags stop words), each with the whitespace before it,
// so that the text is put back together exactly with one word swapped or deleted. It stands in for the NLTK / flair
// taggers and the stop-word list TextAttack's recipe uses, which are Python only.
import { createRequire } from "node:module";

import type winkNLP from "wink-nlp";
import type model from "wink-eng-lite-web-model";

export interface Word {
  /** the token as written */
  value: string;
  /** whitespace between the previous token and this one */
  space: string;
  /** Universal POS tag in the text's context */
  pos: string;
  /** wink-nlp's stop-word flag */
  stop: boolean;
  /** a plain alphabetic word: the only tokens the attack counts, deletes or swaps */
  word: boolean;
}

// Required on first use, not imported: the package index reaches this file through exp2's report, and the tagger
// with its model is tens of MB that only an attack needs (test/package.test.ts checks what a plain import loads).
const require = createRequire(import.meta.url);
let nlp: ReturnType<typeof winkNLP> | undefined;
function tagger(): ReturnType<typeof winkNLP> {
  nlp ??= (require("wink-nlp") as typeof winkNLP)(require("wink-eng-lite-web-model") as typeof model);
  return nlp;
}

/** The text's tokens with tags; join(words) gives the text back byte for byte. */
export function tokenize(text: string): Word[] {
  const n = tagger();
  const its = n.its;
  const tokens = n.readDoc(text).tokens();
  const values = tokens.out(its.value) as string[];
  const spaces = tokens.out(its.precedingSpaces) as string[];
  const pos = tokens.out(its.pos) as string[];
  const stop = tokens.out(its.stopWordFlag) as unknown as boolean[];
  const type = tokens.out(its.type) as string[];
  const words = values.map((value, i) => ({
    value,
    space: spaces[i]!,
    pos: pos[i]!,
    stop: stop[i]!,
    word: type[i] === "word" && /^[A-Za-z]+$/.test(value),
  }));
  // wink keeps trailing whitespace out of its tokens; keep it so that join() is exact.
  const joined = join(words);
  if (!text.startsWith(joined)) throw new Error("tokenize: wink-nlp's tokens do not rebuild the text");
  if (joined.length < text.length)
    words.push({ value: "", space: text.slice(joined.length), pos: "SPACE", stop: false, word: false });
  return words;
}

export function join(words: readonly Pick<Word, "value" | "space">[]): string {
  return words.map((w) => w.space + w.value).join("");
}

/** Universal POS tags of a short text (the tagger on a window around a swap). */
export function tags(text: string): { value: string; pos: string }[] {
  const n = tagger();
  const tokens = n.readDoc(text).tokens();
  const values = tokens.out(n.its.value) as string[];
  const pos = tokens.out(n.its.pos) as string[];
  return values.map((value, i) => ({ value, pos: pos[i]! }));
}
