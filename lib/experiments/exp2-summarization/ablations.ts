// Experiment 2's runs beside the main comparison that the seed's design asks for: the low-resource runs (its angle 3)
// and the hyper-parameter grid (its "Hyper-parameter analysis"); what the report says of them under "What was run",
// and their sections of the first model's part (the grid's: a ROUGE-L and an ECE-10 heatmap per smoothing value).
import path from "node:path";

import { heatmapChart } from "../../report/plots.ts";
import { fmt, formatTable } from "../../report/table.ts";
import { lowResourceSection, shareLabel } from "../framework/low-resource.ts";
import { type Exp2Group, METRICS, type Metric } from "./analysis.ts";
import { type Exp2Config, GRID_SETTING, GRID_VARIATION, LOW_RESOURCE_VARIATIONS } from "./config.ts";
import { type GridCell, gridCells, gridSeeds } from "./grid.ts";

/** The "What was run" line of the low-resource runs and the grid. */
export function ablationsRun(c: Exp2Config): string {
  const model = c.models[0]!;
  const lowResource = c.lowResource.length
    ? `${c.lowResource.map(shareLabel).join(", ")} of the training pairs (a seeded sample, the same for every run of ` +
      `a share) for ${LOW_RESOURCE_VARIATIONS.join(", ")}, every seed, ${model}, ${c.maxSteps} steps as the main runs`
    : "none";
  const cells = gridCells(c);
  const grid = c.grid
    ? `${GRID_VARIATION} on ${model} for lr ${c.grid.lr.map((x) => x.toExponential()).join(", ")} × label smoothing ` +
      `${c.grid.smoothing.join(", ")} × α warm-up ${c.grid.warmupShares.map(shareLabel).join(", ")} (${cells.length} ` +
      `cells, seed ${gridSeeds(c).join(", ")}; ${cells.filter((x) => x.main).length} of them main runs)`
    : "none";
  return `Low-resource runs: ${lowResource}. Hyper-parameter grid: ${grid}.`;
}

/** What the seed's design has that this configuration leaves out, for the report's "Not in this run". */
export function ablationsAbsent(c: Exp2Config): string[] {
  return [
    ...(c.lowResource.length ? [] : ["the low-resource runs (the seed's angle 3; --low-resource)"]),
    ...(c.grid ? [] : ["the hyper-parameter grid (--grid.lr, --grid.smoothing, --grid.warmup-shares)"]),
  ];
}

/** The sections "Low-resource training" and "Hyper-parameter grid" of `model` (when it ran them). */
export async function ablationSections(
  c: Exp2Config,
  model: string,
  groups: readonly Exp2Group[],
  out: string,
): Promise<string[]> {
  if (model !== c.models[0]) return [];
  return [
    ...(await lowResourceSection({
      groups,
      model,
      shares: c.lowResource,
      variations: LOW_RESOURCE_VARIATIONS,
      dpsm: "dpsm-warm10",
      metrics: METRICS.filter((m) => ["rouge1", "rouge2", "rougeL", "ece10", "brier", "nll"].includes(m.name)),
      differences: ["rougeL", "ece10"],
      figures: { out, metrics: ["rougeL", "ece10"], title: model },
    })),
    ...(await gridSection(c, model, groups, out)),
  ];
}

/** A cell's numbers: the means over the grid's seeds of its own runs or of the main runs it is. */
function cellValues(cell: GridCell, groups: readonly Exp2Group[], seeds: readonly number[]) {
  const g = groups.find(({ key: k }) =>
    cell.main
      ? k.setting === "clean" && k.variation === cell.main && !k.params
      : k.setting === GRID_SETTING &&
        k.variation === GRID_VARIATION &&
        k.params?.lr === cell.lr &&
        k.params.smoothing === cell.smoothing &&
        k.params.warmup === cell.warmup,
  );
  if (!g) return undefined;
  const at = seeds.map((s) => g.seeds.indexOf(s)).filter((i) => i >= 0);
  if (!at.length) return undefined;
  const mean = (m: Metric) => at.reduce((a, i) => a + g.perSeed[m][i]!, 0) / at.length;
  return {
    seeds: at.map((i) => g.seeds[i]!),
    rougeL: mean("rougeL"),
    ece10: mean("ece10"),
    nll: mean("nll"),
    source: cell.main ? `main run ${cell.main}` : "grid run",
  };
}

const HEATMAPS = [
  { metric: "rougeL", label: "ROUGE-L F", digits: 2, higherIsBetter: true },
  { metric: "ece10", label: "ECE-10", digits: 4, higherIsBetter: false },
] as const;

/**
 * The report's "Hyper-parameter grid" section of one model (the first): per smoothing value a ROUGE-L and an
 * ECE-10 heatmap of lr × warm-up share (test, last checkpoint; means over the grid's seeds), and a table of every
 * cell; nothing when no cell has a result.
 */
export async function gridSection(
  c: Exp2Config,
  model: string,
  groups: readonly Exp2Group[],
  out: string,
): Promise<string[]> {
  const seeds = gridSeeds(c);
  const cells = gridCells(c).flatMap((cell) => {
    const v = cellValues(cell, groups, seeds);
    return v ? [{ cell, v }] : [];
  });
  if (!cells.length) return [];
  const bestRouge = Math.max(...cells.map(({ v }) => v.rougeL).filter(Number.isFinite));
  const table = formatTable(
    [
      "lr",
      "ε (smoothing)",
      "α warm-up",
      { header: "seeds", align: "left" },
      "R-L",
      "ECE-10",
      "NLL",
      { header: "from", align: "left" },
    ],
    cells.map(({ cell, v }) => [
      cell.lr.toExponential(),
      String(cell.smoothing),
      shareLabel(cell.warmup),
      v.seeds.join(", "),
      v.rougeL === bestRouge ? `**${fmt(v.rougeL, 2)}**` : fmt(v.rougeL, 2),
      fmt(v.ece10, 4),
      fmt(v.nll, 3),
      v.source,
    ]),
  );
  const lines = [
    `### Hyper-parameter grid (${GRID_VARIATION}: lr × label smoothing × α warm-up)`,
    "",
    `${GRID_VARIATION} fine-tuned with every combination, seed${seeds.length > 1 ? "s" : ""} ${seeds.join(", ")} ` +
      "(the seed's grid: a sensitivity map, one run a cell, not a comparison over seeds); the DPSM loss's " +
      "target smoothed by ε (ε = 0: the main runs' loss); otherwise as the main runs. Test split, last checkpoint; " +
      "a cell that is a main run's configuration shows that run.",
    "",
  ];
  for (const smoothing of c.grid ? c.grid.smoothing : []) {
    const own = cells.filter(({ cell }) => cell.smoothing === smoothing);
    if (!own.length) continue;
    for (const h of HEATMAPS) {
      const base = `figures/${model}-grid-${h.metric}-smoothing${smoothing}`;
      const finite = own.filter(({ v }) => Number.isFinite(v[h.metric]));
      if (!finite.length) continue;
      await heatmapChart(
        {
          title: `${model}: ${h.label} over lr × α warm-up, ε ${smoothing}`,
          xTitle: "α warm-up (share of the steps)",
          yTitle: "peak learning rate",
          valueTitle: h.label,
          digits: h.digits,
          higherIsBetter: h.higherIsBetter,
          cells: finite.map(({ cell, v }) => ({
            x: shareLabel(cell.warmup),
            y: cell.lr.toExponential(),
            value: v[h.metric],
          })),
        },
        path.join(out, base),
      );
      lines.push(`![${h.label}, ε ${smoothing}](${base}.png)`, "");
    }
  }
  lines.push(table, "");
  return lines;
}
