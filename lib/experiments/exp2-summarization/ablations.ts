// Experiment 2's runs beside the main comparison that the seed's design asks for: the low-resource runs (its angle 3)
// and the hyper-parameter grid (its "Hyper-parameter analysis"); what the report says of them under "What was run",
// and their sections of the first model's part.
import { lowResourceSection, shareLabel } from "../framework/low-resource.ts";
import { type Exp2Group, METRICS } from "./analysis.ts";
import { type Exp2Config, GRID_VARIATION, LOW_RESOURCE_VARIATIONS } from "./config.ts";
import { gridCells, gridSection, gridSeeds } from "./grid.ts";

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
