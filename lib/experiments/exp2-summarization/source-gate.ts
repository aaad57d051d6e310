// The source-dependence gate: whether a profile's CE model writes summaries that depend on what it summarises.
// A model that writes one summary whatever the source (a tiny model fine-tuned briefly does) still gets ROUGE
// from the words every reference shares, and its variations still differ in ROUGE and ECE, but none of those
// numbers says anything about summarisation, so no verdict may rest on them. Two checks on each CE run's last
// checkpoint (test split): its summaries differ from one another (different summaries / examples ≥ 90 %), and
// it scores better ROUGE-L with the right source than with another example's (Koehn's paired bootstrap over the
// test examples: the 95 % interval of real − shuffled lies above 0). The gate passes when every CE seed passes.
// The shuffled pass itself runs with the CE job (shuffled-source.ts).
import { pairedBootstrap } from "../../metrics/bootstrap.ts";
import type { Exp2Group } from "./analysis.ts";
import type { FinetuneResult } from "./run-job.ts";

/** The gate's thresholds, stated once. */
export const SOURCE_GATE = {
  /** different summaries / test examples, at least */
  minDifferentShare: 0.9,
} as const;

/** One CE seed's checks. */
export interface SourceCheck {
  seed: number;
  differentShare: number;
  /** mean ROUGE-L F × 100 with the right source and with a shuffled one */
  rougeL: number;
  shuffledRougeL: number;
  /** real − shuffled, × 100, with the paired bootstrap's 95 % interval */
  difference: { estimate: number; low: number; high: number };
  passed: boolean;
}

export interface SourceGate {
  /** every CE seed checked and passed */
  passed: boolean;
  checks: SourceCheck[];
  /** why it failed, for the verdicts ("" when it passed) */
  reason: string;
}

/** The gate on the CE group of one model (clean setting); `samples`: bootstrap samples. */
export function sourceGate(ce: Exp2Group | undefined, samples: number): SourceGate {
  if (!ce) return { passed: false, checks: [], reason: "no CE run to check" };
  const checks: SourceCheck[] = [];
  const unchecked: number[] = [];
  for (const o of ce.observations) {
    const f = o.source as FinetuneResult;
    const shuffled = f.last.shuffledSource;
    if (!shuffled) {
      unchecked.push(o.key.seed);
      continue;
    }
    const real = f.last.test.rougeLPerExample.map((x) => 100 * x);
    const other = shuffled.rougeLPerExample.map((x) => 100 * x);
    const b = pairedBootstrap(real, other, { samples, seed: o.key.seed });
    const differentShare = f.last.test.diversity.uniqueTexts;
    checks.push({
      seed: o.key.seed,
      differentShare,
      rougeL: mean(real),
      shuffledRougeL: mean(other),
      difference: { estimate: b.meanDifference, low: b.low, high: b.high },
      passed: differentShare >= SOURCE_GATE.minDifferentShare && b.low > 0,
    });
  }
  const failed = checks.filter((c) => !c.passed);
  const reasons = [
    ...(unchecked.length ? [`CE seed${unchecked.length > 1 ? "s" : ""} ${unchecked.join(", ")} not checked`] : []),
    ...failed.map((c) => `CE seed ${c.seed}: ${describeCheck(c)}`),
  ];
  const passed = checks.length > 0 && reasons.length === 0;
  return { passed, checks, reason: passed ? "" : reasons.join("; ") || "no CE run to check" };
}

/** "different summaries 12 % (needs ≥ 90 %), ROUGE-L real − shuffled +0.41 [−0.2, 1.0] (needs > 0)". */
export function describeCheck(c: SourceCheck): string {
  const pct = (x: number) => `${(100 * x).toFixed(0)} %`;
  const f = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(2)}`;
  return (
    `different summaries ${pct(c.differentShare)} (needs ≥ ${pct(SOURCE_GATE.minDifferentShare)}), ` +
    `ROUGE-L real − shuffled source ${f(c.difference.estimate)} [${f(c.difference.low)}, ${f(c.difference.high)}] ` +
    "(needs the interval above 0)"
  );
}

const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
