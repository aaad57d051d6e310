// Runs a training child process (one that prints "checkpoint N" and "step N …" lines) and kills it with SIGKILL
// a few steps after a checkpoint, for the kill-and-resume tests (and bench/gpu-verify/checks.ts's).
import { type ChildProcessByStdio, spawn } from "node:child_process";
import path from "node:path";
import type { Readable } from "node:stream";

import { packageRoot } from "../../lib/native.ts";

export interface KillWhen {
  minCheckpoint: number;
  stepsPast: number;
}

/**
 * Starts `script` (under test/helpers) with `arg`, and sends SIGKILL at the first step at least `stepsPast` steps
 * after a checkpoint at step ≥ `minCheckpoint`. Resolves once the child is gone; rejects if it ends by itself.
 */
export async function killAfterCheckpoint(
  script: string,
  arg: string,
  when: KillWhen,
): Promise<{ killedAt: number; lastCheckpoint: number }> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(packageRoot, "test/helpers", script), arg], {
    cwd: packageRoot,
    stdio: ["ignore", "pipe", "inherit"],
  });
  return killChildAfterCheckpoint(child, when);
}

/** The same for a child already started (its stdout piped). */
export async function killChildAfterCheckpoint(
  child: ChildProcessByStdio<null, Readable, null>,
  when: KillWhen,
): Promise<{ killedAt: number; lastCheckpoint: number }> {
  let lastCheckpoint = 0;
  const killedAt = await new Promise<number>((resolve, reject) => {
    let buffered = "";
    child.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        const [kind, step] = line.split(" ");
        if (kind === "checkpoint") lastCheckpoint = Number(step);
        if (
          kind === "step" &&
          lastCheckpoint >= when.minCheckpoint &&
          Number(step) >= lastCheckpoint + when.stepsPast
        ) {
          child.kill("SIGKILL");
          resolve(Number(step));
        }
      }
    });
    child.on("exit", (code, signal) =>
      signal === "SIGKILL" ? undefined : reject(new Error(`child ended first (${code ?? signal})`)),
    );
  });
  await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once("exit", r)));
  return { killedAt, lastCheckpoint };
}
