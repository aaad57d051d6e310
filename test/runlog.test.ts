// lib/runlog.ts on a real training run: what the Trainer wrote reads back as the events it emitted, a line
// cut short by a kill is skipped, and the next session's records start on a line of their own.
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { prepareLanguageModelData, type EvalEvent, type StepEvent, Trainer } from "../lib/index.ts";
import { lossCurve, readRunLog, RunLogWriter, runEfficiency } from "../lib/runlog.ts";
import { median } from "../lib/metrics/stats.ts";
import { tmpDir } from "./helpers/tmp.ts";

// What a record becomes in JSON (a NaN, e.g. the accuracy of an empty reliability bin, becomes null).
const asJson = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

async function train(runDir: string, maxSteps: number, signal?: AbortSignal, onStep?: (s: StepEvent) => void) {
  const data = {
    train: await prepareLanguageModelData({ source: "wikitext-2", split: "train", contextLength: 33 }),
    valid: await prepareLanguageModelData({ source: "wikitext-2", split: "valid", contextLength: 33 }),
  };
  const trainer = new Trainer({
    model: { size: "tiny", seed: 0 },
    loss: { kind: "dpsm", schedule: "linear", warmupSteps: 2 },
    data,
    maxSteps,
    batchSize: 4,
    evalEvery: 2,
    evalMaxSequences: 2,
    runDir,
    progress: false,
  });
  const steps: StepEvent[] = [];
  const evals: EvalEvent[] = [];
  trainer.on("step", (s) => (steps.push(s), onStep?.(s)));
  trainer.on("eval", (e) => evals.push(e));
  const fit = await trainer.fit(signal ? { signal } : {});
  return { fit, steps, evals };
}

test.serial("the Trainer's log reads back as its events; resumed sessions add a start record", async (t) => {
  const dir = tmpDir(t, "dpsm-runlog-");
  const file = path.join(dir, "train.jsonl");
  const controller = new AbortController();
  const first = await train(dir, 5, controller.signal, (s) => s.step === 3 && controller.abort());
  t.is(first.fit.reason, "aborted");
  const second = await train(dir, 5);
  t.is(second.fit.reason, "max_steps");

  const log = readRunLog(file);
  t.is(log.unreadableLines, 0);
  t.is(log.starts.length, 2);
  t.is(log.starts[0]!.fingerprint, log.starts[1]!.fingerprint);
  t.deepEqual(
    log.done.map((d) => d.reason),
    ["aborted", "max_steps"],
  );
  const events = [...first.steps, ...second.steps];
  t.deepEqual(
    log.steps.map((s) => s.step),
    [1, 2, 3, 4, 5],
  );
  t.deepEqual(log.steps, asJson(events));
  const evals = [...first.evals, ...second.evals];
  t.deepEqual(
    log.evals.map((e) => e.step),
    evals.map((e) => e.step),
  );
  for (const [i, e] of log.evals.entries()) {
    const { bins100: _dropped, ...metrics } = evals[i]!.metrics;
    t.deepEqual(e.metrics, asJson(metrics), "an evaluation keeps every metric but the 100-bin table");
    t.false("bins100" in e.metrics);
  }
  t.deepEqual(runEfficiency(log), {
    stepMs: median(events.map((s) => s.stepMs)),
    tokensPerSecond: median(events.map((s) => s.tokensPerSecond)),
    peakMemoryBytes: Math.max(...events.map((s) => s.peakMemoryBytes)),
  });
  t.deepEqual(
    lossCurve(log).map((p) => p.loss),
    events.map((s) => s.loss),
  );
  t.deepEqual(
    lossCurve(log, 2).map((p) => p.step),
    [1, 4, 5],
    "every 3rd step and the last",
  );
});

test.serial("a last line cut short is skipped, and the next writer starts a new line", async (t) => {
  const dir = tmpDir(t, "dpsm-runlog-");
  const file = path.join(dir, "train.jsonl");
  const { steps } = await train(dir, 2);
  const whole = fs.readFileSync(file, "utf8");
  const lastLine = whole.trimEnd().split("\n").at(-1)!;
  // A kill in the middle of a write: half of a record, no newline.
  fs.appendFileSync(file, lastLine.slice(0, lastLine.length >> 1));
  const cut = readRunLog(file);
  t.is(cut.unreadableLines, 1);
  t.deepEqual(cut.steps, asJson(steps));

  const writer = new RunLogWriter(file);
  writer.progress(steps[1]!);
  writer.close();
  const resumed = readRunLog(file);
  t.is(resumed.unreadableLines, 1, "the cut line stays alone; the new record is read");
  t.deepEqual(resumed.steps, asJson(steps));
  t.true(fs.readFileSync(file, "utf8").endsWith(`${JSON.stringify(steps[1])}\n`));
  t.deepEqual(readRunLog(path.join(dir, "absent.jsonl")).steps, []);
});
