// BERTScore against the bert-score package (0.3.13, transformers 4.40.2): test/fixtures/bertscore/make_fixture.py
// saved a random-initialised 3-layer RoBERTa (save_pretrained) with a byte-level BPE trained on WikiText-2, and
// bert_score.score's P/R/F on 240 real pairs (XSum leads and articles against their summaries, two DialogSum
// annotators' summaries of one dialogue) at layers 2 and 3, with and without idf, raw and rescaled with a
// baseline file made as bert-score made its own.
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { BertScorer, bertScore, readBaseline } from "../lib/metrics/bertscore.ts";
import { buildInfo, native, packageRoot } from "../lib/native.ts";

const DIR = path.join(packageRoot, "test", "fixtures", "bertscore");
const MODEL = path.join(DIR, "roberta");
const BASELINE = path.join(DIR, "baseline.tsv");
const TOL = 1e-5;

interface Fixture {
  hiddenStates: { layer: number; ids: number[][]; mask: number[][]; states: number[] };
  pairs: { candidate: string; reference: string; candidateIds: number[]; referenceIds: number[] }[];
  cases: {
    layer: number;
    idf: boolean;
    rescale: boolean;
    hash: string;
    precision: number[];
    recall: number[];
    f1: number[];
  }[];
}
const fixture = JSON.parse(fs.readFileSync(path.join(DIR, "expected.json"), "utf8")) as Fixture;
const candidates = fixture.pairs.map((p) => p.candidate);
const references = fixture.pairs.map((p) => p.reference);

const maxDiff = (a: readonly number[], b: readonly number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));

test("texts are tokenised as bert-score's sent_encode does (prefix space, <s> … </s>, truncated to 128)", async (t) => {
  const scorer = await BertScorer.load({ model: MODEL, layer: 2 });
  try {
    let truncated = 0;
    for (const p of fixture.pairs) {
      t.deepEqual(scorer.encode(p.candidate), p.candidateIds);
      t.deepEqual(scorer.encode(p.reference), p.referenceIds);
      if (p.candidateIds.length === 128) truncated++;
    }
    t.true(truncated >= 10, `${truncated} texts reach the 128-token limit`);
    t.deepEqual(scorer.encode("   "), [0, 2]);
  } finally {
    scorer.dispose();
  }
});

test("the encoder's states after a layer equal transformers' RobertaModel's, padding and all", async (t) => {
  const h = fixture.hiddenStates;
  const encoder = await native().loadTextEncoder(
    JSON.stringify({
      config: JSON.parse(fs.readFileSync(path.join(MODEL, "config.json"), "utf8")) as unknown,
      weights: path.join(MODEL, "model.safetensors"),
      device: "cpu",
    }),
  );
  try {
    t.is(encoder.numLayers, 3);
    t.is(encoder.maxTokens, 128);
    const [batch, length] = [h.ids.length, h.ids[0]!.length];
    const states = await encoder.hiddenStates(
      { ids: Int32Array.from(h.ids.flat()), mask: Int32Array.from(h.mask.flat()), batch, length },
      h.layer,
    );
    t.is(states.length, h.states.length);
    t.true(maxDiff(Array.from(states), h.states) < 1e-5, `max |Δ| ${maxDiff(Array.from(states), h.states)}`);
    // Checked on the calling thread, before any work is queued.
    t.throws(() => encoder.hiddenStates({ ids: Int32Array.of(9999), mask: Int32Array.of(1), batch: 1, length: 1 }, 1), {
      instanceOf: RangeError,
      message: /ids: expected values in \[0, 4001\)/,
    });
    await t.throwsAsync(
      () => encoder.hiddenStates({ ids: Int32Array.of(5), mask: Int32Array.of(1), batch: 1, length: 1 }, 4),
      {
        message: /layer: expected 0 to 3, got 4/,
      },
    );
  } finally {
    encoder.dispose();
  }
});

test("P/R/F equal bert_score.score within 1e-5: layers 2 and 3, with and without idf and rescaling", async (t) => {
  t.is(fixture.pairs.length, 240);
  for (const layer of [2, 3]) {
    for (const c of fixture.cases.filter((x) => x.layer === layer)) {
      const r = await bertScore(candidates, references, {
        model: MODEL,
        layer,
        idf: c.idf,
        baseline: c.rescale ? BASELINE : undefined,
        batchSize: 48,
      });
      const d = [maxDiff(r.precision, c.precision), maxDiff(r.recall, c.recall), maxDiff(r.f1, c.f1)];
      t.log(
        `layer ${layer} idf ${c.idf} rescale ${c.rescale}: max |Δ| P ${d[0]!.toExponential(2)} R ${d[1]!.toExponential(2)} F ${d[2]!.toExponential(2)}`,
      );
      for (const x of d) t.true(x <= TOL, `${c.hash}: max |Δ| ${x}`);
      t.is(r.hash, c.hash.replace(/\(hug_trans=[^)]*\)/, "(dpsm-native)"));
    }
  }
});

test("on CUDA (where a device is visible): the same P/R/F within 1e-5", async (t) => {
  if (buildInfo().cudaDeviceCount === 0) {
    t.log("no CUDA device: skipped");
    t.pass();
    return;
  }
  const c = fixture.cases.find((x) => x.layer === 3 && x.idf && !x.rescale)!;
  const r = await bertScore(candidates, references, { model: MODEL, layer: 3, idf: true, device: "cuda" });
  for (const [ours, theirs] of [
    [r.precision, c.precision],
    [r.recall, c.recall],
    [r.f1, c.f1],
  ] as const) {
    t.true(maxDiff(ours, theirs) <= TOL, `max |Δ| ${maxDiff(ours, theirs)}`);
  }
});

test("several references: each score is the best over them, as bert-score's grouped references", async (t) => {
  const scorer = await BertScorer.load({ model: MODEL, layer: 2 });
  try {
    const c = candidates.slice(0, 6);
    const a = await scorer.score(c, references.slice(0, 6));
    const b = await scorer.score(c, references.slice(6, 12));
    const both = await scorer.score(
      c,
      c.map((_, i) => [references[i]!, references[6 + i]!]),
    );
    // Batches of other texts pad differently, which moves float32 sums by ~1e-8.
    const close = (x: number, y: number) => t.true(Math.abs(x - y) < 1e-6, `${x} vs ${y}`);
    for (let i = 0; i < c.length; i++) {
      close(both.precision[i]!, Math.max(a.precision[i]!, b.precision[i]!));
      close(both.recall[i]!, Math.max(a.recall[i]!, b.recall[i]!));
      close(both.f1[i]!, Math.max(a.f1[i]!, b.f1[i]!));
    }
  } finally {
    scorer.dispose();
  }
});

test("bootstrap interval around the mean; bad options are refused by name", async (t) => {
  const r = await bertScore(candidates.slice(0, 40), references.slice(0, 40), {
    model: MODEL,
    layer: 3,
    bootstrap: { samples: 200, seed: 1 },
  });
  t.true(r.interval!.low.f1 <= r.mean.f1 && r.mean.f1 <= r.interval!.high.f1);
  await t.throwsAsync(() => bertScore(["a"], ["b"], { model: MODEL }), {
    message: /bertscore\.layer: required for 'roberta'/,
  });
  await t.throwsAsync(() => bertScore(["a"], ["b"], { model: MODEL, layer: 4 }), {
    message: /bertscore\.layer: expected 0 to 3/,
  });
  await t.throwsAsync(() => bertScore(["a"], ["b"], { model: MODEL, layer: 2, rescale: true }), {
    message: /no published baseline here for roberta at layer 2/,
  });
  await t.throwsAsync(() => bertScore(["a"], ["b", "c"], { model: MODEL, layer: 2 }), {
    message: /as many references/,
  });
  t.throws(() => readBaseline(BASELINE, 9), { message: /no row for layer 9/ });
  t.deepEqual(readBaseline(BASELINE, 0), { p: 0.63520968, r: 0.63670886, f: 0.63523132 });
});
