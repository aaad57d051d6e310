// The seed's success criteria for a DPSM variation of one model, judged from the aggregated numbers.
import { fmt as fmtNumber } from "../../report/table.ts";
import { meanOfAll } from "../framework/aggregate.ts";
import { type AuditResult, auditedThroughput } from "../framework/efficiency-audit.ts";
import type { Verdict } from "../framework/spec.ts";
import type { Exp1Group } from "./analysis.ts";
import type { Exp1Config, Setting } from "./config.ts";

// Verdict details quote numbers to 2 decimals unless they say otherwise.
const fmt = (x: number, d = 2) => fmtNumber(x, d);
/** "12.3 % lower" / "4.5 % higher" for a relative change r (−0.123 / 0.045). */
const change = (r: number, lower = "lower", higher = "higher") =>
  Number.isFinite(r) ? `${fmt(100 * Math.abs(r), 1)} % ${r <= 0 ? lower : higher}` : "–";

/** The DPSM variations with a warm-up schedule: the ones the criteria are about. */
export function dpsmVariationsOf(c: Exp1Config): string[] {
  return c.variations.filter((v) => v === "dpsm-linear" || v === "dpsm-cosine");
}

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
  const get = (variation: string, setting: Setting = "clean") =>
    groups.find(({ key: k }) => k.model === model && k.setting === setting && k.variation === variation && !k.params);
  const d = get(dpsm);
  const ce = get("ce");
  const brier = get("brier");
  const v: Verdict[] = [];
  const missing = (criterion: string, what: string) =>
    v.push({ criterion, status: "not enough runs", detail: `needs ${what}` });
  if (!d || !ce) {
    missing("all", `${dpsm} and ce runs of ${model}`);
    return v;
  }

  {
    const c = "Task quality: test PPL ≤ 0.3 above CE's, and never worse than both CE and Brier";
    const gap = d.metrics.ppl.mean - ce.metrics.ppl.mean;
    const ppl = d.metrics.ppl.mean;
    const worseThanBoth = brier ? ppl > ce.metrics.ppl.mean && ppl > brier.metrics.ppl.mean : false;
    v.push({
      criterion: c,
      status: gap <= 0.3 && !worseThanBoth ? "met" : "not met",
      detail:
        `PPL ${fmt(d.metrics.ppl.mean)} vs CE ${fmt(ce.metrics.ppl.mean)} (gap ${fmt(gap)})` +
        `${brier ? `, Brier ${fmt(brier.metrics.ppl.mean)}` : ""}`,
    });
  }
  {
    const c = "Calibration: ECE-10 at least 25 % below CE's and within 5 % of Brier's";
    if (!brier) missing(c, "brier runs");
    else {
      const reduction = 1 - d.metrics.ece10.mean / ce.metrics.ece10.mean;
      const ok = reduction >= 0.25 && d.metrics.ece10.mean <= 1.05 * brier.metrics.ece10.mean;
      v.push({
        criterion: c,
        status: ok ? "met" : "not met",
        detail:
          `ECE-10 ${fmt(d.metrics.ece10.mean, 4)}: ${change(-reduction)} than CE's ${fmt(ce.metrics.ece10.mean, 4)}, ` +
          `${change(d.metrics.ece10.mean / brier.metrics.ece10.mean - 1)} than Brier's ` +
          `${fmt(brier.metrics.ece10.mean, 4)}`,
      });
    }
  }
  {
    const c =
      "Convergence: 95 % of CE's final validation performance within 110 % of CE's wall-clock and ≤ 60 % of Brier's";
    const td = meanOfAll(d.convergence?.seconds ?? []);
    const tc = meanOfAll(ce.convergence?.seconds ?? []);
    const tb = brier ? meanOfAll(brier.convergence?.seconds ?? []) : undefined;
    if (!brier) missing(c, "brier runs");
    else if (tc === null) {
      v.push({ criterion: c, status: "not met", detail: "CE itself did not reach the target in every seed" });
    } else {
      const okCe = td !== null && td <= 1.1 * tc;
      const okBrier = td !== null && (tb === null || tb === undefined || td <= 0.6 * tb);
      v.push({
        criterion: c,
        status: okCe && okBrier ? "met" : "not met",
        detail:
          `${dpsm} ${td === null ? "did not reach it" : `${fmt(td, 1)} s`}, CE ${fmt(tc, 1)} s, ` +
          `Brier ${tb === null || tb === undefined ? "did not reach it" : `${fmt(tb, 1)} s`}` +
          " (target: validation PPL ≤ CE's final / 0.95; " +
          `${d.clock === "audited" && ce.clock === "audited" ? "steps × the audit's step time" : "the runs' own clocks"})`,
      });
    }
  }
  {
    const c = "Efficiency: throughput at most 2 % below CE's, peak memory at most 500 MB above";
    const mem = (d.efficiency?.peakMemoryMB.mean ?? NaN) - (ce.efficiency?.peakMemoryMB.mean ?? NaN);
    const memory = `peak memory ${Math.abs(mem) < 0.5 ? "equal to" : `${fmt(Math.abs(mem), 0)} MB ${mem > 0 ? "above" : "below"}`} CE's`;
    const audited = audit?.reference === "ce" ? auditedThroughput(audit, dpsm) : undefined;
    if (audited) {
      v.push({
        criterion: c,
        status: audited.met && mem <= 500 ? "met" : "not met",
        detail: `${audited.detail}; ${memory}`,
      });
    } else {
      const drop = 1 - (d.efficiency?.tokensPerSecond.mean ?? NaN) / (ce.efficiency?.tokensPerSecond.mean ?? NaN);
      v.push({
        criterion: c,
        status: drop <= 0.02 && mem <= 500 ? "met" : "not met",
        detail:
          `tokens/s ${fmt(d.efficiency?.tokensPerSecond.mean ?? NaN, 0)} ` +
          `vs CE's ${fmt(ce.efficiency?.tokensPerSecond.mean ?? NaN, 0)} ` +
          `(${change(-drop, "slower", "faster")}; separate runs' wall-clock, no audit); ${memory}`,
      });
    }
  }
  {
    const c = "Robustness: DPSM's advantage (ECE below CE's, PPL within 0.3) holds in ≥ 75 % of seeds × settings";
    const checks: boolean[] = [];
    const where: string[] = [];
    const holds = (pd: number, pc: number, ed: number, ec: number) => ed < ec && pd <= pc + 0.3;
    for (const [i, seed] of d.seeds.entries()) {
      const j = ce.seeds.indexOf(seed);
      if (j < 0) continue;
      checks.push(holds(d.perSeed.ppl[i]!, ce.perSeed.ppl[j]!, d.perSeed.ece10[i]!, ce.perSeed.ece10[j]!));
      where.push(`test/seed${seed}`);
      for (const [set, a] of Object.entries(d.sets)) {
        const b = ce.sets[set];
        if (!b) continue;
        checks.push(holds(a!.perSeed.ppl[i]!, b.perSeed.ppl[j]!, a!.perSeed.ece10[i]!, b.perSeed.ece10[j]!));
        where.push(`${set}/seed${seed}`);
      }
    }
    const dn = get(dpsm, "label-noise");
    const cn = get("ce", "label-noise");
    if (dn && cn) {
      for (const [i, seed] of dn.seeds.entries()) {
        const j = cn.seeds.indexOf(seed);
        if (j < 0) continue;
        checks.push(holds(dn.perSeed.ppl[i]!, cn.perSeed.ppl[j]!, dn.perSeed.ece10[i]!, cn.perSeed.ece10[j]!));
        where.push(`label-noise/seed${seed}`);
      }
    }
    const ok = checks.filter(Boolean).length;
    if (checks.length < 4) missing(c, "at least 4 seed × setting comparisons");
    else {
      v.push({
        criterion: c,
        status: ok / checks.length >= 0.75 ? "met" : "not met",
        detail:
          `holds in ${ok} of ${checks.length} (${fmt((100 * ok) / checks.length, 0)} %): ` +
          `${where.filter((_, k) => checks[k]).join(", ") || "none"}`,
      });
    }
  }
  {
    const c = "Significance: DPSM's ECE-10 differs from CE's at p < 0.05 (paired t-test over seeds)";
    const t = d.versus.ce?.ece10;
    if (!t) missing(c, "at least 2 seeds");
    else {
      const detail = `t = ${fmt(t.t)}, df = ${t.df}, p = ${t.p.toPrecision(3)}`;
      v.push({ criterion: c, status: t.p < 0.05 ? "met" : "not met", detail });
    }
  }
  return v;
}
