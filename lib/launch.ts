// `dpsm-native launch`: data-parallel training's processes, started the torchrun way — one process per rank, each
// told its place through RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT (read by
// lib/distributed.ts), one GPU per rank (CUDA_VISIBLE_DEVICES), the machine's cores shared out (DPSM_NUM_THREADS).
// Ctrl-C and SIGTERM are passed on to every rank. When a rank fails, the others are stopped (SIGTERM, then SIGKILL
// after a grace period) and the launcher says which rank failed and how; running the same command again resumes
// every rank from rank 0's last checkpoint.
import { type ChildProcess, spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

export interface LaunchOptions {
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
  /** how long the other ranks get to stop after one failed, before SIGKILL */
  stopTimeoutSeconds: number;
  /** a dpsm-native command (exp1 …) or a script (.js, .mjs, .ts) with its arguments */
  command: string[];
}

const BIN = fileURLToPath(new URL("../bin/dpsm-native.mjs", import.meta.url));

export const LAUNCH_USAGE = `usage: dpsm-native launch --nproc-per-node N [--nnodes M --node-rank R] [--master-addr A]
                          [--master-port P] [--stop-timeout S] -- <command> [args]

Starts N processes on this machine (ranks R·N … R·N + N − 1 of M·N) that train data-parallel: <command> is a
dpsm-native command (exp1, exp2) or a script (.js, .mjs, .ts). Each rank gets RANK, LOCAL_RANK, WORLD_SIZE,
MASTER_ADDR and MASTER_PORT, one GPU (CUDA_VISIBLE_DEVICES) and its share of the cores (DPSM_NUM_THREADS).
batchSize and gradAccumulation are per rank for a Trainer; an experiment keeps its global batch.

  --nproc-per-node N   processes on this machine (required)
  --nnodes M           machines taking part (default 1)
  --node-rank R        this machine's index, 0 … M − 1 (default 0)
  --master-addr A      where rank 0 listens (default 127.0.0.1; with several machines, rank 0's address)
  --master-port P      its port (default 29500)
  --stop-timeout S     seconds the other ranks get to stop when one fails, before SIGKILL (default 30)`;

export class LaunchUsageError extends Error {}

function intFlag(name: string, text: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = text !== undefined && /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new LaunchUsageError(`${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return n;
}

// What a flag left out means (LAUNCH_USAGE states the same).
const DEFAULTS = { nnodes: 1, nodeRank: 0, masterAddr: "127.0.0.1", masterPort: 29500, stopTimeoutSeconds: 30 };

/** One machine's ranks on loopback, with the launcher's defaults: what `--nproc N` on an experiment asks for. */
export function localLaunch(nprocPerNode: number, command: string[]): LaunchOptions {
  return { ...DEFAULTS, nprocPerNode, command };
}

/** The launcher's command line; throws LaunchUsageError naming the flag. */
export function parseLaunchArgs(argv: readonly string[]): LaunchOptions | { help: true } {
  const split = argv.indexOf("--");
  const flags = split < 0 ? argv : argv.slice(0, split);
  const command = split < 0 ? [] : argv.slice(split + 1);
  if (flags.includes("--help") || flags.includes("-h")) return { help: true };
  const values = new Map<string, string | undefined>();
  for (let i = 0; i < flags.length; i++) {
    const flag = flags[i]!;
    const [name, inline] = flag.includes("=")
      ? [flag.slice(0, flag.indexOf("=")), flag.slice(flag.indexOf("=") + 1)]
      : [flag, undefined];
    if (
      !["--nproc-per-node", "--nnodes", "--node-rank", "--master-addr", "--master-port", "--stop-timeout"].includes(
        name,
      )
    ) {
      throw new LaunchUsageError(
        `unknown flag ${JSON.stringify(flag)}${split < 0 ? " (the command goes after --)" : ""}`,
      );
    }
    values.set(name, inline ?? flags[++i]);
  }
  if (!values.has("--nproc-per-node")) throw new LaunchUsageError("--nproc-per-node: required");
  if (command.length === 0) throw new LaunchUsageError("no command: give it after --, e.g. -- exp1 --profile quick");
  const nnodes = values.has("--nnodes") ? intFlag("--nnodes", values.get("--nnodes"), 1) : DEFAULTS.nnodes;
  const masterAddr = values.get("--master-addr") ?? DEFAULTS.masterAddr;
  if (values.has("--master-addr") && !masterAddr)
    throw new LaunchUsageError("--master-addr: expected a host name or address");
  return {
    nprocPerNode: intFlag("--nproc-per-node", values.get("--nproc-per-node"), 1),
    nnodes,
    nodeRank: values.has("--node-rank")
      ? intFlag("--node-rank", values.get("--node-rank"), 0, nnodes - 1)
      : DEFAULTS.nodeRank,
    masterAddr,
    masterPort: values.has("--master-port")
      ? intFlag("--master-port", values.get("--master-port"), 1, 65535)
      : DEFAULTS.masterPort,
    stopTimeoutSeconds: values.has("--stop-timeout")
      ? intFlag("--stop-timeout", values.get("--stop-timeout"), 1)
      : DEFAULTS.stopTimeoutSeconds,
    command,
  };
}

// What each rank runs: the dpsm-native command, or a script (TypeScript through tsx, as the checkout runs).
function argvOf(command: readonly string[], isCommand: (name: string) => boolean): string[] {
  const [first, ...rest] = command;
  if (isCommand(first!)) return [BIN, first!, ...rest];
  if (/\.(c|m)?tsx?$/.test(first!)) return ["--import", "tsx", path.resolve(first!), ...rest];
  return [path.resolve(first!), ...rest];
}

/** Starts the ranks of this machine and waits for them; resolves to the exit code (0 when every rank succeeded). */
export async function launch(
  o: LaunchOptions,
  isCommand: (name: string) => boolean,
  say: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<number> {
  const world = o.nprocPerNode * o.nnodes;
  const threads = Math.max(1, Math.floor(os.availableParallelism() / o.nprocPerNode));
  const gpus = process.env.CUDA_VISIBLE_DEVICES?.split(",").filter((d) => d !== "");
  const args = argvOf(o.command, isCommand);
  say(
    `dpsm-native launch: ${o.nprocPerNode} rank(s) here of ${world}, rendezvous at ${o.masterAddr}:${o.masterPort}` +
      `${process.env.DPSM_NUM_THREADS ? "" : `, ${threads} thread(s) each`}`,
  );

  const children: { rank: number; child: ChildProcess; exit?: { code: number | null; signal: string | null } }[] = [];
  let failure: { rank: number; code: number } | undefined;
  let stopping = false;
  let killTimer: NodeJS.Timeout | undefined;

  const stopOthers = () => {
    for (const c of children) if (!c.exit) c.child.kill("SIGTERM");
    killTimer = setTimeout(() => {
      for (const c of children) {
        if (c.exit) continue;
        say(`dpsm-native launch: rank ${c.rank} did not stop within ${o.stopTimeoutSeconds} s; killing it`);
        c.child.kill("SIGKILL");
      }
    }, o.stopTimeoutSeconds * 1000);
    killTimer.unref();
  };

  const forward = (signal: NodeJS.Signals) => () => {
    stopping = true;
    for (const c of children) if (!c.exit) c.child.kill(signal);
  };
  const onSigint = forward("SIGINT");
  const onSigterm = forward("SIGTERM");
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onSigterm);

  try {
    const exits = Array.from({ length: o.nprocPerNode }, (_, local) => {
      const rank = o.nodeRank * o.nprocPerNode + local;
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        RANK: String(rank),
        LOCAL_RANK: String(local),
        WORLD_SIZE: String(world),
        LOCAL_WORLD_SIZE: String(o.nprocPerNode),
        MASTER_ADDR: o.masterAddr,
        MASTER_PORT: String(o.masterPort),
        DPSM_NUM_THREADS: process.env.DPSM_NUM_THREADS ?? String(threads),
        // One GPU per rank: the local rank's of those visible to the launcher (all of them when none are named).
        CUDA_VISIBLE_DEVICES: gpus ? (gpus[local % gpus.length] ?? "") : String(local),
      };
      // Rank 0 keeps the terminal (its progress bar); the others' lines carry their rank.
      const child = spawn(process.execPath, args, { env, stdio: rank === 0 ? "inherit" : ["ignore", "pipe", "pipe"] });
      for (const stream of [child.stdout, child.stderr]) {
        if (!stream) continue;
        const out = stream === child.stdout ? process.stdout : process.stderr;
        readline.createInterface({ input: stream }).on("line", (line) => out.write(`[rank ${rank}] ${line}\n`));
      }
      const entry: (typeof children)[number] = { rank, child };
      children.push(entry);
      return new Promise<void>((resolve) => {
        child.on("error", (e) => {
          entry.exit = { code: 1, signal: null };
          say(`dpsm-native launch: rank ${rank} could not start: ${e.message}`);
          if (!failure) failure = { rank, code: 1 };
          resolve();
        });
        child.on("exit", (code, signal) => {
          entry.exit = { code, signal };
          if ((code !== 0 || signal) && !failure && !stopping) {
            const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
            say(`dpsm-native launch: rank ${rank} (pid ${child.pid}) ${how}; stopping the other ranks`);
            failure = { rank, code: code && code !== 0 ? code : 1 };
            stopOthers();
          }
          resolve();
        });
      });
    });
    await Promise.all(exits);
  } finally {
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigterm);
    if (killTimer) clearTimeout(killTimer);
  }
  if (failure) {
    say(
      `dpsm-native launch: failed (rank ${failure.rank}); run the same command again to resume every rank from ` +
        "the last checkpoint",
    );
    return failure.code;
  }
  // Interrupted by the user: rank 0's code (130 for an experiment stopped at a checkpoint).
  const codes = children.map((c) => c.exit?.code ?? 1);
  return codes.find((c) => c !== 0) ?? 0;
}

/** `dpsm-native launch …`; resolves to the exit code. */
export async function runLaunchCli(argv: readonly string[], isCommand: (name: string) => boolean): Promise<number> {
  let parsed: ReturnType<typeof parseLaunchArgs>;
  try {
    parsed = parseLaunchArgs(argv);
  } catch (e) {
    if (!(e instanceof LaunchUsageError)) throw e;
    console.error(`dpsm-native launch: ${e.message}\n\n${LAUNCH_USAGE}`);
    return 2;
  }
  if ("help" in parsed) {
    console.log(LAUNCH_USAGE);
    return 0;
  }
  return launch(parsed, isCommand);
}
