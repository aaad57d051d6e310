// BART's denoising data on real WikiText-2 articles: targets decode back to the articles, sources are the
// targets with spans masked (recovered by aligning the two) and sentences shuffled, the noise follows the seed,
// and the prepared split is cached.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import test from "ava";

import {
  dataDir,
  denoisingExamples,
  prepareDenoisingData,
  readWikiTextDocuments,
  splitSentences,
  type DenoisingArrays,
} from "../lib/data/index.ts";
import { GPT2_SEQ2SEQ_MASK, GPT2_SEQ2SEQ_PAD, gpt2Seq2SeqTokenizer } from "../lib/tokenizers/index.ts";

const WT2 = path.join(dataDir(), "wikitext-2");
const tok = gpt2Seq2SeqTokenizer();
const EOS = tok.specialTokens.eos;
const MAX = 128;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dpsm-denoise-test-"));
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }));

const validDocs = await readWikiTextDocuments(WT2, "valid");

function rows(a: DenoisingArrays) {
  return a.ids.map((id, i) => ({
    id,
    source: Array.from(a.sourceTokens.subarray(i * a.maxSource, i * a.maxSource + a.sourceLengths[i]!)),
    target: Array.from(a.targetTokens.subarray(i * a.maxTarget, i * a.maxTarget + a.targetLengths[i]!)),
    sourcePad: Array.from(a.sourceTokens.subarray(i * a.maxSource + a.sourceLengths[i]!, (i + 1) * a.maxSource)),
    targetPad: Array.from(a.targetTokens.subarray(i * a.maxTarget + a.targetLengths[i]!, (i + 1) * a.maxTarget)),
  }));
}

/**
 * The lengths of the spans the masks of `source` stand for, when `source` is `target` with each span replaced by
 * one mask (a mask matching any run of tokens, none included); undefined when no such reading exists. Wildcard
 * matching with backtracking to the last mask: each mask takes the shortest run that lets the rest match.
 */
function alignSpans(source: number[], target: number[]): number[] | undefined {
  const starts: number[] = [];
  const lengths: number[] = [];
  let p = 0;
  let s = 0;
  let star = -1; // index in source of the last mask passed
  let starS = 0; // where in target that mask's run ends now
  while (s < target.length) {
    if (p < source.length && source[p] === GPT2_SEQ2SEQ_MASK) {
      starts.push(s);
      lengths.push(0);
      star = p++;
      starS = s;
    } else if (p < source.length && source[p] === target[s]) {
      p++;
      s++;
    } else if (star >= 0) {
      // the last mask takes one more token; masks after it are read again
      const k = source.slice(0, star + 1).filter((x) => x === GPT2_SEQ2SEQ_MASK).length - 1;
      starts.length = lengths.length = k + 1;
      lengths[k] = ++starS - starts[k]!;
      p = star + 1;
      s = starS;
    } else return undefined;
  }
  for (; p < source.length; p++) {
    if (source[p] !== GPT2_SEQ2SEQ_MASK) return undefined;
    lengths.push(0);
  }
  return lengths;
}

function expand(source: number[], spans: number[], target: number[]): number[] {
  const out: number[] = [];
  let k = 0;
  for (const x of source) {
    if (x === GPT2_SEQ2SEQ_MASK) out.push(...target.slice(out.length, out.length + spans[k++]!));
    else out.push(x);
  }
  return out;
}

const plain = denoisingExamples(validDocs, { tokenizer: tok, maxTokens: MAX, seed: 7, permuteSentences: false });

test("targets decode back to the articles; rows are framed, padded and within maxTokens", (t) => {
  const byDoc = new Map<number, number[]>();
  let sentenceCuts = 0;
  let chunkCuts = 0;
  for (const r of rows(plain)) {
    const d = Number(/^doc(\d+)\.chunk\d+\.copy0$/.exec(r.id)![1]);
    t.true(r.target.length <= MAX && r.source.length <= r.target.length, r.id);
    t.is(r.target.at(-1), EOS);
    t.is(r.source.at(-1), EOS);
    t.true(r.sourcePad.every((x) => x === GPT2_SEQ2SEQ_PAD) && r.targetPad.every((x) => x === GPT2_SEQ2SEQ_PAD));
    const previous = byDoc.get(d) ?? [];
    if (previous.length > 0) {
      // a chunk starts where a sentence starts, unless a sentence was longer than the room
      chunkCuts++;
      const text = tok.decode(previous);
      let at = 0;
      const cuts = new Set(splitSentences(validDocs[d]!).map((s) => (at += s.length)));
      if (validDocs[d]!.startsWith(text) && cuts.has(text.length)) sentenceCuts++;
    }
    byDoc.set(d, [...previous, ...r.target.slice(0, -1)]);
  }
  t.is(byDoc.size, validDocs.length);
  for (const [d, ids] of byDoc) t.is(tok.decode(ids), validDocs[d]!, `doc ${d}`);
  t.log(`${plain.ids.length} chunks of ${validDocs.length} articles; ${sentenceCuts}/${chunkCuts} cuts at sentences`);
  t.true(sentenceCuts >= 0.97 * chunkCuts);
  t.is(plain.maxTarget, MAX);
});

test("sentences: their concatenation is the text, and each ends a sentence or a line", (t) => {
  for (const doc of validDocs.slice(0, 10)) {
    const s = splitSentences(doc);
    t.is(s.join(""), doc);
    t.true(s.slice(0, -1).every((x, i) => /[.!?]$/.test(x) || /^\s*\n/.test(s[i + 1]!)));
  }
  t.deepEqual(splitSentences(" One . Two ! \n = Three = \n Four ? "), [
    " One .",
    " Two !",
    " \n = Three =",
    " \n Four ? ",
  ]);
});

test("without permutation the source is the target with spans masked: ~maskRatio of tokens, spans ~Poisson(3)", (t) => {
  let masked = 0;
  let masks = 0;
  let total = 0;
  let inserts = 0;
  let adjacent = 0;
  for (const r of rows(plain)) {
    const target = r.target.slice(0, -1);
    const source = r.source.slice(0, -1);
    const spans = alignSpans(source, target);
    if (spans === undefined) return t.fail(`${r.id}: the source does not align with the target`);
    t.deepEqual(expand(source, spans, target), target, r.id);
    masked += spans.reduce((a, b) => a + b, 0);
    masks += spans.length;
    inserts += spans.filter((l) => l === 0).length;
    total += target.length;
    adjacent += source.filter((x, i) => x === GPT2_SEQ2SEQ_MASK && source[i + 1] === GPT2_SEQ2SEQ_MASK).length;
  }
  t.is(masked, plain.maskedTokens);
  t.is(total, plain.totalTokens);
  t.is(adjacent, 0);
  const share = masked / total;
  const mean = masked / masks;
  t.log(`${plain.ids.length} chunks: ${(100 * share).toFixed(2)}% masked, ${masks} spans of mean ${mean.toFixed(3)}`);
  t.log(`${inserts} inserted masks (0-length spans as aligned)`);
  t.true(Math.abs(share - 0.3) < 0.005);
  // The last span of a chunk is cut to fit the budget, so the mean is a little under λ.
  t.true(mean > 2.6 && mean < 3.2, `mean span ${mean}`);
  t.true(inserts > 0);
});

test("without masking, permuted sources hold the target's sentences in another order", (t) => {
  const docs = validDocs.slice(0, 12);
  const a = denoisingExamples(docs, { tokenizer: tok, maxTokens: MAX, seed: 11, maskRatio: 0 });
  t.is(a.maskedTokens, 0);
  let tiled = 0;
  let reordered = 0;
  const all = rows(a);
  for (const r of all) {
    t.false(r.source.includes(GPT2_SEQ2SEQ_MASK));
    t.deepEqual(
      [...r.source].sort((x, y) => x - y),
      [...r.target].sort((x, y) => x - y),
    );
    // Re-encode the chunk's sentences; where they give the target (the chunk is whole sentences), the source
    // must be those same pieces laid end to end in some order.
    const units = splitSentences(tok.decode(r.target.slice(0, -1))).map((s) =>
      Array.from(tok.encode(s, { addSpecialTokens: false })),
    );
    if (units.flat().join() !== r.target.slice(0, -1).join()) continue;
    const tile = (at: number, left: number[][]): boolean =>
      left.length === 0 ||
      left.some(
        (u, i) =>
          u.every((x, j) => r.source[at + j] === x) &&
          tile(
            at + u.length,
            left.filter((_, k) => k !== i),
          ),
      );
    t.true(tile(0, units), r.id);
    tiled++;
    if (r.source.join() !== r.target.join()) reordered++;
  }
  t.log(`${tiled}/${all.length} chunks re-split into their sentences; ${reordered} of them reordered`);
  t.true(tiled >= 0.9 * all.length);
  t.true(reordered >= 0.8 * tiled);
});

test("the seed decides the noise; copies are noised independently", (t) => {
  const docs = validDocs.slice(0, 8);
  const options = { tokenizer: tok, maxTokens: 64, seed: 5 };
  const a = denoisingExamples(docs, options);
  t.deepEqual(denoisingExamples(docs, options), a);
  const b = denoisingExamples(docs, { ...options, seed: 6 });
  t.deepEqual(b.targetTokens, a.targetTokens);
  t.notDeepEqual(b.sourceTokens, a.sourceTokens);

  const k = denoisingExamples(docs, { ...options, copies: 3 });
  t.is(k.ids.length, 3 * a.ids.length);
  t.deepEqual(k.ids.slice(0, 3), ["doc0.chunk0.copy0", "doc0.chunk0.copy1", "doc0.chunk0.copy2"]);
  const r = rows(k);
  let distinct = 0;
  for (let i = 0; i < r.length; i += 3) {
    t.deepEqual(r[i + 1]!.target, r[i]!.target);
    t.deepEqual(r[i + 2]!.target, r[i]!.target);
    if (new Set(r.slice(i, i + 3).map((x) => x.source.join())).size === 3) distinct++;
  }
  t.true(distinct >= 0.95 * a.ids.length, `${distinct} of ${a.ids.length} chunks have 3 different sources`);
  t.is(k.totalTokens, 3 * a.totalTokens);
});

test("bad options are errors that name the option", (t) => {
  const docs = validDocs.slice(0, 1);
  const base = { tokenizer: tok, maxTokens: MAX, seed: 1 };
  t.throws(() => denoisingExamples(docs, { ...base, maskRatio: 1.5 }), { message: /options\.maskRatio/ });
  t.throws(() => denoisingExamples(docs, { ...base, maxTokens: 2 }), { message: /options\.maxTokens/ });
  t.throws(() => denoisingExamples(docs, { ...base, poissonLambda: 0 }), { message: /options\.poissonLambda/ });
  t.throws(() => denoisingExamples(docs, { ...base, copies: 0 }), { message: /options\.copies/ });
  t.throws(() => denoisingExamples(docs, { ...base, seed: -1 }), { message: /options\.seed/ });
  t.throws(() => denoisingExamples(docs, { ...base, maskratio: 0.2 } as never), { message: /"maskratio"/ });
  const noMask = { ...tok, specialTokens: { eos: EOS, pad: GPT2_SEQ2SEQ_PAD } };
  t.throws(() => denoisingExamples(docs, { ...base, tokenizer: noMask }), { message: /options\.tokenizer: .*mask/ });
  t.throws(() => denoisingExamples(docs, { ...base, tokenizer: {} as never }), { message: /options\.tokenizer/ });
  t.throws(() => denoisingExamples([1] as never, base), { message: /documents\.0/ });
});

test("prepareDenoisingData: WikiText-2's split, cached on disk; a bad split or a tokenizer without id is named", async (t) => {
  const cacheDir = path.join(tmp, "cache");
  const tokenizer = { ...tok, id: "gpt2-seq2seq-test" };
  const options = { split: "valid", tokenizer, maxTokens: MAX, seed: 7, permuteSentences: false, cacheDir } as const;
  const first = await prepareDenoisingData(options);
  t.false(first.fromCache);
  t.is(first.source, "wikitext-2/valid (tokens)");
  t.true(first.cacheFile!.startsWith(cacheDir));
  const second = await prepareDenoisingData(options);
  t.true(second.fromCache);
  const { source, fromCache, cacheFile, ...arrays } = second;
  t.deepEqual(arrays, plain);
  t.deepEqual({ ...first, fromCache: true }, second);
  t.false((await prepareDenoisingData({ ...options, seed: 8 })).fromCache);
  await t.throwsAsync(prepareDenoisingData({ ...options, split: "validation" as never }), {
    message: /options\.split/,
  });
  await t.throwsAsync(prepareDenoisingData({ ...options, tokenizer: tok as never }), {
    message: /options\.tokenizer: needs an id/,
  });
  t.log(source, fromCache, path.basename(cacheFile!));
});
