// Issue 29's kill test for an encoder–decoder: the fixture BART trains on real DialogSum pairs in a child process
// (test/helpers/train-seq2seq-child.ts), checkpointing at every step, and is killed with SIGKILL at 24 moments
// drawn from a seeded RNG — 40 % anywhere in the run (start-up, steps, evaluations, checkpoint writes), the rest
// aimed at the checkpoint writes (after an "eval" line, or just after a temporary file of the process appears) —
// each time restarted on the same run folder until it finishes (then a fresh chain, until 24 kills). Every step any segment prints must be the uninterrupted run's step bit for bit, every
// resume must start after the last checkpoint a segment saw completed, no resume may warn, and the finished run's
// last/ and best/ weights must be byte-identical to the uninterrupted run's.
//
// Why it fails when checkpoints are not atomic: a kill that lands inside a write is detected exactly, from the
// files the dead process left (a `.tmp-<its pid>-…` file or folder exists only between the start of a write and
// the rename that ends it; SIGKILL freezes the folder at that moment). Were a checkpoint written in place, such a
// kill would leave last/ (or best/) torn: the resume would then either refuse (the child fails and so does the
// test), fall back to best/ with a warning (a failure here), resume from an older step than a completed checkpoint
// (a failure here) or load mixed weights (the losses and final weights differ: a failure here). The test asserts
// that at least 3 kills landed inside a write, so it cannot pass without exercising that case.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { rng } from "../dev/random.ts";
import { startLineChild } from "./helpers/child-lines.ts";
import { tmpDir } from "./helpers/tmp.ts";

// The seq2seq tests' settings (test/seq2seq-train.test.ts), with a checkpoint after every step.
const MAX_STEPS = 12;
const options = (runDir: string) => ({
  loss: { kind: "ce" },
  batchSize: 8,
  maxSteps: MAX_STEPS,
  evalEvery: 1,
  lr: 3e-3,
  lrWarmupSteps: 3,
  progress: false,
  log: false,
  runDir,
});

const KILLS = 24;

const sha256 = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");

/** Every path under `dir` whose name marks it temporary (optionally: one that process `pid` made). */
function temporaries(dir: string, pid?: number): string[] {
  if (!fs.existsSync(dir)) return [];
  const mark = pid === undefined ? ".tmp-" : `.tmp-${pid}-`;
  return fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((p) => path.basename(p).includes(mark));
}

/**
 * When to kill: `delayMs` after the start of the process, after the `nth` "eval" line it prints (the evaluation
 * is done and the checkpoint writes are starting), or after the `nth` time a temporary file or folder of this
 * process appears in the run folder (polled every millisecond: a write has begun).
 */
type KillPlan =
  | { after: "spawn"; delayMs: number }
  | { after: "eval"; nth: number; delayMs: number }
  | { after: "write"; nth: number; delayMs: number };

interface Segment {
  killed: boolean;
  /** [step, loss] as printed */
  steps: [number, number][];
  checkpoints: number[];
  warnings: string[];
  /** temporary files and folders this process left: the kill landed inside a checkpoint write */
  leftInWrite: string[];
  /** ms from the start of the process to each "eval" and "checkpoint" line and to the exit */
  evalTimes: number[];
  checkpointTimes: number[];
  totalMs: number;
}

/** Runs the training child on `runDir`, killing it with SIGKILL as `plan` says (none: it runs to the end). */
async function segment(runDir: string, plan: KillPlan | undefined): Promise<Segment> {
  const start = performance.now();
  const s: Segment = {
    killed: false,
    steps: [],
    checkpoints: [],
    warnings: [],
    leftInWrite: [],
    evalTimes: [],
    checkpointTimes: [],
    totalMs: 0,
  };
  const arg = JSON.stringify(options(runDir));
  const { child, exited } = startLineChild("train-seq2seq-child.ts", arg, ([kind, a, ...rest]) => {
    const now = performance.now() - start;
    if (kind === "step") {
      s.steps.push([Number(a), Number(rest[0])]);
    }
    if (kind === "eval") {
      s.evalTimes.push(now);
      if (plan?.after === "eval" && s.evalTimes.length === plan.nth) kill(plan.delayMs);
    }
    if (kind === "checkpoint") {
      s.checkpoints.push(Number(a));
      s.checkpointTimes.push(now);
    }
    if (kind === "warning") s.warnings.push(rest.join(" "));
  });
  const kill = (delayMs: number) => setTimeout(() => child.kill("SIGKILL"), delayMs);
  if (plan?.after === "spawn") kill(plan.delayMs);
  let poll: NodeJS.Timeout | undefined;
  if (plan?.after === "write") {
    let seen = 0;
    let writing = false;
    poll = setInterval(() => {
      const now = temporaries(runDir, child.pid).length > 0;
      if (now && !writing && ++seen === plan.nth) {
        clearInterval(poll);
        kill(plan.delayMs);
      }
      writing = now;
    }, 1);
  }
  try {
    ({ killed: s.killed } = await exited);
  } finally {
    clearInterval(poll);
  }
  s.totalMs = performance.now() - start;
  if (s.killed) s.leftInWrite = temporaries(runDir, child.pid);
  return s;
}

test.serial(
  `a seq2seq run SIGKILLed at ${KILLS} random moments, inside and between checkpoint writes, resumes to the uninterrupted run's weights`,
  async (t) => {
    t.timeout(20 * 60_000);
    const dir = tmpDir(t, "dpsm-kill-resume-");
    const refDir = path.join(dir, "ref");
    const ref = await segment(refDir, undefined);
    t.is(ref.steps.length, MAX_STEPS);
    const refLoss = new Map(ref.steps);
    // The moments scale with this machine's speed: the whole run's duration, and the time from an "eval" line to
    // its "checkpoint" line (the writes of last/ and best/).
    const gaps = ref.checkpointTimes.map((c, i) => c - ref.evalTimes[i]!);
    const gapMs = Math.max(...gaps);
    t.log(
      `uninterrupted: ${(ref.totalMs / 1000).toFixed(1)} s ` +
        `"eval" line → "checkpoint" line ${Math.min(...gaps).toFixed(0)}–${gapMs.toFixed(0)} ms`,
    );
    const random = rng(29);
    // 40 % anywhere in the run; 20 % in the evaluation-to-checkpoint window; 40 % 0–20 ms after a write was seen
    // to begin (nearly all of them inside it).
    const draw = (): KillPlan => {
      const r = random();
      const nth = 1 + Math.floor(random() * 3);
      return r < 0.4
        ? { after: "spawn", delayMs: Math.floor(random() * ref.totalMs) }
        : r < 0.6
          ? { after: "eval", nth, delayMs: Math.floor(random() * gapMs) }
          : { after: "write", nth, delayMs: Math.floor(random() * 20) };
    };

    const failures: string[] = [];
    let kills = 0;
    let inWrites = 0;
    let chains = 0;
    let spawned = 0;
    let missed = 0; // moments that came after the run had finished: a finished chain
    const notes: string[] = [];
    while (kills < KILLS) {
      chains++;
      const runDir = path.join(dir, `chain-${chains}`);
      let lastCheckpoint = 0; // the latest checkpoint a segment of this chain saw completed
      for (;;) {
        const plan = kills < KILLS ? draw() : undefined;
        const seg = await segment(runDir, plan);
        spawned++;
        const tag = `chain ${chains}, process ${spawned}${plan ? ` (kill ${JSON.stringify(plan)})` : ""}`;
        for (const [step, loss] of seg.steps) {
          if (refLoss.get(step) !== loss)
            failures.push(`${tag}: step ${step} loss ${loss}, expected ${refLoss.get(step)}`);
        }
        const first = seg.steps[0]?.[0];
        if (first !== undefined && first <= lastCheckpoint)
          failures.push(`${tag}: resumed at step ${first} after checkpoint ${lastCheckpoint} had completed`);
        if (seg.warnings.length > 0) failures.push(`${tag}: warnings ${seg.warnings.join("; ")}`);
        lastCheckpoint = Math.max(lastCheckpoint, ...seg.checkpoints);
        if (seg.killed) {
          kills++;
          if (seg.leftInWrite.length > 0) inWrites++;
          notes.push(
            `${tag}: steps ${first ?? "-"}..${seg.steps.at(-1)?.[0] ?? "-"}` +
              (seg.leftInWrite.length > 0 ? `, killed inside a write (left ${seg.leftInWrite.join(", ")})` : ""),
          );
          continue;
        }
        if (plan) missed++;
        // Finished (the kill, if any, came too late): the uninterrupted run's final weights, nothing left behind.
        for (const which of ["last", "best"]) {
          if (
            sha256(path.join(runDir, which, "model.safetensors")) !==
            sha256(path.join(refDir, which, "model.safetensors"))
          )
            failures.push(`chain ${chains}: ${which}/ weights differ from the uninterrupted run's`);
        }
        if (temporaries(runDir).length > 0) failures.push(`chain ${chains}: left ${temporaries(runDir).join(", ")}`);
        break;
      }
    }
    // Every chain ended in a finished run (the last one's final process had no kill planned).
    for (const n of notes) t.log(n);
    t.log(
      `${kills} kills (${inWrites} inside a checkpoint write) in ${chains} chains (${spawned} processes, ${missed} finished before their kill); failures: ${failures.length}`,
    );
    for (const f of failures) t.log(f);
    t.deepEqual(failures, []);
    t.true(kills >= 20);
    t.true(inWrites >= 3, `only ${inWrites} kills landed inside a checkpoint write`);
  },
);
