// Evaluation sets whole by default on every profile but the CPU quick ones, and the report saying which sets a
// run evaluated in part and by how much (issue 25: test, validation and OOD sets were silent prefixes).
import test from "ava";

import type { PackedTokens } from "../lib/data/pack.ts";
import type { Exp1Data } from "../lib/experiments/exp1-lm/data.ts";
import { exp1 } from "../lib/experiments/exp1-lm/index.ts";
import { exp1EvaluationSets } from "../lib/experiments/exp1-lm/report.ts";
import { exp2 } from "../lib/experiments/exp2-summarization/index.ts";
import { evaluationSetsLine, isCapped, packedTokens } from "../lib/experiments/framework/eval-sets.ts";
import { resolveConfig } from "../lib/experiments/framework/index.ts";

/** `sequences` packed rows of 64 tokens, the last one 10 short. */
function packed(sequences: number): PackedTokens {
  const lengths = Int32Array.from({ length: sequences }, (_, i) => (i === sequences - 1 ? 54 : 64));
  return { sequences, lengths, totalTokens: 64 * sequences - 10 } as PackedTokens;
}
const DATA = {
  valid: packed(4001),
  test: packed(4577),
  ood: { ptb: packed(1644), tinyshakespeare: packed(5282), wikinews: packed(3039), books: packed(1628) },
} as unknown as Exp1Data;

test("every exp-1 and exp-2 profile but quick evaluates whole sets by default", (t) => {
  for (const profile of ["cpu-study", "wt2-small", "full"]) {
    const c = resolveConfig(exp1, profile);
    t.deepEqual([c.evalMaxSequences, c.testMaxSequences, c.oodMaxSequences], [0, 0, 0], profile);
    t.false(exp1EvaluationSets(c, DATA).some(isCapped), profile);
  }
  for (const profile of ["xsum-base", "full"]) {
    const c = resolveConfig(exp2, profile);
    t.deepEqual([c.evalMaxSequences, c.testMaxExamples, c.transferMaxExamples], [0, 0, 0], profile);
  }
});

test("the report's line names each capped set, how much of it was evaluated and the setting that capped it", (t) => {
  const whole = evaluationSetsLine(exp1EvaluationSets(resolveConfig(exp1, "cpu-study"), DATA));
  t.is(
    whole,
    "Evaluation sets, all whole: validation (checkpoint selection, temperature fit) 4,001 sequences (256,054 " +
      "tokens); test 4,577 sequences (292,918 tokens); OOD ptb 1,644 sequences (105,206 tokens); OOD tinyshakespeare " +
      "5,282 sequences (338,038 tokens); OOD wikinews 3,039 sequences (194,486 tokens); OOD books 1,628 sequences " +
      "(104,182 tokens).",
  );
  const quick = evaluationSetsLine(exp1EvaluationSets(resolveConfig(exp1, "quick", { ood: ["ptb"] }), DATA));
  t.regex(quick, /^Evaluation sets — \*\*capped for speed, a prefix evaluated\*\*/);
  t.regex(quick, /test: the first 96 of 4,577 sequences, 6,144 of 292,918 tokens \(2\.1 %; testMaxSequences 96\)/);
  t.regex(quick, /OOD ptb: the first 24 of 1,644 sequences, 1,536 of 105,206 tokens \(1\.5 %; oodMaxSequences 24\)/);
  t.regex(quick, /validation \(checkpoint selection, temperature fit\): the first 32 of 4,001 sequences/);
  // A cap at or above the set's size evaluates it whole, and says so.
  const big = { name: "test", total: 10, cap: 50, setting: "testMaxExamples", unit: "pairs" };
  t.is(evaluationSetsLine([big]), "Evaluation sets, all whole: test 10 pairs.");
  const small = { ...big, cap: 3 };
  t.is(
    evaluationSetsLine([small, { ...big, name: "validation" }]),
    "Evaluation sets — **capped for speed, a prefix evaluated** (0 for the setting, or its flag, evaluates the " +
      "whole set): test: the first 3 of 10 pairs (30 %; testMaxExamples 3). Evaluated whole: validation 10 pairs.",
  );
  t.is(packedTokens([5, 6, 7])(2), 11);
});
