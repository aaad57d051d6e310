// Kills a training child process (one that prints "checkpoint N" and "step N …" lines) with SIGKILL a few steps
// after a checkpoint: the kill-and-resume checks of test/ (test/helpers/kill-child.ts starts the child) and of
// bench/gpu-verify/checks.ts.
import type { ChildProcessByStdio } from "node:child_process";
import type { Readable } from "node:stream";

export interface KillWhen {
  minCheckpoint: number;
  stepsPast: number;
}

/**
 * Sends SIGKILL to `child` (started with its stdout piped) at the first step at least `stepsPast` steps after a
 * checkpoint at step ≥ `minCheckpoint`. Resolves once the child is gone; rejects if it ends by itself.
 */
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
