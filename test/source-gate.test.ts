// Experiment 2's source-dependence gate (lib/experiments/exp2-summarization/source-gate.ts, shuffled-source.ts) on constructed
// per-example ROUGE-L scores: a CE model writing one summary whatever the source, or scoring no better with the
// right source than with another example's, fails it; one whose summaries differ and score better with their own
// source passes; a run saved before the gate existed is not counted as checked. The shuffled pass's sources are a
// derangement applied row by row to the encoder arrays.
import test from "ava";

import type { Exp2Group } from "../lib/experiments/exp2-summarization/analysis.ts";
import { permutedSources, shuffledSourceOrder } from "../lib/experiments/exp2-summarization/shuffled-source.ts";
import { SOURCE_GATE, sourceGate } from "../lib/experiments/exp2-summarization/source-gate.ts";

test("the shuffled order is a deterministic derangement pairing examples n/2 apart", (t) => {
  for (const n of [2, 3, 7, 100]) {
    const order = shuffledSourceOrder(n);
    t.deepEqual(
      [...order].sort((a, b) => a - b),
      Array.from({ length: n }, (_, i) => i),
      `a permutation of ${n}`,
    );
    t.true(
      order.every((j, i) => j !== i),
      `no example keeps its own source (n = ${n})`,
    );
    t.deepEqual(order, shuffledSourceOrder(n));
  }
  t.is(shuffledSourceOrder(100)[0], 50);
  t.throws(() => shuffledSourceOrder(1), { instanceOf: RangeError, message: /n must be an integer ≥ 2/ });
});

test("permutedSources moves each source row with its mask", (t) => {
  // Three sources of lengths 2, 3, 1 in rows of S = 3 (0 pads).
  const arrays = { sourceTokens: Int32Array.from([1, 2, 0, 3, 4, 5, 6, 0, 0]), sourceLengths: [2, 3, 1], maxSource: 3 };
  const p = permutedSources(arrays as never, [2, 0, 1]);
  t.deepEqual([...p.ids], [6, 0, 0, 1, 2, 0, 3, 4, 5]);
  t.deepEqual([...p.mask], [1, 0, 0, 1, 1, 0, 1, 1, 1]);
  t.is(p.length, 3);
});

/** A CE group of constructed runs: per seed, per-example ROUGE-L F with the right and a shuffled source. */
function ceGroup(runs: { real: number[]; shuffled?: number[]; different: number }[]): Exp2Group {
  return {
    key: { model: "tiny", variation: "ce", setting: "clean" },
    observations: runs.map((r, seed) => ({
      key: { model: "tiny", variation: "ce", setting: "clean", seed },
      source: {
        last: {
          test: { rougeLPerExample: r.real, diversity: { uniqueTexts: r.different } },
          transfer: {},
          ...(r.shuffled ? { shuffledSource: { rougeLPerExample: r.shuffled } } : {}),
        },
      },
    })),
  } as unknown as Exp2Group;
}

const real = Array.from({ length: 60 }, (_, j) => 0.25 + 0.02 * (j % 5));

test("a CE model whose summaries depend on the source passes", (t) => {
  const gate = sourceGate(ceGroup([{ real, shuffled: real.map((x) => x - 0.08), different: 0.97 }]), 500);
  t.true(gate.passed);
  t.is(gate.reason, "");
  const [c] = gate.checks;
  t.is(c!.seed, 0);
  t.true(Math.abs(c!.difference.estimate - 8) < 1e-9, "real − shuffled in ROUGE points");
  t.true(c!.difference.low > 0);
});

test("one summary whatever the source fails, however ROUGE compares", (t) => {
  const gate = sourceGate(ceGroup([{ real, shuffled: real.map((x) => x - 0.08), different: 0.01 }]), 500);
  t.false(gate.passed);
  t.regex(gate.reason, /CE seed 0: different summaries 1 % \(needs ≥ 90 %\)/);
  t.true(SOURCE_GATE.minDifferentShare === 0.9);
});

test("no better with the right source than with another's fails", (t) => {
  // Shuffled scores that are the real ones in another order: the same mean, an interval around 0.
  const shuffled = real.map((_, j) => real[(j + 1) % real.length]!);
  const gate = sourceGate(ceGroup([{ real, shuffled, different: 1 }]), 500);
  t.false(gate.passed);
  t.true(gate.checks[0]!.difference.low <= 0);
  t.regex(gate.reason, /real − shuffled source/);
});

test("every CE seed must pass, and a run without the shuffled pass is not checked", (t) => {
  const good = { real, shuffled: real.map((x) => x - 0.08), different: 1 };
  const bad = { real, shuffled: real, different: 1 };
  t.false(sourceGate(ceGroup([good, bad]), 500).passed);
  const old = sourceGate(ceGroup([good, { real, different: 1 }]), 500);
  t.false(old.passed);
  t.regex(old.reason, /CE seed 1 not checked/);
  t.false(sourceGate(undefined, 500).passed);
  t.true(sourceGate(ceGroup([good, good]), 500).passed);
});
