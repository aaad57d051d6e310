// Low-resource training (the seed's angle 3, "low-resource splits"): extra runs trained on a share of the training
// split. The share is a seeded random sample of the split's rows (whole packed sequences, or whole source–summary
// pairs), drawn once with a seed of its own, so every variation and every run seed of a share trains on the same
// rows and only the loss (or the run seed) tells them apart. The report's section puts the shares side by side with
// the main runs (share 1).
import path from "node:path";

import { z } from "zod";

import type { ModelData } from "../../data/model-data.ts";
import { SplitMix64 } from "../../data/summary-noise.ts";
import { formatMeanStd, pairedTTest } from "../../metrics/stats.ts";
import { barChart } from "../../report/plots.ts";
import { fmt, formatTable } from "../../report/table.ts";
import type { GroupKey, GroupSummary, MetricSpec } from "./spec.ts";

/** The setting (job key) of a low-resource run; its share is the key's `share` parameter. */
export const LOW_RESOURCE_SETTING = "low-resource";

/**
 * The sample's seed: one constant, not the run's seed, so a share's subset is the same for every variation and
 * every seed (a run seed still gives its own initialisation and batch order over those rows).
 */
export const LOW_RESOURCE_SEED = 0x5ab5e7;

/** The setting of an experiment: shares of its training split, each giving extra runs of `variations`. */
export function lowResourceSchema(variations: readonly string[]) {
  return z
    .array(z.number().gt(0).lt(1))
    .default([])
    .describe(
      `extra runs on the first model trained on these shares of the training split (0 < share < 1; the main runs ` +
        `are share 1): ${variations.join(", ")}, every seed, the same optimiser steps as the main runs, on a ` +
        "seeded random sample of the split's rows that every variation of a share shares",
    );
}

/** Rows a share of `n` keeps: round(share × n), at least one. */
export function subsetSize(n: number, share: number): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`subsetSize: n: expected an integer >= 1, got ${n}`);
  if (!(share > 0 && share <= 1)) throw new RangeError(`subsetSize: share: expected a number in (0, 1], got ${share}`);
  return Math.min(n, Math.max(1, Math.round(share * n)));
}

/**
 * The rows of a split of `n` rows that `share` of it trains on, ascending: the first subsetSize(n, share) of a
 * permutation of 0 … n − 1 drawn by a partial Fisher–Yates shuffle with SplitMix64 (lib/data/summary-noise.ts)
 * seeded with `seed`. Draw i depends only on draws before it, so a smaller share's rows are a subset of a larger
 * share's (nested samples: shares differ in how much data, not in which), and the rows come from the whole split,
 * not a prefix of it. The index is next() mod (n − i): its bias, n / 2^64, is nil at any split's size.
 */
export function subsetRows(n: number, share: number, seed: number = LOW_RESOURCE_SEED): Int32Array {
  const k = subsetSize(n, share);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const rng = new SplitMix64(BigInt(seed));
  for (let i = 0; i < k; i++) {
    const j = i + Number(rng.next() % BigInt(n - i));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order.slice(0, k).sort();
}

/** Rows `rows` of a row-major array of rows of `width`. */
function pickRows(tokens: Int32Array, rows: Int32Array, width: number): Int32Array {
  const out = new Int32Array(rows.length * width);
  rows.forEach((r, i) => out.set(tokens.subarray(r * width, (r + 1) * width), i * width));
  return out;
}

const pickLengths = (lengths: Int32Array, rows: Int32Array) => Int32Array.from(rows, (r) => lengths[r]!);

/** "10 %", "1 %", "0.5 %". */
export const shareLabel = (share: number) => `${+(share * 100).toPrecision(3)} %`;

/**
 * `share` of the training data `d` (packed sequences or encoder–decoder pairs): its subsetRows, whole rows, in the
 * split's order, with their ids. Its source names the sample; a packed split's documents and streamTokens still
 * describe the split it was drawn from. The result is no longer the disk cache's arrays, so it names no cache file.
 */
export function trainingSubset<T extends ModelData>(d: T, share: number, seed: number = LOW_RESOURCE_SEED): T {
  const { cacheFile: _cacheFile, ...rest } = d as T & { cacheFile?: string; source?: string };
  const source = typeof rest.source === "string" ? { source: `${rest.source}, ${shareLabel(share)} sample` } : {};
  if ("sourceTokens" in d) {
    const rows = subsetRows(d.sourceLengths.length, share, seed);
    return {
      ...rest,
      ...source,
      sourceTokens: pickRows(d.sourceTokens, rows, d.maxSource),
      sourceLengths: pickLengths(d.sourceLengths, rows),
      targetTokens: pickRows(d.targetTokens, rows, d.maxTarget),
      targetLengths: pickLengths(d.targetLengths, rows),
      ids: Array.from(rows, (r) => d.ids[r]!),
    } as T;
  }
  const rows = subsetRows(d.lengths.length, share, seed);
  const lengths = pickLengths(d.lengths, rows);
  return {
    ...rest,
    ...source,
    sequences: rows.length,
    tokens: pickRows(d.tokens, rows, d.contextLength),
    lengths,
    totalTokens: lengths.reduce((a, b) => a + b, 0),
  } as T;
}

/** "ce (10 % of the training split)" for a low-resource group; undefined for any other. */
export function lowResourceName(key: GroupKey): string | undefined {
  const share = key.params?.share;
  if (key.setting !== LOW_RESOURCE_SETTING || share === undefined) return undefined;
  return `${key.variation} (${shareLabel(share)} of the training split)`;
}

export interface LowResourceSectionOptions<M extends string, G extends GroupSummary<M, unknown>> {
  /** every group of one model */
  groups: readonly G[];
  model: string;
  /** the configured shares (the main runs, share 1, are added) */
  shares: readonly number[];
  /** the variations trained at every share, CE and the DPSM variation among them */
  variations: readonly string[];
  /** the DPSM variation compared with CE */
  dpsm: string;
  /** the table's columns */
  metrics: readonly MetricSpec<M>[];
  /** the metrics whose DPSM − CE difference is shown per share */
  differences: readonly M[];
  /** bar charts of these metrics by share, grouped by variation, under `out`/figures/ */
  figures?: { out: string; metrics: readonly M[]; title: string };
}

/**
 * The report's "Low-resource training" section of one model: the final metrics per share and variation (the main
 * runs as share 1), each share's DPSM − CE difference per metric (mean over the seeds both ran, with its 95 % t
 * interval over them from two seeds on), and bar charts by share; nothing when no low-resource run has finished.
 */
export async function lowResourceSection<M extends string, G extends GroupSummary<M, unknown>>(
  o: LowResourceSectionOptions<M, G>,
): Promise<string[]> {
  const atShare = (share: number, variation: string) =>
    o.groups.find(({ key: k }) =>
      share === 1
        ? k.setting === "clean" && k.variation === variation && !k.params
        : k.setting === LOW_RESOURCE_SETTING && k.variation === variation && k.params?.share === share,
    );
  const shares = [...new Set(o.shares)].sort((a, b) => b - a);
  if (!shares.some((s) => o.variations.some((v) => atShare(s, v)))) return [];
  const all = [1, ...shares];
  const label = (share: number) => (share === 1 ? "100 % (main runs)" : shareLabel(share));
  const rows = all.flatMap((share) =>
    o.variations.flatMap((v) => {
      const g = atShare(share, v);
      return g ? [{ share, g }] : [];
    }),
  );
  const metricsTable = formatTable(
    [
      { header: "training share", align: "left" },
      { header: "variation", align: "left" },
      "seeds",
      ...o.metrics.map((m) => m.label),
    ],
    rows.map(({ share, g }) => [
      label(share),
      g.key.variation,
      g.seeds.join(", "),
      ...o.metrics.map((m) => formatMeanStd(g.metrics[m.name], m.digits)),
    ]),
  );
  const spec = (m: M) => o.metrics.find((x) => x.name === m);
  const differenceRows = all.flatMap((share) => {
    const [d, ce] = [atShare(share, o.dpsm), atShare(share, "ce")];
    if (!d || !ce) return [];
    const seeds = d.seeds.filter((s) => ce.seeds.includes(s));
    return [
      [
        label(share),
        seeds.join(", ") || "–",
        ...o.differences.map((m) => {
          const digits = spec(m)?.digits ?? 3;
          const x = seeds.map((s) => d.perSeed[m][d.seeds.indexOf(s)]!);
          const y = seeds.map((s) => ce.perSeed[m][ce.seeds.indexOf(s)]!);
          if (!seeds.length) return "–";
          const mean = x.reduce((a, v, i) => a + v - y[i]!, 0) / seeds.length;
          const t = pairedTTest(x, y);
          const signed = `${mean > 0 ? "+" : ""}${fmt(mean, digits)}`;
          return t ? `${signed} [${fmt(t.low, digits)}, ${fmt(t.high, digits)}]` : signed;
        }),
      ],
    ];
  });
  const lines = [
    "### Low-resource training",
    "",
    `Trained on a share of the training split: a random sample of its rows drawn once (seed ${LOW_RESOURCE_SEED}, ` +
      "not the run's), the same for every variation and seed of a share, a smaller share's rows within a larger " +
      "one's; the same optimiser steps, schedule and evaluation as the main runs, so a small share is seen many " +
      "times over.",
    "",
    metricsTable,
    "",
  ];
  if (differenceRows.length) {
    lines.push(
      `${o.dpsm} − CE per share (mean over the seeds both ran; from two seeds on, the 95 % t interval over them, ` +
        "not adjusted for the other comparisons):",
      "",
      formatTable(
        [
          { header: "training share", align: "left" },
          "seeds",
          ...o.differences.map((m) => `Δ ${spec(m)?.label ?? m} [95 % CI]`),
        ],
        differenceRows,
      ),
      "",
    );
  }
  if (o.figures) {
    const links: string[] = [];
    for (const m of o.figures.metrics) {
      const base = `figures/${o.model}-low-resource-${m}`;
      const metric = spec(m);
      await barChart(
        {
          title: `${o.figures.title}: ${metric?.label ?? m} by training share (mean ± std over seeds)`,
          yTitle: metric?.label ?? m,
          bars: rows.map(({ share, g }) => ({
            category: label(share),
            group: g.key.variation,
            value: g.metrics[m].mean,
            ...(Number.isFinite(g.metrics[m].std) ? { error: g.metrics[m].std } : {}),
          })),
        },
        path.join(o.figures.out, base),
      );
      links.push(`![${metric?.label ?? m} by training share](${base}.png)`, "");
    }
    lines.push(...links);
  }
  return lines;
}
