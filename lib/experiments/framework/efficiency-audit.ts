// The efficiency audit (the seed's): every loss variation's full training step timed interleaved in one process
// on one fixed batch, so all of them meet the same machine state; the ratio to the reference variation is taken
// within each round, and its median over rounds gets a bootstrap confidence interval. Separate runs' wall-clocks
// move with whatever else the machine did meanwhile (−45 % … +9 % seen on a shared machine); this does not.
import fs from "node:fs";
import path from "node:path";

import { writeJsonAtomic } from "../../io/atomic.ts";
import { seededResampler } from "../../metrics/bootstrap.ts";
import { median } from "../../metrics/stats.ts";
import { fmt, formatTable } from "../../report/table.ts";
import { Trainer, type TrainerOptions, type TrainLossInput } from "../../trainer.ts";
import { type Evidence, evidence } from "./decision.ts";

/** What a spec asks to be timed: per model, a trainer nobody fits and the losses timed on it. */
export interface AuditPlan {
  model: string;
  /** the trainer's options (its batch is the fixed batch: the first `batchSize` training sequences), made when
   * the audit runs (a model to load is loaded only then) */
  trainer: () => Promise<TrainerOptions>;
  /** tokens per step, for the report */
  tokens: number;
  losses: { name: string; loss: TrainLossInput }[];
  /** the variation the others are compared with */
  reference: string;
  rounds: number;
  warmupRounds: number;
}

export interface AuditRow {
  name: string;
  /** median milliseconds per step */
  medianMs: number;
  /** median over rounds of (this step's time / the reference's in the same round), with its 95 % interval */
  ratio: { median: number; low: number; high: number };
}

export interface AuditResult {
  model: string;
  tokens: number;
  reference: string;
  rounds: number;
  warmupRounds: number;
  rows: AuditRow[];
  /** milliseconds, round × loss (in `rows` order) */
  ms: number[][];
  finishedAt: string;
}

const BOOTSTRAP_SAMPLES = 2000;

/** Median per column and, per column, the median within-round ratio to `reference` with a 95 % bootstrap CI. */
export function summariseAudit(names: readonly string[], ms: readonly number[][], reference: string): AuditRow[] {
  const ref = names.indexOf(reference);
  if (ref < 0) throw new RangeError(`audit reference: "${reference}" is not among ${names.join(", ")}`);
  const resample = seededResampler(0);
  const draws = Array.from({ length: BOOTSTRAP_SAMPLES }, () => resample(ms.length));
  return names.map((name, i) => {
    const ratios = ms.map((round) => round[i]! / round[ref]!);
    const medians = draws.map((idx) => median(Array.from(idx, (k) => ratios[k]!))).sort((a, b) => a - b);
    const at = (q: number) => medians[Math.min(medians.length - 1, Math.floor(q * medians.length))]!;
    return {
      name,
      medianMs: median(ms.map((round) => round[i]!)),
      ratio: { median: median(ratios), low: at(0.025), high: at(0.975) },
    };
  });
}

function auditFile(out: string, model: string): string {
  return path.join(out, "audit", `${model}.json`);
}

/** The audits of `plans`: read from out/audit/ when done before, else run (unless `onlyFinished`) and saved. */
export async function runAudits(
  plans: readonly AuditPlan[],
  out: string,
  options: { say: (line: string) => void; signal?: AbortSignal; onlyFinished?: boolean },
): Promise<AuditResult[]> {
  const results: AuditResult[] = [];
  for (const plan of plans) {
    const file = auditFile(out, plan.model);
    if (fs.existsSync(file)) {
      results.push(JSON.parse(fs.readFileSync(file, "utf8")) as AuditResult);
      continue;
    }
    if (options.onlyFinished || options.signal?.aborted) continue;
    options.say(
      `efficiency audit (${plan.model}): ${plan.losses.length} losses × ${plan.rounds} rounds of one ` +
        `${plan.tokens}-token step each, interleaved`,
    );
    const trainer = new Trainer({ ...(await plan.trainer()), progress: false, log: false });
    const ms = await trainer.timeSteps(
      plan.losses.map((l) => l.loss),
      { rounds: plan.rounds, warmupRounds: plan.warmupRounds },
    );
    trainer.model.dispose();
    const result: AuditResult = {
      model: plan.model,
      tokens: plan.tokens,
      reference: plan.reference,
      rounds: plan.rounds,
      warmupRounds: plan.warmupRounds,
      rows: summariseAudit(
        plan.losses.map((l) => l.name),
        ms,
        plan.reference,
      ),
      ms,
      finishedAt: new Date().toISOString(),
    };
    writeJsonAtomic(file, result);
    options.say(
      `efficiency audit (${plan.model}): ` +
        result.rows.map((r) => `${r.name} ×${r.ratio.median.toFixed(3)}`).join(", ") +
        ` (median step time / ${plan.reference}'s)`,
    );
    results.push(result);
  }
  return results;
}

/**
 * The seed's efficiency criterion from the audit: throughput at most 2 % below the reference's, i.e. a step-time
 * ratio of at most 1/0.98, decided from the median ratio's bootstrap interval over rounds (met only when the whole
 * interval is at or below the bound, not met when it is wholly above, inconclusive when it straddles it).
 * Undefined when `name` was not audited against that reference.
 */
export function auditedThroughput(
  audit: AuditResult | undefined,
  name: string,
): { evidence: Evidence; detail: string } | undefined {
  const row = audit?.rows.find((r) => r.name === name);
  if (!audit || !row) return undefined;
  const { median: m, low, high } = row.ratio;
  const change = 1 - 1 / m;
  const how = `${fmt(100 * Math.abs(change), 1)} % ${change <= 0 ? "faster" : "slower"}`;
  return {
    evidence: evidence(
      `step time / ${audit.reference}'s`,
      { estimate: m, low, high, interval: `bootstrap over ${audit.rounds} interleaved audit rounds` },
      "≤",
      1 / 0.98,
      { digits: 4 },
    ),
    detail: `median throughput ${how} than ${audit.reference}'s (interleaved audit, ${audit.rounds} rounds)`,
  };
}

/** The audit as a Markdown table. */
export function auditTable(a: AuditResult): string {
  return formatTable(
    [
      { header: "variation", align: "left" },
      "median ms/step",
      "tokens/s",
      `step time / ${a.reference}'s (median, 95 % CI)`,
    ],
    a.rows.map((r) => [
      r.name,
      fmt(r.medianMs, 1),
      fmt(a.tokens / (r.medianMs / 1000), 0),
      `${fmt(r.ratio.median, 3)} [${fmt(r.ratio.low, 3)}, ${fmt(r.ratio.high, 3)}]`,
    ]),
  );
}

/** The audit's part of a report's efficiency section: how it was measured, then its table. */
export function auditSection(a: AuditResult): string[] {
  return [
    `The efficiency audit: one full training step (forward, loss, backward, clipping, AdamW) per variation on ` +
      `one fixed batch of ${a.tokens.toLocaleString("en-US")} target tokens, timed interleaved in one process for ` +
      `${a.rounds} rounds (after ${a.warmupRounds} untimed); the ratio to ${a.reference} is taken within each ` +
      "round, its median over rounds with a 95 % bootstrap interval. The verdicts' efficiency comes from it.",
    "",
    auditTable(a),
    "",
  ];
}
