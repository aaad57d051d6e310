// The TextFooler attack (lib/attack/): word vectors, its constraints on constructed sentences, and the attack on
// the fixture BART (random-initialised, byte-level: test/fixtures/seq2seq) with real DialogSum dialogues and word
// vectors trained on WikiText-2 (test/fixtures/attack/make_vectors.py).
import path from "node:path";

import test from "ava";

import { seq2seqScorer } from "../lib/attack/seq2seq-scorer.ts";
import { candidatesFor, textFooler } from "../lib/attack/textfooler.ts";
import { WordVectors } from "../lib/attack/word-vectors.ts";
import { join, tokenize } from "../lib/attack/words.ts";
import { summarizationSplit } from "../lib/data/summarization.ts";
import { rougeScores } from "../lib/metrics/rouge.ts";
import { Seq2SeqModel } from "../lib/models/bart.ts";
import { packageRoot } from "../lib/native.ts";
import { BART_FIXTURE } from "./helpers/seq2seq-data.ts";

const VECTORS = path.join(packageRoot, "test", "fixtures", "attack", "wikitext2-w2v-50d.txt");
const vectors = WordVectors.load(VECTORS, "test vectors");

test("GloVe-format vectors: parsed, unit cosines, nearest neighbours by cosine, bad files named", (t) => {
  const v = WordVectors.parse("3 2\nking 1 0\nqueen 0.8 0.6\napple 0 1\nruler 2 0.2\n", "--attack.vectors x");
  t.deepEqual(v.words, ["king", "queen", "apple", "ruler"]);
  t.true(Math.abs(v.cosine("king", "queen")! - 0.8) < 1e-6);
  const near = v.nearest("king", 2, 0.5);
  t.deepEqual(
    near.map((n) => n.word),
    ["ruler", "queen"],
  );
  t.deepEqual(
    v.nearest("king", 50, 0.9).map((n) => n.word),
    ["ruler"],
  );
  t.deepEqual(v.nearest("pear", 5, 0), []);
  t.throws(() => WordVectors.parse("a 1 2\nb 1\n", "--attack.vectors f"), {
    message: /--attack\.vectors f: line 2 has 1/,
  });
  t.throws(() => WordVectors.parse("a 1 x\n", "--attack.vectors f"), { message: /line 1 is not "word v1/ });
  // Trained on real text, the neighbours mean something.
  const MONTHS = "january february april may june july august september october november december".split(" ");
  const months = vectors.nearest("march", 5, 0.5).map((n) => n.word);
  t.true(
    months.every((m) => MONTHS.includes(m)),
    months.join(),
  );
});

test("words: the text rebuilt byte for byte; stop words, punctuation and tags as wink-nlp gives them", (t) => {
  const text = "#Person1#: Hi, Mr. Smith. I'm Doctor Hawkins.  Why are you here today?\n#Person2#: A check-up.  ";
  const words = tokenize(text);
  t.is(join(words), text);
  const the = tokenize("The doctor examined the patient.");
  t.deepEqual(
    the.map((w) => [w.value, w.word, w.stop]),
    [
      ["The", true, true],
      ["doctor", true, false],
      ["examined", true, false],
      ["the", true, true],
      ["patient", true, false],
      [".", false, false],
    ],
  );
  t.is(the[1]!.pos, "NOUN");
});

test("candidates: nearest neighbours within cosine, POS kept, window similarity, stop words and case", (t) => {
  const o = { candidates: 50, minCosine: 0.5, minSimilarity: 0.840845057, window: 15, posMatch: true };
  const words = tokenize("The doctor said that the patient would recover after the surgery in March.");
  const at = (w: string) => words.findIndex((x) => x.value === w);
  // Stop words and punctuation: nothing.
  t.deepEqual(candidatesFor(words, at("the"), vectors, o), []);
  t.deepEqual(candidatesFor(words, words.length - 1, vectors, o), []);
  const march = candidatesFor(words, at("March"), vectors, o);
  t.true(march.length > 0);
  for (const c of march) {
    t.regex(c, /^[A-Z][a-z]+$/, "the original's case");
    t.true(vectors.cosine("march", c.toLowerCase())! >= 0.5);
  }
  // Unconstrained neighbours include words of other parts of speech that the tagger refuses here.
  const loose = candidatesFor(words, at("recover"), vectors, { ...o, posMatch: false, minSimilarity: 0 });
  const strict = candidatesFor(words, at("recover"), vectors, o);
  t.true(strict.every((c) => loose.includes(c)));
  t.true(strict.length < loose.length, `${strict.join()} / ${loose.join()}`);
  // A stricter window similarity allows fewer.
  const tight = candidatesFor(words, at("surgery"), vectors, { ...o, minSimilarity: 0.97 });
  t.true(tight.length <= candidatesFor(words, at("surgery"), vectors, o).length);
});

test("a model that ignores its source is not attacked by rounding: swaps need a drop of minDrop", async (t) => {
  const source = "The doctor said that the patient would recover after the surgery in March.";
  // Constructed scores: the same likelihood whatever the source, up to float32-sized noise that favours longer texts.
  const flat = async (texts: string[]) => Float64Array.from(texts, (x) => -2 - 1e-7 * x.length);
  const a = await textFooler(source, flat, vectors);
  t.deepEqual(a.substitutions, []);
  t.is(a.attackedScore, a.cleanScore);
  const noisy = await textFooler(source, flat, vectors, { minDrop: 0 });
  t.true(noisy.substitutions.length > 0, "without the floor, noise alone buys swaps");
});

// Bytes + 3, the fixture's vocabulary (test/helpers/seq2seq-data.ts), EOS 2; the fixture has 128 positions.
const encode = (text: string) => {
  const body = Int32Array.from(Buffer.from(text, "utf8").subarray(0, 95), (b) => b + 3);
  return Int32Array.from([...body, 2]);
};

// The first words of a dialogue that fit the fixture's source length whole.
function opening(text: string): string {
  let out = "";
  for (const w of text.split(/(?<=\s)/)) {
    if (Buffer.byteLength(out + w) > 95) break;
    out += w;
  }
  return out.trimEnd();
}

test("the attack on the fixture BART: likelihood of its own summary lowered, within budgets, only allowed swaps, deterministic", async (t) => {
  const { records } = await summarizationSplit({ source: "dialogsum", split: "validation" });
  const model = Seq2SeqModel.load(BART_FIXTURE);
  t.teardown(() => model.dispose());
  const options = { maxChangedShare: 0.25, maxQueries: 150 };
  let drops = 0;
  for (const r of records.slice(0, 4)) {
    const source = opening(r.document);
    const ids = encode(source);
    const [target] = await model.generate(
      { ids, mask: new Int32Array(ids.length).fill(1), length: ids.length },
      { maxLength: 16, numBeams: 1 },
    );
    const score = seq2seqScorer(model, target!, { encode, padId: 1, batchSize: 16 });
    const a = await textFooler(source, score, vectors, options);
    const words = tokenize(source);
    t.is(a.words, words.filter((w) => w.word).length);
    t.true(a.substitutions.length <= Math.floor(0.25 * a.words), "perturbation budget");
    t.true(a.queries <= 150, "query budget");
    t.is(a.changedShare, a.substitutions.length / a.words);
    // Only allowed swaps, one per word, and nothing else in the text moved.
    const after = tokenize(a.text);
    t.is(after.length, words.length);
    const changed = words.flatMap((w, i) => (w.value !== after[i]!.value ? [i] : []));
    t.deepEqual(
      changed,
      a.substitutions.map((s) => s.token).sort((x, y) => x - y),
    );
    for (const s of a.substitutions) {
      t.false(words[s.token]!.stop);
      t.true(vectors.cosine(s.from.toLowerCase(), s.to.toLowerCase())! >= 0.5);
    }
    // The likelihood reported is the attacked text's (to float32 batching: scored here in another batch), and lower
    // than the clean one whenever a word was swapped.
    const [clean, attacked] = await score([source, a.text]);
    t.true(Math.abs(clean! - a.cleanScore) < 1e-5);
    t.true(Math.abs(attacked! - a.attackedScore) < 1e-5);
    if (a.substitutions.length) {
      t.true(a.attackedScore < a.cleanScore);
      drops++;
    }
    // Same inputs, same attack.
    t.deepEqual(await textFooler(source, score, vectors, options), a);
    // The summary written from the attacked source, against the clean one (the fixture is random-initialised:
    // against the references both score nothing).
    const attackedIds = encode(a.text);
    const [regenerated] = await model.generate(
      { ids: attackedIds, mask: new Int32Array(attackedIds.length).fill(1), length: attackedIds.length },
      { maxLength: 16, numBeams: 1 },
    );
    const text = (g: Int32Array) =>
      Buffer.from(
        Array.from(
          g.filter((id) => id > 2),
          (id) => id - 3,
        ),
      ).toString();
    const rl = rougeScores(text(regenerated!), text(target!), { types: ["rougeL"] }).rougeL.fmeasure;
    t.log(
      `${r.id}: ${a.substitutions.length}/${a.words} words (${(100 * a.changedShare).toFixed(1)} %), ` +
        `log-lik/token ${a.cleanScore.toFixed(4)} → ${a.attackedScore.toFixed(4)}, ${a.queries} queries, ` +
        `ROUGE-L of the attacked summary vs the clean one ${(100 * rl).toFixed(1)}; ` +
        a.substitutions.map((s) => `${s.from}→${s.to}`).join(", "),
    );
  }
  t.true(drops >= 2, `the attack swapped words in ${drops} of 4 dialogues`);
  // Words past what the encoder reads (here: a prefix over 48 bytes) are neither counted nor tried.
  const source = opening(records[0]!.document);
  const ids = encode(source);
  const [target] = await model.generate(
    { ids, mask: new Int32Array(ids.length).fill(1), length: ids.length },
    { maxLength: 16, numBeams: 1 },
  );
  const score = seq2seqScorer(model, target!, { encode, padId: 1, batchSize: 16 });
  const fits = (prefix: string) => Buffer.byteLength(prefix) <= 48;
  const cut = await textFooler(source, score, vectors, { maxChangedShare: 0.5, maxQueries: 150 }, fits);
  const words = tokenize(source);
  let seen = 0;
  while (seen < words.length && fits(join(words.slice(0, seen + 1)))) seen++;
  t.true(seen < words.length);
  t.is(cut.words, words.slice(0, seen).filter((w) => w.word).length);
  t.true(cut.substitutions.length > 0 && cut.substitutions.every((x) => x.token < seen));
  t.true(cut.text.endsWith(join(words.slice(seen))));
  await t.throwsAsync(
    textFooler("x", async () => new Float64Array(1), vectors, { maxQueries: 0 }),
    {
      message: /textFooler options.*maxQueries/s,
    },
  );
});
