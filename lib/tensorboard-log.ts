// The TensorBoard view of a training run (by default <runDir>/tensorboard/, beside train.jsonl), written by
// the Trainer from the same records as the JSONL run log: a scalar per numeric field of each step record
// (`train/<field>`) and of each evaluation's metrics (`eval/<split>/<metric>`), the evaluation's reliability
// diagram as an image, and the session's config as text. Every session writes its own event file; its first
// step tells TensorBoard to drop what a killed session logged from that step on, which this session repeats.
import { EventFileWriter } from "./io/tensorboard-event-file.ts";
import type { NativeProgress } from "./native.ts";
import type { EvalRecord, StartRecord, StepRecord } from "./runlog.ts";

/** The text tag of each session's config. */
export const CONFIG_TAG = "config";

/** `train/<field>` for every numeric field of a step record but the step itself. */
export function stepScalars(record: StepRecord): Record<string, number> {
  return numericFields(record, "train/", ["step"]);
}

/** `eval/<split>/<metric>` for every numeric metric of an evaluation (the reliability tables are images). */
export function evalScalars(record: Pick<EvalRecord, "metrics">, split: string): Record<string, number> {
  return numericFields(record.metrics, `eval/${split}/`, []);
}

/** The tag of an evaluation's reliability diagram. */
export function reliabilityTag(split: string): string {
  return `eval/${split}/reliability`;
}

/**
 * A session's config and build as Markdown (TensorBoard's text dashboard renders it). The fingerprint is left
 * out: it restates the config.
 */
export function configText(record: Omit<StartRecord, "type">): string {
  const { config, build } = record;
  return [`Session started ${record.time}.`, "", "```json", JSON.stringify({ config, build }, null, 2), "```"].join(
    "\n",
  );
}

/**
 * The reliability diagram of an evaluation's 10-bin table, as PNG bytes, drawn on the chart thread (so neither
 * Vega's layout nor loading the chart stack holds the run's event loop; nor does a plain import load it).
 */
export async function reliabilityPng(record: Pick<EvalRecord, "step" | "metrics">, split: string): Promise<Uint8Array> {
  const { reliabilityDiagramPngOffThread } = await import("./report/chart-thread.ts");
  return reliabilityDiagramPngOffThread({
    title: `reliability on ${split} at step ${record.step} (10 bins)`,
    panels: [{ name: split, bins: record.metrics.bins10, ece: record.metrics.ece10 }],
  });
}

function numericFields(record: object, prefix: string, skip: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(record)) {
    if (typeof value === "number" && !skip.includes(key)) out[`${prefix}${key}`] = value;
  }
  return out;
}

/** Writes one session's records to a new event file in `dir`. */
export class TensorBoardLog {
  readonly file: string;
  readonly #writer: EventFileWriter;
  readonly #split: string;
  #started = false;
  // The diagrams are drawn while the native loop trains on its own thread (Vega here, resvg on libuv's pool):
  // each is written once drawn, and close() waits for the last.
  #images: Promise<void> = Promise.resolve();
  #warned = false;

  /** `split`: the name of the evaluated split, in the eval tags. */
  constructor(dir: string, split: string) {
    this.#writer = new EventFileWriter(dir);
    this.file = this.#writer.file;
    this.#split = split;
  }

  start(record: Omit<StartRecord, "type">): void {
    this.#writer.text(0, CONFIG_TAG, configText(record));
  }

  /** A progress record of the native loop: steps and evaluations are logged, the other records are not. */
  progress(p: NativeProgress): void {
    if (p.type !== "step" && p.type !== "eval") return;
    if (!this.#started) {
      this.#started = true;
      this.#writer.sessionStart(p.step);
    }
    if (p.type === "step") {
      this.#writer.scalars(p.step, stepScalars(p));
      return;
    }
    this.#writer.scalars(p.step, evalScalars(p, this.#split));
    const wallTime = Date.now() / 1000;
    this.#images = this.#images
      .then(() => reliabilityPng(p, this.#split))
      .then((png) => this.#writer.image(p.step, reliabilityTag(this.#split), png, wallTime))
      .catch((e: unknown) => this.#warn(e));
  }

  /** Waits for the diagrams still being drawn, then closes the file. */
  async close(): Promise<void> {
    await this.#images;
    this.#writer.close();
  }

  // A diagram that cannot be drawn costs the run nothing but that image; said once per session.
  #warn(e: unknown): void {
    if (this.#warned) return;
    this.#warned = true;
    process.emitWarning(`TensorBoardLog: a reliability diagram was not written: ${(e as Error).message}`, {
      code: "DPSM_TENSORBOARD",
    });
  }
}
