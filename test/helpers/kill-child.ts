// Starts one of test/helpers' training children (train-child.ts, train-seq2seq-child.ts) and kills it a few steps
// after a checkpoint, for the kill-and-resume tests (the rule itself: dev/kill-child.ts, which bench shares).
import { spawn } from "node:child_process";
import path from "node:path";

import { killChildAfterCheckpoint, type KillWhen } from "../../dev/kill-child.ts";
import { packageRoot } from "../../lib/native.ts";

/** Starts `script` (under test/helpers) with `arg`, then kills it as `killChildAfterCheckpoint` says. */
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
