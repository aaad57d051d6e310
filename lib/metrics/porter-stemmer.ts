// The Porter stemmer as NLTK's PorterStemmer runs it in its default NLTK_EXTENSIONS mode, which is what Google's
// rouge-score uses for ROUGE with stemming (docs/metrics.md). It is written here because no npm package implements
// that mode: the npm Porter stemmers follow Martin Porter's own versions (MARTIN_EXTENSIONS), and on about 1.3 % of
// words the two disagree (used → use here, us there; always → alway; displayed → display). Rules are tried in the
// order NLTK tries them: within a step the first rule whose suffix matches decides, even when its condition fails.
// test/rouge.test.ts checks every word of the fixture test/fixtures/rouge/stems.txt against NLTK's output.

// NLTK's table of irregular forms, consulted before any rule.
const IRREGULAR: ReadonlyMap<string, string> = new Map(
  Object.entries({
    sky: ["sky", "skies"],
    die: ["dying"],
    lie: ["lying"],
    tie: ["tying"],
    news: ["news"],
    inning: ["innings", "inning"],
    outing: ["outings", "outing"],
    canning: ["cannings", "canning"],
    howe: ["howe"],
    proceed: ["proceed"],
    exceed: ["exceed"],
    succeed: ["succeed"],
  }).flatMap(([stem, forms]) => forms.map((form): [string, string] => [form, stem])),
);

const isVowelLetter = (c: string) => c === "a" || c === "e" || c === "i" || c === "o" || c === "u";

// A 'y' is a consonant when it starts the word or follows a vowel, and a vowel after a consonant.
function isConsonant(word: string, i: number): boolean {
  const c = word[i]!;
  if (isVowelLetter(c)) return false;
  if (c !== "y") return true;
  // A run of y's alternates; walked without recursion so that a long "yyyy…" token cannot overflow the stack.
  let negate = false;
  while (i > 0 && word[i] === "y") {
    negate = !negate;
    i--;
  }
  return !isVowelLetter(word[i]!) !== negate;
}

function consonantFlags(word: string): boolean[] {
  const flags: boolean[] = [];
  for (let i = 0; i < word.length; i++) {
    const c = word[i]!;
    flags.push(isVowelLetter(c) ? false : c === "y" ? i === 0 || !flags[i - 1] : true);
  }
  return flags;
}

// m in [C](VC){m}[V]: the number of vowel → consonant transitions.
function measure(stem: string): number {
  const flags = consonantFlags(stem);
  let m = 0;
  for (let i = 1; i < flags.length; i++) if (!flags[i - 1] && flags[i]) m++;
  return m;
}

const positiveMeasure = (stem: string) => measure(stem) > 0;
const measureAbove1 = (stem: string) => measure(stem) > 1;
const containsVowel = (stem: string) => consonantFlags(stem).some((c) => !c);

function endsDoubleConsonant(word: string): boolean {
  const n = word.length;
  return n >= 2 && word[n - 1] === word[n - 2] && isConsonant(word, n - 1);
}

// *o: consonant–vowel–consonant with the last not w, x or y; NLTK also accepts a two-letter vowel–consonant word.
function endsCvc(word: string): boolean {
  const n = word.length;
  if (n >= 3) {
    const last = word[n - 1]!;
    if (
      isConsonant(word, n - 3) &&
      !isConsonant(word, n - 2) &&
      isConsonant(word, n - 1) &&
      last !== "w" &&
      last !== "x" &&
      last !== "y"
    ) {
      return true;
    }
  }
  return n === 2 && !isConsonant(word, 0) && isConsonant(word, 1);
}

type Rule = readonly [suffix: string, replacement: string, condition?: (stem: string) => boolean];

function applyRules(word: string, rules: readonly Rule[]): string {
  for (const [suffix, replacement, condition] of rules) {
    if (word.endsWith(suffix)) {
      const stem = word.slice(0, word.length - suffix.length);
      return condition === undefined || condition(stem) ? stem + replacement : word;
    }
  }
  return word;
}

function step1a(word: string): string {
  if (word.length === 4 && word.endsWith("ies")) return word.slice(0, -3) + "ie";
  return applyRules(word, [
    ["sses", "ss"],
    ["ies", "i"],
    ["ss", "ss"],
    ["s", ""],
  ]);
}

function step1b(word: string): string {
  if (word.endsWith("ied")) return word.slice(0, -3) + (word.length === 4 ? "ie" : "i");
  if (word.endsWith("eed")) {
    const stem = word.slice(0, -3);
    return measure(stem) > 0 ? stem + "ee" : word;
  }
  let stem: string | undefined;
  for (const suffix of ["ed", "ing"]) {
    if (word.endsWith(suffix) && containsVowel(word.slice(0, -suffix.length))) {
      stem = word.slice(0, -suffix.length);
      break;
    }
  }
  if (stem === undefined) return word;
  for (const [suffix, replacement] of [
    ["at", "ate"],
    ["bl", "ble"],
    ["iz", "ize"],
  ] as const) {
    if (stem.endsWith(suffix)) return stem.slice(0, -suffix.length) + replacement;
  }
  if (endsDoubleConsonant(stem)) {
    const last = stem[stem.length - 1]!;
    return last === "l" || last === "s" || last === "z" ? stem : stem.slice(0, -1);
  }
  return measure(stem) === 1 && endsCvc(stem) ? stem + "e" : stem;
}

// NLTK turns y into i only after a consonant, and not when that consonant is the whole stem (sky, fly → fli).
function step1c(word: string): string {
  return applyRules(word, [["y", "i", (stem) => stem.length > 1 && isConsonant(stem, stem.length - 1)]]);
}

const STEP2_RULES: readonly Rule[] = [
  ["ational", "ate", positiveMeasure],
  ["tional", "tion", positiveMeasure],
  ["enci", "ence", positiveMeasure],
  ["anci", "ance", positiveMeasure],
  ["izer", "ize", positiveMeasure],
  ["bli", "ble", positiveMeasure],
  ["alli", "al", positiveMeasure],
  ["entli", "ent", positiveMeasure],
  ["eli", "e", positiveMeasure],
  ["ousli", "ous", positiveMeasure],
  ["ization", "ize", positiveMeasure],
  ["ation", "ate", positiveMeasure],
  ["ator", "ate", positiveMeasure],
  ["alism", "al", positiveMeasure],
  ["iveness", "ive", positiveMeasure],
  ["fulness", "ful", positiveMeasure],
  ["ousness", "ous", positiveMeasure],
  ["aliti", "al", positiveMeasure],
  ["iviti", "ive", positiveMeasure],
  ["biliti", "ble", positiveMeasure],
  ["fulli", "ful", positiveMeasure],
  // The l of -logi stays with the stem for the measure, so that short stems (geo-, theo-) qualify.
  ["logi", "log", (stem) => positiveMeasure(stem + "l")],
];

function step2(word: string): string {
  // NLTK applies ALLI → AL first and then step 2 again on the result.
  if (word.endsWith("alli") && positiveMeasure(word.slice(0, -4))) return step2(word.slice(0, -4) + "al");
  return applyRules(word, STEP2_RULES);
}

const STEP3_RULES: readonly Rule[] = [
  ["icate", "ic", positiveMeasure],
  ["ative", "", positiveMeasure],
  ["alize", "al", positiveMeasure],
  ["iciti", "ic", positiveMeasure],
  ["ical", "ic", positiveMeasure],
  ["ful", "", positiveMeasure],
  ["ness", "", positiveMeasure],
];

const STEP4_RULES: readonly Rule[] = [
  ["al", "", measureAbove1],
  ["ance", "", measureAbove1],
  ["ence", "", measureAbove1],
  ["er", "", measureAbove1],
  ["ic", "", measureAbove1],
  ["able", "", measureAbove1],
  ["ible", "", measureAbove1],
  ["ant", "", measureAbove1],
  ["ement", "", measureAbove1],
  ["ment", "", measureAbove1],
  ["ent", "", measureAbove1],
  ["ion", "", (stem) => measureAbove1(stem) && (stem.endsWith("s") || stem.endsWith("t"))],
  ["ou", "", measureAbove1],
  ["ism", "", measureAbove1],
  ["ate", "", measureAbove1],
  ["iti", "", measureAbove1],
  ["ous", "", measureAbove1],
  ["ive", "", measureAbove1],
  ["ize", "", measureAbove1],
];

// Both E rules are tried here (unlike elsewhere), as Porter's examples imply.
function step5a(word: string): string {
  if (!word.endsWith("e")) return word;
  const stem = word.slice(0, -1);
  const m = measure(stem);
  return m > 1 || (m === 1 && !endsCvc(stem)) ? stem : word;
}

function step5b(word: string): string {
  return word.endsWith("ll") && measure(word.slice(0, -1)) > 1 ? word.slice(0, -1) : word;
}

/** The NLTK_EXTENSIONS Porter stem of `word` (lower-cased first, as NLTK does). */
export function porterStem(word: string): string {
  if (typeof word !== "string") throw new TypeError(`porterStem: word must be a string, got ${typeof word}`);
  const lower = word.toLowerCase();
  const irregular = IRREGULAR.get(lower);
  if (irregular !== undefined) return irregular;
  if (word.length <= 2) return lower;
  let w = step1a(lower);
  w = step1b(w);
  w = step1c(w);
  w = step2(w);
  w = applyRules(w, STEP3_RULES);
  w = applyRules(w, STEP4_RULES);
  w = step5a(w);
  return step5b(w);
}
