// Data-parallel training (native/core/train/data_parallel.cpp, lib/distributed.ts, lib/launch.ts) over Gloo on
// loopback: ranks started by `dpsm-native launch` give the same loss curve and weights as one process training on
// the same global batch, to the reduction order's rounding (the measured differences are logged); a rank killed
// mid-run stops the others quickly with a message naming it, and the same command again resumes every rank from
// rank 0's checkpoint to the uninterrupted run's weights. Real data: WikiText-2 and DialogSum.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

import test, { type ExecutionContext } from "ava";

import { Trainer, type TrainerOptions } from "../lib/index.ts";
import { distributedFromEnv, resolveDistributed, shareGlobalBatch } from "../lib/distributed.ts";
import { buildInfo, packageRoot } from "../lib/native.ts";
import { freePort, gpt2Run, lossesOf, maxRelative, weightDifference } from "./helpers/data-parallel.ts";
import { tmpDir } from "./helpers/tmp.ts";

const BIN = path.join(packageRoot, "bin", "dpsm-native.mjs");
const gloo = buildInfo().distributed.split(",").includes("gloo");

interface Run {
  code: number | null;
  output: string;
  /** rank 0's step losses */
  losses: number[];
}

// One process, as a user runs a script.
function single(script: string, options: object): Run {
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", path.join("test/helpers", script), JSON.stringify(options)],
    {
      cwd: packageRoot,
      encoding: "utf8",
      env: { ...process.env, DPSM_NUM_THREADS: "1" },
    },
  );
  const output = `${r.stdout}${r.stderr}`;
  return { code: r.status, output, losses: lossesOf(r.stdout) };
}

// Two ranks through the launcher.
async function launched(script: string, options: object, extra: string[] = []): Promise<Run> {
  const args = [BIN, "launch", "--nproc-per-node", "2", "--master-port", String(await freePort()), ...extra, "--"];
  const r = spawnSync(process.execPath, [...args, path.join("test/helpers", script), JSON.stringify(options)], {
    cwd: packageRoot,
    encoding: "utf8",
  });
  return { code: r.status, output: `${r.stdout}${r.stderr}`, losses: lossesOf(r.stdout) };
}

async function compare(
  t: ExecutionContext,
  script: string,
  name: string,
  one: (dir: string) => object,
  two: (dir: string) => object,
  tolerance: { loss: number; weights: number },
) {
  const [d1, d2] = [tmpDir(t, "dpsm-dp-one-"), tmpDir(t, "dpsm-dp-two-")];
  const a = single(script, one(d1));
  t.is(a.code, 0, a.output);
  const b = await launched(script, two(d2));
  t.is(b.code, 0, b.output);
  t.is(a.losses.length, b.losses.length);
  t.true(a.losses.length > 0);
  const loss = maxRelative(a.losses, b.losses);
  const weights = weightDifference(d1, d2);
  t.log(
    `${name}: max relative loss difference ${loss.toExponential(2)}; weights: relative L2 difference ` +
      `${weights.relative.toExponential(2)}, max ${weights.max.toExponential(2)}`,
  );
  t.true(loss <= tolerance.loss, `loss difference ${loss}`);
  t.true(weights.relative <= tolerance.weights, `relative weight difference ${weights.relative}`);
  return { d1, d2, loss, weights };
}

test("the environment's place among the ranks is read the torchrun way and checked", (t) => {
  t.is(distributedFromEnv({}), undefined);
  t.deepEqual(distributedFromEnv({ WORLD_SIZE: "2", RANK: "1", MASTER_ADDR: "10.0.0.2", MASTER_PORT: "29999" }), {
    rank: 1,
    worldSize: 2,
    masterAddr: "10.0.0.2",
    masterPort: 29999,
  });
  t.throws(() => distributedFromEnv({ WORLD_SIZE: "two", RANK: "0" }), { message: /WORLD_SIZE: .*got "two"/ });
  t.throws(() => distributedFromEnv({ WORLD_SIZE: "2", RANK: "2" }), {
    message: /RANK: expected an integer from 0 to 1/,
  });
  t.throws(() => distributedFromEnv({ WORLD_SIZE: "2" }), { message: /RANK: WORLD_SIZE is set, RANK is not/ });
  t.throws(() => resolveDistributed({ rank: 3, worldSize: 2 }, "Trainer options.distributed"), {
    message: /Trainer options.distributed.rank: rank must be less than worldSize/,
  });
  t.is(resolveDistributed(false, "x").worldSize, 1);
  t.deepEqual(shareGlobalBatch(8, 4, 2), { batchSize: 4, gradAccumulation: 4 });
  t.deepEqual(shareGlobalBatch(3, 4, 2), { batchSize: 3, gradAccumulation: 2 });
  t.deepEqual(shareGlobalBatch(8, 8, 16), { batchSize: 1, gradAccumulation: 4 });
  t.deepEqual(shareGlobalBatch(8, 1, 1), { batchSize: 8, gradAccumulation: 1 });
  t.throws(() => shareGlobalBatch(3, 1, 2), { message: /global batch of 3 × 1 sequences does not divide among them/ });
});

test("a Trainer asked for more ranks than the training data's batches fit, or a bad rank, says so", (t) => {
  t.throws(() => new Trainer({ ...gpt2Run("unused", {}), distributed: { rank: 2, worldSize: 2 } } as TrainerOptions), {
    message: /Trainer options.distributed.rank: rank must be less than worldSize/,
  });
  t.throws(() => new Trainer({ ...gpt2Run("unused", {}), distributed: "tcp" } as unknown as TrainerOptions), {
    message: /Trainer options.distributed/,
  });
});

test("launch: bad command lines name the flag and exit 2", (t) => {
  for (const [args, message] of [
    [["--", "exp1"], /--nproc-per-node: required/],
    [["--nproc-per-node", "0", "--", "exp1"], /--nproc-per-node: expected an integer from 1/],
    [["--nproc-per-node", "2"], /no command: give it after --/],
    [["--nproc-per-node", "2", "--nodes", "2", "--", "exp1"], /unknown flag "--nodes"/],
    [
      ["--nproc-per-node", "2", "--nnodes", "2", "--node-rank", "2", "--", "exp1"],
      /--node-rank: expected an integer from 0 to 1/,
    ],
  ] as const) {
    const r = spawnSync(process.execPath, [BIN, "launch", ...args], { cwd: packageRoot, encoding: "utf8" });
    t.is(r.status, 2, r.stderr);
    t.regex(r.stderr, message);
  }
  const bad = spawnSync(process.execPath, [BIN, "exp1", "--nproc", "two"], { cwd: packageRoot, encoding: "utf8" });
  t.is(bad.status, 2);
  t.regex(bad.stderr, /--nproc: expected an integer ≥ 1, got "two"/);
});

const gated = gloo ? test.serial : test.serial.skip;

// What shareGlobalBatch falls back to when the batch does not divide: the same rows in micro-batches of 2 × 4.
gated("2 ranks × micro-batches of 4 = 1 process accumulating 2 micro-batches of 4: losses and weights", async (t) => {
  await compare(
    t,
    "train-child.ts",
    "GPT-2, dpsm-cosine, gradient accumulation",
    (dir) => gpt2Run(dir, { batchSize: 4, gradAccumulation: 4 }),
    (dir) => gpt2Run(dir, { batchSize: 4, gradAccumulation: 2 }),
    { loss: 1e-5, weights: 1e-5 },
  );
});

gated("2 ranks × batch B = 1 process × batch 2B, CE; rank 0's half alone is another run", async (t) => {
  const tolerance = { loss: 1e-5, weights: 1e-5 };
  const { d2 } = await compare(
    t,
    "train-child.ts",
    "GPT-2, ce, batch 2B",
    (dir) => gpt2Run(dir, { batchSize: 8, loss: { kind: "ce" } }),
    (dir) => gpt2Run(dir, { batchSize: 4, loss: { kind: "ce" } }),
    tolerance,
  );
  // The control: one process on rank 0's rows alone (batch B) is far outside those tolerances.
  const half = tmpDir(t, "dpsm-dp-half-");
  const control = single("train-child.ts", gpt2Run(half, { batchSize: 4, loss: { kind: "ce" } }));
  t.is(control.code, 0, control.output);
  const apart = weightDifference(half, d2).relative;
  t.log(`control (rank 0's rows only): relative L2 weight difference ${apart.toExponential(2)}`);
  t.true(apart > 100 * tolerance.weights);
});

gated("2 ranks × batch B, bf16 autocast, Brier, label noise, accumulation = 1 process × batch 2B", async (t) => {
  const o = {
    precision: "bf16",
    loss: { kind: "brier" },
    labelNoise: { stepFraction: 0.5, tokenFraction: 0.3 },
  } as const;
  await compare(
    t,
    "train-child.ts",
    "GPT-2, brier, bf16, label noise, accumulation",
    (dir) => gpt2Run(dir, { ...o, batchSize: 8, gradAccumulation: 2 }),
    (dir) => gpt2Run(dir, { ...o, batchSize: 4, gradAccumulation: 2 }),
    { loss: 1e-5, weights: 1e-3 },
  );
});

gated("2 ranks train the BART fixture on DialogSum with summary-swap noise as 1 process does", async (t) => {
  const run = (runDir: string, batchSize: number) => ({
    loss: { kind: "dpsm", schedule: "linear", warmupSteps: 4 },
    batchSize,
    maxSteps: 6,
    lr: 1e-3,
    evalEvery: 6,
    evalMaxSequences: 4,
    seed: 3,
    summarySwap: 0.5,
    progress: false,
    runDir,
  });
  // Rows of unequal lengths: each rank's mean is weighted by its share of the targets.
  await compare(
    t,
    "train-seq2seq-child.ts",
    "BART, dpsm-linear, summary swap",
    (dir) => run(dir, 4),
    (dir) => run(dir, 2),
    { loss: 1e-5, weights: 1e-4 },
  );
});

/** The pid of the launched rank `rank` whose command line names `marker`. */
function rankPid(rank: number, marker: string): number | undefined {
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
      const environ = fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
      if (cmdline.includes(marker) && environ.includes(`RANK=${rank}`)) return Number(pid);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return undefined;
}

gated(
  "a rank killed mid-run stops the others with its name; the same command resumes to the same weights",
  async (t) => {
    const [whole, killed] = [tmpDir(t, "dpsm-dp-whole-"), tmpDir(t, "dpsm-dp-killed-")];
    const options = (dir: string) => gpt2Run(dir, { batchSize: 4, maxSteps: 60, evalEvery: 10 });
    const full = await launched("train-child.ts", options(whole));
    t.is(full.code, 0, full.output);

    const port = String(await freePort());
    const args = [BIN, "launch", "--nproc-per-node", "2", "--master-port", port, "--stop-timeout", "20", "--"];
    const child = spawn(process.execPath, [...args, "test/helpers/train-child.ts", JSON.stringify(options(killed))], {
      cwd: packageRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    let killedAt = 0;
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    child.stdout.on("data", (c: Buffer) => {
      output += c.toString();
      // Rank 0 has checkpointed step 20 and trained on: kill rank 1 (SIGKILL: no chance to say anything).
      if (!killedAt && /^step 2[3-9] /m.test(output)) {
        const pid = rankPid(1, killed);
        if (pid) {
          process.kill(pid, "SIGKILL");
          killedAt = performance.now();
        }
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    const stoppedMs = performance.now() - killedAt;
    t.true(killedAt > 0, output);
    t.not(code, 0);
    t.regex(output, /rank 1 \(pid \d+\) was killed by SIGKILL; stopping the other ranks/);
    t.regex(output, /failed \(rank 1\); run the same command again to resume/);
    t.log(`after rank 1's SIGKILL the launcher returned in ${stoppedMs.toFixed(0)} ms`);
    t.true(stoppedMs < 20_000);

    // The same command again: every rank resumes from rank 0's last checkpoint and finishes the run.
    const again = await launched("train-child.ts", options(killed));
    t.is(again.code, 0, again.output);
    const firstStep = Number(again.output.match(/^step (\d+) /m)?.[1]);
    t.true(firstStep > 20, `resumed from a checkpoint, not restarted (first step ${firstStep})`);
    const difference = weightDifference(whole, killed);
    t.log(`killed and resumed vs uninterrupted: max weight difference ${difference.max}`);
    t.is(difference.max, 0);
  },
);
