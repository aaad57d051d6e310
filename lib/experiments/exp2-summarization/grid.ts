// Experiment 2's hyper-parameter grid (the seed's "grid over learning_rate, label_smoothing and warmup_steps for
// dpsm-warm*; record ROUGE/ECE heatmaps"): its cells, the loss and learning rate of a cell's runs, and the report's
// section with a ROUGE-L and an ECE-10 heatmap per smoothing value.
import path from "node:path";

import type { TrainLossInput } from "../../trainer.ts";
import { heatmapChart } from "../../report/plots.ts";
import { fmt, formatTable } from "../../report/table.ts";
import { lossForVariation } from "../framework/losses.ts";
import { shareLabel } from "../framework/low-resource.ts";
import type { Exp2Group, Metric } from "./analysis.ts";
import { type Exp2Config, GRID_SETTING, GRID_VARIATION, LOSSES, type Variation } from "./config.ts";

/** One cell of the grid. */
export interface GridCell {
  lr: number;
  /** ε of the smoothed target (0: none) */
  smoothing: number;
  /** α's warm-up as a share of maxSteps */
  warmup: number;
  /**
   * the main variation whose runs this cell is (the configured lr, no smoothing, that variation's warm-up share,
   * every grid seed among the main seeds): the cell trains no run of its own and the report takes that one's
   */
  main?: Variation;
}

const same = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b));

/** The seeds of every cell: the grid's own, else the experiment's first. */
export function gridSeeds(c: Exp2Config): number[] {
  return c.grid ? (c.grid.seeds ?? [c.seeds[0]!]) : [];
}

/** Every cell of the grid, lr by lr, then smoothing, then warm-up share; none when the grid is off. */
export function gridCells(c: Exp2Config): GridCell[] {
  if (!c.grid) return [];
  const seeds = gridSeeds(c);
  const mainSeeds = seeds.every((s) => c.seeds.includes(s));
  const cells: GridCell[] = [];
  for (const lr of c.grid.lr) {
    for (const smoothing of c.grid.smoothing) {
      for (const warmup of c.grid.warmupShares) {
        // A main run trains exactly this cell's loss at this lr: its result is the cell's, not a second run's.
        const main =
          mainSeeds && smoothing === 0 && same(lr, c.lr)
            ? c.variations.find((v) => {
                const l = LOSSES[v];
                return l.kind === "dpsm" && l.schedule === "linear" && same(l.warmupShare ?? NaN, warmup);
              })
            : undefined;
        cells.push({ lr, smoothing, warmup, ...(main ? { main } : {}) });
      }
    }
  }
  return cells;
}

/** A cell's key parameters. */
export const gridParams = (cell: GridCell) => ({ lr: cell.lr, smoothing: cell.smoothing, warmup: cell.warmup });

/**
 * A cell's loss: DPSM with a linear α warm-up over its share of the steps and, for ε > 0, the smoothed target
 * (the fused loss's `smoothing`). ε = 0 leaves the field out, so that loss is the main runs' own.
 */
export function gridLoss(c: Exp2Config, cell: GridCell): TrainLossInput {
  const loss = lossForVariation({ kind: "dpsm", schedule: "linear", warmupShare: cell.warmup }, c.maxSteps);
  return { ...loss, ...(cell.smoothing > 0 ? { smoothing: cell.smoothing } : {}) };
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
