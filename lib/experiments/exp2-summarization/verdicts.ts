// The seed's success criteria for a DPSM variation of one model, judged from experiment 2's aggregated numbers
// (ROUGE-L and ECE-10 of the last checkpoint on the test split unless a criterion says otherwise; the scaffolding
// and the criteria every experiment shares: ../framework/verdicts.ts).
import type { AuditResult } from "../framework/efficiency-audit.ts";
import { type PairedBootstrap, pairedBootstrap } from "../../metrics/bootstrap.ts";
import type { Verdict } from "../framework/spec.ts";
import {
  calibrationCriterion,
  type Criterion,
  efficiencyCriterion,
  fmt,
  type GroupLookup,
  judgeVariation,
  sharedSeeds,
  tallyCriterion,
} from "../framework/verdicts.ts";
import type { Exp2Group } from "./analysis.ts";
import type { FinetuneResult } from "./run-job.ts";

/**
 * Per-example paired bootstrap of ROUGE-L F (test split, last checkpoint) between two groups' runs of their first
 * common seed: the test for one seed, where a t-test over seeds has nothing to work with.
 */
export function rougeBootstrap(a: Exp2Group, b: Exp2Group, samples: number): PairedBootstrap | undefined {
  const seed = a.seeds.find((s) => b.seeds.includes(s));
  if (seed === undefined) return undefined;
  const per = (g: Exp2Group) =>
    (g.observations.find((o) => o.key.seed === seed)!.source as FinetuneResult).last.test.rougeLPerExample.map(
      (x) => 100 * x,
    );
  return pairedBootstrap(per(a), per(b), { samples, seed });
}

const rl = (g: Exp2Group) => g.metrics.rougeL.mean;

const quality: Criterion<Exp2Group> = ({ d, ce, brier }, v) => {
  const gain = rl(d) - rl(ce);
  const worseThanBoth = brier ? rl(d) < rl(ce) && rl(d) < rl(brier) : false;
  v.judge(
    "Task quality: ROUGE-L at least 0.3 above CE's, and never worse than both CE and Brier",
    gain >= 0.3 && !worseThanBoth,
    `ROUGE-L ${fmt(rl(d))} vs CE ${fmt(rl(ce))} (${gain >= 0 ? "+" : ""}${fmt(gain)})${brier ? `, Brier ${fmt(rl(brier))}` : ""}`,
  );
};

const robustness: Criterion<Exp2Group> = ({ dpsm, get }, v) => {
  const checks: { ok: boolean; where: string }[] = [];
  for (const setting of ["clean", "summary-swap"] as const) {
    const a = get(dpsm, setting);
    const b = get("ce", setting);
    if (!a || !b) continue;
    for (const { seed, i, j } of sharedSeeds(a, b)) {
      const holds = (x: typeof a.perSeed, y: typeof b.perSeed) =>
        x.rougeL[i]! >= y.rougeL[j]! && x.ece10[i]! < y.ece10[j]!;
      checks.push({ ok: holds(a.perSeed, b.perSeed), where: `${setting}/test/seed${seed}` });
      for (const [set, s] of Object.entries(a.sets)) {
        const t = b.sets[set];
        if (!t || set.startsWith("best")) continue;
        checks.push({ ok: holds(s!.perSeed, t.perSeed), where: `${setting}/${set}/seed${seed}` });
      }
    }
  }
  const c = "Robustness: DPSM's advantage (ROUGE-L ≥ CE's and ECE-10 below it) holds in ≥ 75 % of seeds × settings";
  tallyCriterion(v, c, checks);
};

const degradation: Criterion<Exp2Group> = ({ dpsm, d, ce, get }, v) => {
  const c = "Degradation: under summary-swap noise and domain shift, DPSM's ROUGE-L drop ≤ 70 % of CE's";
  const parts: string[] = [];
  let all = true;
  let any = false;
  const judge = (what: string, dropD: number, dropCe: number) => {
    any = true;
    const ok = dropD <= 0.7 * dropCe;
    all &&= ok;
    parts.push(`${what}: Δ ${fmt(dropD)} vs CE's ${fmt(dropCe)}${ok ? "" : " ✗"}`);
  };
  const dn = get(dpsm, "summary-swap");
  const cn = get("ce", "summary-swap");
  if (dn && cn) judge("swap noise", rl(d) - rl(dn), rl(ce) - rl(cn));
  for (const set of Object.keys(d.sets).filter((s) => !s.startsWith("best"))) {
    const t = ce.sets[set];
    if (t) judge(`→ ${set} (zero-shot)`, rl(d) - d.sets[set]!.metrics.rougeL.mean, rl(ce) - t.metrics.rougeL.mean);
  }
  if (!any) v.missing(c, "summary-swap runs or zero-shot sets");
  else v.judge(c, all, parts.join("; "));
};

const significance =
  (bootstrapSamples: number): Criterion<Exp2Group> =>
  ({ d, ce }, v) => {
    const c = "Significance: DPSM's ROUGE-L differs from CE's at p < 0.05";
    const t = d.versus.ce?.rougeL;
    if (t) {
      v.judge(c, t.p < 0.05, `paired t-test over ${t.df + 1} seeds: t = ${fmt(t.t)}, p = ${t.p.toPrecision(3)}`);
      return;
    }
    const b = rougeBootstrap(d, ce, bootstrapSamples);
    if (!b) return v.missing(c, "a seed both ran");
    v.judge(
      c,
      b.p < 0.05,
      `one seed: per-example paired bootstrap (${b.samples} samples), Δ ROUGE-L ${fmt(b.meanDifference)} ` +
        `[${fmt(b.low)}, ${fmt(b.high)}], p ${b.p === 0 ? `< ${1 / b.samples}` : `= ${b.p.toPrecision(3)}`}`,
    );
  };

/**
 * The verdicts of `dpsm` among one model's groups (`get`). `memoryComparable`: false on the CPU, where a run's
 * peak is the process's resident high-water mark, which also holds what earlier runs of the same process left
 * allocated; only CUDA's allocator peaks are per run.
 */
export function exp2Verdicts(
  get: GroupLookup<Exp2Group>,
  dpsm: string,
  options: { bootstrapSamples: number; memoryComparable: boolean; audit?: AuditResult },
): Verdict[] {
  const efficiency = efficiencyCriterion({ audit: options.audit, memoryComparable: options.memoryComparable });
  const criteria = [quality, calibrationCriterion, efficiency, robustness, degradation];
  return judgeVariation(get, dpsm, [...criteria, significance(options.bootstrapSamples)]);
}
