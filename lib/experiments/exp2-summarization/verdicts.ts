// The seed's success criteria for a DPSM variation of one model, judged from experiment 2's aggregated numbers
// (ROUGE-L and ECE-10 of the last checkpoint on the test split unless a criterion says otherwise).
import { type AuditResult, auditedThroughput } from "../framework/efficiency-audit.ts";
import { type PairedBootstrap, pairedBootstrap } from "../../metrics/bootstrap.ts";
import { fmt as fmtNumber } from "../../report/table.ts";
import type { Verdict } from "../framework/spec.ts";
import type { Exp2Group } from "./analysis.ts";
import type { Setting } from "./config.ts";
import type { FinetuneResult } from "./run-job.ts";

const fmt = (x: number, d = 2) => fmtNumber(x, d);
const change = (r: number, lower = "lower", higher = "higher") =>
  Number.isFinite(r) ? `${fmt(100 * Math.abs(r), 1)} % ${r <= 0 ? lower : higher}` : "–";

export type GroupLookup = (variation: string, setting?: Setting) => Exp2Group | undefined;

export function lookup(groups: readonly Exp2Group[], model: string): GroupLookup {
  return (variation, setting = "clean") =>
    groups.find(({ key: k }) => k.model === model && k.setting === setting && k.variation === variation);
}

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

/**
 * `memoryComparable`: false on the CPU, where a run's peak is the process's resident high-water mark, which also
 * holds what earlier runs of the same process left allocated; only CUDA's allocator peaks are per run.
 */
export function exp2Verdicts(
  get: GroupLookup,
  dpsm: string,
  options: { bootstrapSamples: number; memoryComparable: boolean; audit?: AuditResult },
): Verdict[] {
  const d = get(dpsm);
  const ce = get("ce");
  const brier = get("brier");
  const v: Verdict[] = [];
  const missing = (criterion: string, what: string) =>
    v.push({ criterion, status: "not enough runs", detail: `needs ${what}` });
  if (!d || !ce) {
    missing("all", `${dpsm} and ce runs`);
    return v;
  }
  const rl = (g: Exp2Group) => g.metrics.rougeL.mean;
  {
    const c = "Task quality: ROUGE-L at least 0.3 above CE's, and never worse than both CE and Brier";
    const gain = rl(d) - rl(ce);
    const worseThanBoth = brier ? rl(d) < rl(ce) && rl(d) < rl(brier) : false;
    v.push({
      criterion: c,
      status: gain >= 0.3 && !worseThanBoth ? "met" : "not met",
      detail: `ROUGE-L ${fmt(rl(d))} vs CE ${fmt(rl(ce))} (${gain >= 0 ? "+" : ""}${fmt(gain)})${brier ? `, Brier ${fmt(rl(brier))}` : ""}`,
    });
  }
  {
    const c = "Calibration: ECE-10 at least 25 % below CE's and within 5 % of Brier's";
    if (!brier) missing(c, "brier runs");
    else {
      const e = d.metrics.ece10.mean;
      const reduction = 1 - e / ce.metrics.ece10.mean;
      v.push({
        criterion: c,
        status: reduction >= 0.25 && e <= 1.05 * brier.metrics.ece10.mean ? "met" : "not met",
        detail:
          `ECE-10 ${fmt(e, 4)}: ${change(-reduction)} than CE's ${fmt(ce.metrics.ece10.mean, 4)}, ` +
          `${change(e / brier.metrics.ece10.mean - 1)} than Brier's ${fmt(brier.metrics.ece10.mean, 4)}`,
      });
    }
  }
  {
    const c = options.memoryComparable
      ? "Efficiency: throughput at most 2 % below CE's, peak memory at most 500 MB above"
      : "Efficiency: throughput at most 2 % below CE's (memory: not comparable between runs on the CPU)";
    const drop = 1 - (d.efficiency?.tokensPerSecond.mean ?? NaN) / (ce.efficiency?.tokensPerSecond.mean ?? NaN);
    const mem = (d.efficiency?.peakMemoryMB.mean ?? NaN) - (ce.efficiency?.peakMemoryMB.mean ?? NaN);
    const memory = options.memoryComparable
      ? `; peak memory ${Math.abs(mem) < 0.5 ? "equal to" : `${fmt(Math.abs(mem), 0)} MB ${mem > 0 ? "above" : "below"}`} CE's`
      : "";
    const memoryOk = !options.memoryComparable || mem <= 500;
    const audited = options.audit?.reference === "ce" ? auditedThroughput(options.audit, dpsm) : undefined;
    v.push(
      audited
        ? { criterion: c, status: audited.met && memoryOk ? "met" : "not met", detail: audited.detail + memory }
        : {
            criterion: c,
            status: drop <= 0.02 && memoryOk ? "met" : "not met",
            detail:
              `tokens/s ${fmt(d.efficiency?.tokensPerSecond.mean ?? NaN, 0)} vs CE's ` +
              `${fmt(ce.efficiency?.tokensPerSecond.mean ?? NaN, 0)} (${change(-drop, "slower", "faster")}, ` +
              `separate runs, no audit)${memory}`,
          },
    );
  }
  {
    const c = "Robustness: DPSM's advantage (ROUGE-L ≥ CE's and ECE-10 below it) holds in ≥ 75 % of seeds × settings";
    const checks: { ok: boolean; where: string }[] = [];
    for (const setting of ["clean", "summary-swap"] as const) {
      const a = get(dpsm, setting);
      const b = get("ce", setting);
      if (!a || !b) continue;
      for (const [i, seed] of a.seeds.entries()) {
        const j = b.seeds.indexOf(seed);
        if (j < 0) continue;
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
    const ok = checks.filter((x) => x.ok);
    if (checks.length < 4) missing(c, "at least 4 seed × setting comparisons");
    else {
      v.push({
        criterion: c,
        status: ok.length / checks.length >= 0.75 ? "met" : "not met",
        detail:
          `holds in ${ok.length} of ${checks.length} (${fmt((100 * ok.length) / checks.length, 0)} %): ` +
          `${ok.map((x) => x.where).join(", ") || "none"}`,
      });
    }
  }
  {
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
    if (!any) missing(c, "summary-swap runs or zero-shot sets");
    else v.push({ criterion: c, status: all ? "met" : "not met", detail: parts.join("; ") });
  }
  {
    const c = "Significance: DPSM's ROUGE-L differs from CE's at p < 0.05";
    const t = d.versus.ce?.rougeL;
    if (t) {
      v.push({
        criterion: c,
        status: t.p < 0.05 ? "met" : "not met",
        detail: `paired t-test over ${t.df + 1} seeds: t = ${fmt(t.t)}, p = ${t.p.toPrecision(3)}`,
      });
    } else {
      const b = rougeBootstrap(d, ce, options.bootstrapSamples);
      if (!b) missing(c, "a seed both ran");
      else {
        v.push({
          criterion: c,
          status: b.p < 0.05 ? "met" : "not met",
          detail:
            `one seed: per-example paired bootstrap (${b.samples} samples), Δ ROUGE-L ${fmt(b.meanDifference)} ` +
            `[${fmt(b.low)}, ${fmt(b.high)}], p ${b.p === 0 ? `< ${1 / b.samples}` : `= ${b.p.toPrecision(3)}`}`,
        });
      }
    }
  }
  return v;
}
