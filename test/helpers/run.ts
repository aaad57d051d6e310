// Runs a command to completion for the build-level tests, capturing its output.
import { spawnSync, type SpawnSyncOptions } from "node:child_process";

export interface RunResult {
  code: number | null;
  output: string;
}

export function run(cmd: string, args: string[], options: SpawnSyncOptions = {}): RunResult {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options });
  return { code: r.status, output: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}
