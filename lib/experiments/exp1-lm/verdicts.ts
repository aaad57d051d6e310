// The seed's success criteria for a DPSM variation of one model, judged from experiment 1's aggregated numbers
// (the scaffolding and the criteria every experiment shares: ../framework/verdicts.ts).
import { meanOfAll } from "../framework/aggregate.ts";
import type { AuditResult } from "../framework/efficiency-audit.ts";
import type { Verdict } from "../framework/spec.ts";
import {
  calibrationCriterion,
  type Criterion,
  efficiencyCriterion,
  fmt,
  groupLookup,
  judgeVariation,
  sharedSeeds,
  tallyCriterion,
} from "../framework/verdicts.ts";
import type { Exp1Group } from "./analysis.ts";
import type { Exp1Config } from "./config.ts";

/** The DPSM variations with a warm-up schedule: the ones the criteria are about. */
export function dpsmVariationsOf(c: Exp1Config): string[] {
  return c.variations.filter((v) => v === "dpsm-linear" || v === "dpsm-cosine");
}

const quality: Criterion<Exp1Group> = ({ d, ce, brier }, v) => {
  const gap = d.metrics.ppl.mean - ce.metrics.ppl.mean;
  const ppl = d.metrics.ppl.mean;
  const worseThanBoth = brier ? ppl > ce.metrics.ppl.mean && ppl > brier.metrics.ppl.mean : false;
  v.judge(
    "Task quality: test PPL ≤ 0.3 above CE's, and never worse than both CE and Brier",
    gap <= 0.3 && !worseThanBoth,
    `PPL ${fmt(d.metrics.ppl.mean)} vs CE ${fmt(ce.metrics.ppl.mean)} (gap ${fmt(gap)})` +
      `${brier ? `, Brier ${fmt(brier.metrics.ppl.mean)}` : ""}`,
  );
};

const convergence: Criterion<Exp1Group> = ({ dpsm, d, ce, brier }, v) => {
  const c =
    "Convergence: 95 % of CE's final validation performance within 110 % of CE's wall-clock and ≤ 60 % of Brier's";
  const td = meanOfAll(d.convergence?.seconds ?? []);
  const tc = meanOfAll(ce.convergence?.seconds ?? []);
  const tb = brier ? meanOfAll(brier.convergence?.seconds ?? []) : undefined;
  if (!brier) return v.missing(c, "brier runs");
  if (tc === null) {
    v.list.push({ criterion: c, status: "not met", detail: "CE itself did not reach the target in every seed" });
    return;
  }
  const okCe = td !== null && td <= 1.1 * tc;
  const okBrier = td !== null && (tb === null || tb === undefined || td <= 0.6 * tb);
  v.judge(
    c,
    okCe && okBrier,
    `${dpsm} ${td === null ? "did not reach it" : `${fmt(td, 1)} s`}, CE ${fmt(tc, 1)} s, ` +
      `Brier ${tb === null || tb === undefined ? "did not reach it" : `${fmt(tb, 1)} s`}` +
      " (target: validation PPL ≤ CE's final / 0.95; " +
      `${d.clock === "audited" && ce.clock === "audited" ? "steps × the audit's step time" : "the runs' own clocks"})`,
  );
};

const robustness: Criterion<Exp1Group> = ({ dpsm, d, ce, get }, v) => {
  const checks: { ok: boolean; where: string }[] = [];
  const holds = (pd: number, pc: number, ed: number, ec: number) => ed < ec && pd <= pc + 0.3;
  for (const { seed, i, j } of sharedSeeds(d, ce)) {
    checks.push({
      ok: holds(d.perSeed.ppl[i]!, ce.perSeed.ppl[j]!, d.perSeed.ece10[i]!, ce.perSeed.ece10[j]!),
      where: `test/seed${seed}`,
    });
    for (const [set, a] of Object.entries(d.sets)) {
      const b = ce.sets[set];
      if (!b) continue;
      checks.push({
        ok: holds(a!.perSeed.ppl[i]!, b.perSeed.ppl[j]!, a!.perSeed.ece10[i]!, b.perSeed.ece10[j]!),
        where: `${set}/seed${seed}`,
      });
    }
  }
  const dn = get(dpsm, "label-noise");
  const cn = get("ce", "label-noise");
  if (dn && cn) {
    for (const { seed, i, j } of sharedSeeds(dn, cn)) {
      checks.push({
        ok: holds(dn.perSeed.ppl[i]!, cn.perSeed.ppl[j]!, dn.perSeed.ece10[i]!, cn.perSeed.ece10[j]!),
        where: `label-noise/seed${seed}`,
      });
    }
  }
  const c = "Robustness: DPSM's advantage (ECE below CE's, PPL within 0.3) holds in ≥ 75 % of seeds × settings";
  tallyCriterion(v, c, checks);
};

const significance: Criterion<Exp1Group> = ({ d }, v) => {
  const c = "Significance: DPSM's ECE-10 differs from CE's at p < 0.05 (paired t-test over seeds)";
  const t = d.versus.ce?.ece10;
  if (!t) return v.missing(c, "at least 2 seeds");
  v.judge(c, t.p < 0.05, `t = ${fmt(t.t)}, df = ${t.df}, p = ${t.p.toPrecision(3)}`);
};

/**
 * The verdicts of `dpsm` on `model`. Efficiency is judged from the interleaved audit when there is one (the
 * seed's), else from the runs' own wall-clocks (and says so).
 */
export function exp1Verdicts(
  groups: readonly Exp1Group[],
  model: string,
  dpsm: string,
  audit?: AuditResult,
): Verdict[] {
  const efficiency = efficiencyCriterion({ audit, memoryComparable: true });
  const criteria = [quality, calibrationCriterion, convergence, efficiency, robustness, significance];
  return judgeVariation(groupLookup(groups, model), dpsm, criteria, ` of ${model}`);
}
