// Experiment 2's hyper-parameter grid (the seed's "grid over learning_rate, label_smoothing and warmup_steps for
// dpsm-warm*; record ROUGE/ECE heatmaps"): its cells and the loss and learning rate of a cell's runs. The report's
// section (heatmaps per smoothing value) is in ablations.ts.
import type { TrainLossInput } from "../../trainer.ts";
import { lossForVariation } from "../framework/losses.ts";
import { type Exp2Config, LOSSES, type Variation } from "./config.ts";

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
