// Diversity and length of generated text: corpus-level Distinct-n (Li et al., 2016, "A Diversity-Promoting
// Objective Function for Neural Conversation Models": distinct n-grams over all n-grams of all outputs) and the
// mean length in words. Words are ROUGE's tokens without stemming (lib/metrics/rouge.ts), so length and
// diversity count what ROUGE compares.
import { rougeTokenize } from "./rouge.ts";

export interface DiversityStats {
  /** distinct unigrams / unigrams, over every text; 0 when there are none */
  distinct1: number;
  /** distinct bigrams / bigrams (bigrams do not cross texts); 0 when there are none */
  distinct2: number;
  /** mean words per text */
  meanWords: number;
  /** different texts / texts (1: every text differs; 1/n: one text repeated), comparing the texts as given */
  uniqueTexts: number;
}

/** Distinct-1, Distinct-2 and the mean length of `texts`. */
export function diversity(texts: readonly string[]): DiversityStats {
  if (!Array.isArray(texts) || texts.length === 0) throw new RangeError("diversity: texts must hold at least one text");
  const unigrams = new Set<string>();
  const bigrams = new Set<string>();
  let words = 0;
  let pairs = 0;
  for (const [i, text] of texts.entries()) {
    if (typeof text !== "string") throw new TypeError(`diversity: texts[${i}] must be a string, got ${typeof text}`);
    const tokens = rougeTokenize(text, false);
    words += tokens.length;
    for (const [k, t] of tokens.entries()) {
      unigrams.add(t);
      if (k > 0) {
        bigrams.add(`${tokens[k - 1]} ${t}`);
        pairs++;
      }
    }
  }
  return {
    distinct1: words ? unigrams.size / words : 0,
    distinct2: pairs ? bigrams.size / pairs : 0,
    meanWords: words / texts.length,
    uniqueTexts: new Set(texts).size / texts.length,
  };
}
