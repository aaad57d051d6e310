// The terminal view of a training run: a bar with the latest loss, α, lr and throughput; without a terminal, a
// line every 10 % of the steps. The Trainer feeds it its step and evaluation events.
import { createRequire } from "node:module";

import type cliProgress from "cli-progress";

import type { NativeProgress } from "./native.ts";

type StepEvent = Extract<NativeProgress, { type: "step" }>;
type EvalEvent = Extract<NativeProgress, { type: "eval" }>;

export class ProgressBar {
  #bar: cliProgress.SingleBar | undefined;
  #lastLine = 0;
  #eval = "";

  constructor(
    private readonly total: number,
    tty: boolean,
  ) {
    if (tty) {
      // Loaded here, for a terminal's bar only, not when the package is imported (test/package.test.ts).
      const { SingleBar, Presets } = createRequire(import.meta.url)("cli-progress") as typeof cliProgress;
      this.#bar = new SingleBar(
        {
          format: "{bar} {value}/{total} | loss {loss} | α {alpha} | lr {lr} | {tps} tok/s | {elapsed}s{eval}",
          hideCursor: true,
          stream: process.stderr,
          barsize: 24,
        },
        Presets.shades_classic,
      );
      this.#bar.start(total, 0, { loss: "–", alpha: "–", lr: "–", tps: "–", elapsed: "0", eval: "" });
    }
  }

  step(p: StepEvent): void {
    const fields = {
      loss: p.loss.toFixed(4),
      alpha: p.alpha.toFixed(3),
      lr: p.lr.toExponential(2),
      tps: Math.round(p.tokensPerSecond).toLocaleString("en-US"),
      elapsed: p.elapsedSeconds.toFixed(0),
      eval: this.#eval,
    };
    if (this.#bar) {
      this.#bar.update(p.step, fields);
    } else if (p.step === this.total || p.step - this.#lastLine >= Math.max(1, Math.ceil(this.total / 10))) {
      this.#lastLine = p.step;
      process.stderr.write(
        `step ${p.step}/${this.total}  loss ${fields.loss}  α ${fields.alpha}  lr ${fields.lr}  ${fields.tps} tok/s  ${fields.elapsed}s${this.#eval}\n`,
      );
    }
  }

  eval(e: EvalEvent): void {
    this.#eval = ` | val ppl ${e.metrics.ppl.toFixed(1)} ece ${e.metrics.ece10.toFixed(3)}${e.improved ? " *" : ""}`;
  }

  stop(): void {
    this.#bar?.stop();
  }
}
