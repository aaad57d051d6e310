// A child process under test/helpers (a training child: train-child.ts, train-seq2seq-child.ts) whose stdout is
// read line by line as it prints — the kill-and-resume tests time their kills from its lines.
import { type ChildProcessByStdio, spawn } from "node:child_process";
import path from "node:path";
import readline from "node:readline";
import type { Readable } from "node:stream";

import { packageRoot } from "../../lib/native.ts";

export interface LineChild {
  child: ChildProcessByStdio<null, Readable, Readable>;
  /** resolves when the child is gone: killed (SIGKILL) or not (exit 0); rejects with its stderr's end otherwise */
  exited: Promise<{ killed: boolean }>;
}

/**
 * Starts test/helpers/`script` with the argument `arg` and calls `onLine` with each line it prints, split at
 * spaces (`[kind, ...words]`), as the line arrives.
 */
export function startLineChild(script: string, arg: string, onLine: (words: string[]) => void): LineChild {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(packageRoot, "test/helpers", script), arg], {
    cwd: packageRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  readline.createInterface({ input: child.stdout }).on("line", (line) => onLine(line.split(" ")));
  const exited = new Promise<{ killed: boolean }>((resolve, reject) =>
    // "close", not "exit": every line the child printed has been read by then.
    child.once("close", (code, signal) => {
      if (signal === "SIGKILL") resolve({ killed: true });
      else if (code === 0) resolve({ killed: false });
      else reject(new Error(`${script} failed (${code ?? signal}): ${stderr.slice(-2000)}`));
    }),
  );
  return { child, exited };
}
