// Distinct-n and length of generated text, on real DialogSum reference summaries: checked against a direct count
// written out here (n-grams as strings, no shared code with lib/metrics/diversity.ts beyond ROUGE's tokeniser).
import test from "ava";

import { summarizationSplit } from "../lib/data/summarization.ts";
import { diversity } from "../lib/metrics/diversity.ts";
import { rougeTokenize } from "../lib/metrics/rouge.ts";

const texts = (await summarizationSplit({ source: "dialogsum", split: "validation" })).records
  .slice(0, 200)
  .map((r) => r.references[0]!);

function direct(all: string[], n: number): number {
  const seen = new Set<string>();
  let total = 0;
  for (const t of all) {
    const w = rougeTokenize(t, false);
    for (let i = 0; i + n <= w.length; i++) {
      seen.add(w.slice(i, i + n).join("\u0000"));
      total++;
    }
  }
  return seen.size / total;
}

test("Distinct-1/2 and mean length of real summaries match a direct count", (t) => {
  const d = diversity(texts);
  t.is(d.distinct1, direct(texts, 1));
  t.is(d.distinct2, direct(texts, 2));
  const words = texts.reduce((s, x) => s + rougeTokenize(x, false).length, 0);
  t.is(d.meanWords, words / texts.length);
  t.true(d.distinct1 > 0.05 && d.distinct1 < 1 && d.distinct2 > d.distinct1, JSON.stringify(d));
});

test("repetition lowers Distinct-n; empty texts count as no n-grams", (t) => {
  const once = diversity(texts.slice(0, 20));
  const twice = diversity([...texts.slice(0, 20), ...texts.slice(0, 20)]);
  t.is(twice.distinct1, once.distinct1 / 2);
  t.is(twice.distinct2, once.distinct2 / 2);
  t.is(once.uniqueTexts, 1);
  t.is(twice.uniqueTexts, 0.5);
  t.deepEqual(diversity(["", ""]), { distinct1: 0, distinct2: 0, meanWords: 0, uniqueTexts: 0.5 });
});

test("bad input names the argument", (t) => {
  t.throws(() => diversity([]), { instanceOf: RangeError, message: /diversity: texts must hold at least one text/ });
  t.throws(() => diversity(["a", 3 as unknown as string]), {
    instanceOf: TypeError,
    message: /texts\[1\] must be a string/,
  });
});
