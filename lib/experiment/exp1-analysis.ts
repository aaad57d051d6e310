// From experiment 1's run results to what the report states: mean ± std over seeds, paired t-tests against
// CE and Brier, convergence (steps and wall-clock to 95 % of CE's final validation performance),
// efficiency, robustness, and a verdict per success criterion of the seed, computed from the numbers.
import type { OodName } from "../data/ood.ts";
import { type MeanStd, meanStd, type PairedTTest, pairedTTest } from "../metrics/stats.ts";
import { fmt as fmtNumber } from "../report/table.ts";
import type { EvalMetrics, ReliabilityBin } from "../native.ts";
import type { Exp1Config } from "./exp1-config.ts";
import type { JobResult } from "./exp1-run.ts";

export const METRICS = ["ppl", "nll", "accuracy", "ece10", "ece100", "brier", "spherical"] as const;
export type Metric = (typeof METRICS)[number];
/** Lower is better for every metric but these. */
export const HIGHER_IS_BETTER: ReadonlySet<Metric> = new Set(["accuracy", "spherical"]);

/** A row of the report: one variation (or baseline) of one model in one setting, over its seeds. */
export interface VariationSummary {
  model: string;
  setting: "clean" | "label-noise";
  /** e.g. "ce", "dpsm-linear", "dpsm-linear (warm-up 5 %)", "ce+tempscale", "focal" */
  name: string;
  seeds: number[];
  test: Record<Metric, MeanStd>;
  /** per seed, aligned with `seeds` */
  perSeed: Record<Metric, number[]>;
  vsCe: Partial<Record<Metric, PairedTTest>>;
  vsBrier: Partial<Record<Metric, PairedTTest>>;
  ood: Partial<Record<OodName, Record<Metric, MeanStd>>>;
  oodPerSeed: Partial<Record<OodName, Record<Metric, number[]>>>;
  /** validation PPL at the last evaluation, per seed */
  finalValidPpl: number[];
  convergence?: { steps: (number | null)[]; seconds: (number | null)[] };
  efficiency?: { stepMs: MeanStd; tokensPerSecond: MeanStd; peakMemoryMB: MeanStd };
  temperature?: MeanStd;
  /** test reliability bins pooled over seeds */
  bins10: ReliabilityBin[];
  /** the first seed's run (curves, sample) */
  runs: JobResult[];
}

function nameOf(r: JobResult): string {
  const v = r.job.variation;
  if ((v === "dpsm-linear" || v === "dpsm-cosine") && r.job.warmup !== undefined && r.job.id.includes("-w")) {
    return `${v} (warm-up ${Math.round(r.job.warmup * 100)} %)`;
  }
  return v;
}

function metricsOf(m: EvalMetrics): Record<Metric, number> {
  return { ppl: m.ppl, nll: m.nll, accuracy: m.accuracy, ece10: m.ece10, ece100: m.ece100, brier: m.brier, spherical: m.spherical };
}

function poolBins(list: ReliabilityBin[][]): ReliabilityBin[] {
  if (list.length === 0) return [];
  return list[0]!.map((b, i) => {
    let count = 0;
    let conf = 0;
    let acc = 0;
    for (const bins of list) {
      const x = bins[i]!;
      if (x.count > 0) {
        count += x.count;
        conf += x.confidence * x.count;
        acc += x.accuracy * x.count;
      }
    }
    return { lower: b.lower, upper: b.upper, count, confidence: count ? conf / count : NaN, accuracy: count ? acc / count : NaN };
  });
}

function summarise(model: string, setting: VariationSummary["setting"], name: string, runs: JobResult[], pick: (r: JobResult) => EvalMetrics, oodPick: (r: JobResult) => JobResult["ood"]): VariationSummary {
  runs = [...runs].sort((a, b) => a.job.seed - b.job.seed);
  const perSeed = Object.fromEntries(METRICS.map((m) => [m, runs.map((r) => metricsOf(pick(r))[m])])) as Record<Metric, number[]>;
  const oodNames = [...new Set(runs.flatMap((r) => Object.keys(oodPick(r)) as OodName[]))];
  const oodPerSeed: VariationSummary["oodPerSeed"] = {};
  const ood: VariationSummary["ood"] = {};
  for (const set of oodNames) {
    const vals = Object.fromEntries(METRICS.map((m) => [m, runs.map((r) => { const e = oodPick(r)[set]; return e ? metricsOf(e)[m] : NaN; })])) as Record<Metric, number[]>;
    oodPerSeed[set] = vals;
    ood[set] = Object.fromEntries(METRICS.map((m) => [m, meanStd(vals[m])])) as Record<Metric, MeanStd>;
  }
  return {
    model,
    setting,
    name,
    seeds: runs.map((r) => r.job.seed),
    test: Object.fromEntries(METRICS.map((m) => [m, meanStd(perSeed[m])])) as Record<Metric, MeanStd>,
    perSeed,
    vsCe: {},
    vsBrier: {},
    ood,
    oodPerSeed,
    finalValidPpl: runs.map((r) => r.curve.at(-1)?.ppl ?? NaN),
    bins10: poolBins(runs.map((r) => pick(r).bins10)),
    runs,
  };
}

/** Summaries of every (model, setting, variation), with tests, convergence and efficiency filled in. */
export function summariseExp1(results: JobResult[]): VariationSummary[] {
  const groups = new Map<string, JobResult[]>();
  for (const r of results) {
    const key = JSON.stringify([r.job.model, r.job.setting, nameOf(r)]);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const out: VariationSummary[] = [];
  for (const [key, runs] of groups) {
    const [model, setting, name] = JSON.parse(key) as [string, VariationSummary["setting"], string];
    const s = summarise(model, setting, name, runs, (r) => r.test, (r) => r.ood);
    s.efficiency = {
      stepMs: meanStd(runs.map((r) => r.fit.stepMs)),
      tokensPerSecond: meanStd(runs.map((r) => r.fit.tokensPerSecond)),
      peakMemoryMB: meanStd(runs.map((r) => r.fit.peakMemoryBytes / 2 ** 20)),
    };
    out.push(s);
    if (name === "ce" && runs.some((r) => r.tempscale)) {
      const scaled = runs.filter((r) => r.tempscale);
      const t = summarise(model, setting, "ce+tempscale", scaled, (r) => r.tempscale!.test, (r) => r.tempscale!.ood);
      t.temperature = meanStd(scaled.map((r) => r.tempscale!.temperature));
      t.finalValidPpl = [];
      out.push(t);
    }
  }
  // Paired tests and convergence against CE and Brier of the same model and setting, seed by seed.
  for (const s of out) {
    const ref = (name: string) => out.find((o) => o.model === s.model && o.setting === s.setting && o.name === name);
    for (const [field, other] of [["vsCe", ref("ce")], ["vsBrier", ref("brier")]] as const) {
      if (!other || other === s) continue;
      const seeds = s.seeds.filter((x) => other.seeds.includes(x));
      for (const m of METRICS) {
        const a = seeds.map((x) => s.perSeed[m][s.seeds.indexOf(x)]!);
        const b = seeds.map((x) => other.perSeed[m][other.seeds.indexOf(x)]!);
        const t = pairedTTest(a, b);
        if (t) s[field][m] = t;
      }
    }
    const ce = ref("ce");
    if (ce && s.name !== "ce+tempscale") {
      const steps: (number | null)[] = [];
      const seconds: (number | null)[] = [];
      for (const r of s.runs) {
        const ceRun = ce.runs.find((c) => c.job.seed === r.job.seed);
        const target = (ceRun?.curve.at(-1)?.ppl ?? NaN) / 0.95;
        const hit = r.curve.find((p) => p.ppl <= target);
        steps.push(hit ? hit.step : null);
        seconds.push(hit ? hit.elapsedSeconds : null);
      }
      s.convergence = { steps, seconds };
    }
  }
  return out;
}

export type VerdictStatus = "met" | "not met" | "not enough runs";
export interface Verdict {
  criterion: string;
  status: VerdictStatus;
  detail: string;
}

// Verdict details quote numbers to 2 decimals unless they say otherwise.
const fmt = (x: number, d = 2) => fmtNumber(x, d);
/** "12.3 % lower" / "4.5 % higher" for a relative change r (−0.123 / 0.045). */
const change = (r: number, lower = "lower", higher = "higher") => (Number.isFinite(r) ? `${fmt(100 * Math.abs(r), 1)} % ${r <= 0 ? lower : higher}` : "–");
const meanOf = (xs: (number | null)[]) => {
  const v = xs.filter((x): x is number => x !== null);
  return v.length === xs.length && v.length > 0 ? v.reduce((a, b) => a + b, 0) / v.length : null;
};

/** The seed's success criteria for one DPSM variation of one model, from the numbers. */
export function exp1Verdicts(summaries: VariationSummary[], model: string, dpsm: string): Verdict[] {
  const get = (name: string, setting: VariationSummary["setting"] = "clean") =>
    summaries.find((s) => s.model === model && s.setting === setting && s.name === name);
  const d = get(dpsm);
  const ce = get("ce");
  const brier = get("brier");
  const v: Verdict[] = [];
  const missing = (criterion: string, what: string) => v.push({ criterion, status: "not enough runs", detail: `needs ${what}` });
  if (!d || !ce) {
    missing("all", `${dpsm} and ce runs of ${model}`);
    return v;
  }

  {
    const c = "Task quality: test PPL ≤ 0.3 above CE's, and never worse than both CE and Brier";
    const gap = d.test.ppl.mean - ce.test.ppl.mean;
    const worseThanBoth = brier ? d.test.ppl.mean > ce.test.ppl.mean && d.test.ppl.mean > brier.test.ppl.mean : false;
    v.push({
      criterion: c,
      status: gap <= 0.3 && !worseThanBoth ? "met" : "not met",
      detail: `PPL ${fmt(d.test.ppl.mean)} vs CE ${fmt(ce.test.ppl.mean)} (gap ${fmt(gap)})${brier ? `, Brier ${fmt(brier.test.ppl.mean)}` : ""}`,
    });
  }
  {
    const c = "Calibration: ECE-10 at least 25 % below CE's and within 5 % of Brier's";
    if (!brier) missing(c, "brier runs");
    else {
      const reduction = 1 - d.test.ece10.mean / ce.test.ece10.mean;
      const ok = reduction >= 0.25 && d.test.ece10.mean <= 1.05 * brier.test.ece10.mean;
      v.push({
        criterion: c,
        status: ok ? "met" : "not met",
        detail: `ECE-10 ${fmt(d.test.ece10.mean, 4)}: ${change(-reduction)} than CE's ${fmt(ce.test.ece10.mean, 4)}, ${change(d.test.ece10.mean / brier.test.ece10.mean - 1)} than Brier's ${fmt(brier.test.ece10.mean, 4)}`,
      });
    }
  }
  {
    const c = "Convergence: 95 % of CE's final validation performance within 110 % of CE's wall-clock and ≤ 60 % of Brier's";
    const td = meanOf(d.convergence?.seconds ?? []);
    const tc = meanOf(ce.convergence?.seconds ?? []);
    const tb = brier ? meanOf(brier.convergence?.seconds ?? []) : undefined;
    if (!brier) missing(c, "brier runs");
    else if (tc === null) v.push({ criterion: c, status: "not met", detail: "CE itself did not reach the target in every seed" });
    else {
      const okCe = td !== null && td <= 1.1 * tc;
      const okBrier = td !== null && (tb === null || tb === undefined || td <= 0.6 * tb);
      v.push({
        criterion: c,
        status: okCe && okBrier ? "met" : "not met",
        detail:
          `${dpsm} ${td === null ? "did not reach it" : `${fmt(td, 1)} s`}, CE ${fmt(tc, 1)} s, Brier ${tb === null || tb === undefined ? "did not reach it" : `${fmt(tb, 1)} s`}` +
          " (target: validation PPL ≤ CE's final / 0.95)",
      });
    }
  }
  {
    const c = "Efficiency: throughput at most 2 % below CE's, peak memory at most 500 MB above";
    const drop = 1 - (d.efficiency?.tokensPerSecond.mean ?? NaN) / (ce.efficiency?.tokensPerSecond.mean ?? NaN);
    const mem = (d.efficiency?.peakMemoryMB.mean ?? NaN) - (ce.efficiency?.peakMemoryMB.mean ?? NaN);
    v.push({
      criterion: c,
      status: drop <= 0.02 && mem <= 500 ? "met" : "not met",
      detail: `tokens/s ${fmt(d.efficiency?.tokensPerSecond.mean ?? NaN, 0)} vs CE's ${fmt(ce.efficiency?.tokensPerSecond.mean ?? NaN, 0)} (${change(-drop, "slower", "faster")}); peak memory ${Math.abs(mem) < 0.5 ? "equal to" : `${fmt(Math.abs(mem), 0)} MB ${mem > 0 ? "above" : "below"}`} CE's`,
    });
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
      for (const set of Object.keys(d.oodPerSeed) as OodName[]) {
        const a = d.oodPerSeed[set]!;
        const b = ce.oodPerSeed[set];
        if (!b) continue;
        checks.push(holds(a.ppl[i]!, b.ppl[j]!, a.ece10[i]!, b.ece10[j]!));
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
        detail: `holds in ${ok} of ${checks.length} (${fmt((100 * ok) / checks.length, 0)} %): ${where.filter((_, k) => checks[k]).join(", ") || "none"}`,
      });
    }
  }
  {
    const c = "Significance: DPSM's ECE-10 differs from CE's at p < 0.05 (paired t-test over seeds)";
    const t = d.vsCe.ece10;
    if (!t) missing(c, "at least 2 seeds");
    else v.push({ criterion: c, status: t.p < 0.05 ? "met" : "not met", detail: `t = ${fmt(t.t)}, df = ${t.df}, p = ${t.p.toPrecision(3)}` });
  }
  return v;
}

export function dpsmVariationsOf(c: Exp1Config): string[] {
  return c.variations.filter((v) => v === "dpsm-linear" || v === "dpsm-cosine");
}
