// `dpsm-native launch --nnodes 2` across two machines: two Linux network namespaces on this host, joined by a veth
// pair with addresses of the test's own making (10.213.7.1 and .2, a /30), each running the launcher with its
// --node-rank and node 0's address as --master-addr. The two nodes train as one process does on the same global
// batch (losses and weights to the reduction order's rounding), and node 1 killed mid-run (every process in its
// namespace, SIGKILL: a machine gone) makes node 0 stop within seconds with an error naming rank 1 and its address.
// Needs root and iproute2 (CI runs as root); without them the test fails saying so rather than skip. Real data:
// WikiText-2.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import path from "node:path";

import test, { type ExecutionContext } from "ava";

import { buildInfo, packageRoot } from "../lib/native.ts";
import { gpt2Run, lossesOf, maxRelative, weightDifference } from "./helpers/data-parallel.ts";
import { tmpDir } from "./helpers/tmp.ts";

const BIN = path.join(packageRoot, "bin", "dpsm-native.mjs");
const gated = buildInfo().distributed.split(",").includes("gloo") ? test.serial : test.serial.skip;
const ADDRESSES = ["10.213.7.1", "10.213.7.2"] as const;
const PORT = "29731"; // each namespace has its own ports: no other process can hold this one there

function ip(args: string[]): { ok: boolean; output: string } {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  return { ok: r.status === 0, output: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}

/** The pids of the processes inside network namespace `ns`. */
const pidsIn = (ns: string) =>
  ip(["netns", "pids", ns])
    .output.split("\n")
    .filter((l) => /^\d+$/.test(l))
    .map(Number);

function killAll(ns: string) {
  for (const pid of pidsIn(ns)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
}

/**
 * Two namespaces "machines" joined by a veth pair, named uniquely for this test; removed when the test ends, pass or
 * fail (their processes killed first). Fails the test with what is missing when they cannot be made.
 */
function twoMachines(t: ExecutionContext): string[] | undefined {
  const id = `${process.pid.toString(36)}${Math.floor(Math.random() * 36 ** 2).toString(36)}`;
  const ns = [`dpsm${id}n0`, `dpsm${id}n1`];
  const veth = [`dv${id}a`, `dv${id}b`]; // interface names: at most 15 characters
  t.teardown(() => {
    for (const n of ns) {
      killAll(n);
      ip(["netns", "del", n]); // takes its end of the veth pair, and with it the other end, along
    }
  });
  const steps = [
    ["netns", "add", ns[0]!],
    ["netns", "add", ns[1]!],
    ["link", "add", veth[0]!, "type", "veth", "peer", "name", veth[1]!],
    ...[0, 1].flatMap((i) => [
      ["link", "set", veth[i]!, "netns", ns[i]!],
      ["-n", ns[i]!, "addr", "add", `${ADDRESSES[i]}/30`, "dev", veth[i]!],
      ["-n", ns[i]!, "link", "set", veth[i]!, "up"],
      ["-n", ns[i]!, "link", "set", "lo", "up"],
    ]),
  ];
  for (const step of steps) {
    const r = ip(step);
    if (!r.ok) {
      t.fail(
        `cannot make two network namespaces joined by a veth pair (\`ip ${step.join(" ")}\`: ${r.output.trim()}); ` +
          `this test needs root (uid ${process.getuid?.()}) and iproute2 (Debian: apt-get install iproute2)`,
      );
      return undefined;
    }
  }
  return ns;
}

interface Node {
  child: ChildProcess;
  output: string;
  exited: Promise<number | null>;
}

/** `dpsm-native launch --nnodes 2 --node-rank r` inside namespace `ns`, one rank, training `options`. */
function node(ns: string, rank: number, options: object): Node {
  const args = ["--nproc-per-node", "1", "--nnodes", "2", "--node-rank", String(rank)];
  args.push("--master-addr", ADDRESSES[0], "--master-port", PORT, "--stop-timeout", "10", "--");
  const child = spawn(
    "ip",
    [
      "netns",
      "exec",
      ns,
      process.execPath,
      BIN,
      "launch",
      ...args,
      "test/helpers/train-child.ts",
      JSON.stringify(options),
    ],
    { cwd: packageRoot, env: { ...process.env, DPSM_NUM_THREADS: "1" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const n: Node = { child, output: "", exited: new Promise((resolve) => child.on("exit", (code) => resolve(code))) };
  child.stdout!.on("data", (c: Buffer) => (n.output += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (n.output += c.toString()));
  return n;
}

gated("two machines (network namespaces) × batch B train as 1 process × batch 2B: losses and weights", async (t) => {
  const ns = twoMachines(t);
  if (!ns) return;
  const [d1, d2] = [tmpDir(t, "dpsm-2n-one-"), tmpDir(t, "dpsm-2n-two-")];
  const options = (dir: string, batchSize: number) => gpt2Run(dir, { batchSize, maxSteps: 6 });

  const nodes = [node(ns[0]!, 0, options(d2, 4)), node(ns[1]!, 1, options(d2, 4))];
  const one = spawnSync(
    process.execPath,
    ["--import", "tsx", "test/helpers/train-child.ts", JSON.stringify(options(d1, 8))],
    {
      cwd: packageRoot,
      encoding: "utf8",
      env: { ...process.env, DPSM_NUM_THREADS: "1" },
    },
  );
  t.is(one.status, 0, `${one.stdout}${one.stderr}`);
  const codes = await Promise.all(nodes.map((n) => n.exited));
  t.deepEqual(codes, [0, 0], nodes.map((n) => n.output).join("\n---\n"));
  t.regex(nodes[1]!.output, /rendezvous at 10\.213\.7\.1:/);

  const [a, b] = [lossesOf(one.stdout), lossesOf(nodes[0]!.output)];
  t.is(a.length, 6);
  t.is(b.length, 6);
  const loss = maxRelative(a, b);
  const weights = weightDifference(d1, d2);
  t.log(
    `two nodes vs one process: max relative loss difference ${loss.toExponential(2)}; weights: relative L2 ` +
      `difference ${weights.relative.toExponential(2)}, max ${weights.max.toExponential(2)}`,
  );
  t.true(loss <= 1e-5, `loss difference ${loss}`);
  t.true(weights.relative <= 1e-5, `relative weight difference ${weights.relative}`);
});

gated("node 1 killed mid-run: node 0 stops within seconds naming rank 1 and its address", async (t) => {
  const ns = twoMachines(t);
  if (!ns) return;
  const dir = tmpDir(t, "dpsm-2n-killed-");
  const options = gpt2Run(dir, { batchSize: 4, maxSteps: 500, evalEvery: 500 });
  const [node0, node1] = [node(ns[0]!, 0, options), node(ns[1]!, 1, options)];

  // Node 0 has trained a few steps with node 1: then node 1's machine goes away (its launcher and rank, SIGKILL).
  const started = performance.now();
  while (!/^step 3 /m.test(node0.output) && performance.now() - started < 40_000) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.regex(
    node0.output,
    /^step 3 /m,
    `the two nodes did not train 3 steps within 40 s:\n${node0.output}\n${node1.output}`,
  );
  const killedAt = performance.now();
  killAll(ns[1]!);

  // Bounded: a node 0 still running 30 s later has hung; kill it and fail.
  const timer = setTimeout(() => killAll(ns[0]!), 30_000);
  const code = await node0.exited;
  clearTimeout(timer);
  const stoppedMs = performance.now() - killedAt;
  t.log(`node 0 exited ${stoppedMs.toFixed(0)} ms after node 1 was killed, with code ${code}`);
  t.not(code, 0, node0.output);
  t.regex(node0.output, /distributed: rank 0: .* failed: lost rank 1 at 10\.213\.7\.2: it stopped/, node0.output);
  t.regex(node0.output, /dpsm-native launch: rank 0 \(pid \d+\) exited with code 1/);
  t.true(stoppedMs < 20_000, `node 0 took ${stoppedMs} ms to stop`);
});
