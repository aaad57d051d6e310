// What the data-parallel tests (test/data-parallel.test.ts, test/two-nodes.test.ts) compare a run by: rank 0's
// step losses as train-child.ts prints them, and the distance between two runs' final weights.
import net from "node:net";
import path from "node:path";

import type { TrainerOptions } from "../../lib/index.ts";
import { readHeader, readTensor } from "./safetensors.ts";

const MODEL = { vocab_size: 50257, n_positions: 64, n_embd: 32, n_layer: 2, n_head: 2, resid_pdrop: 0 } as const;

/** A tiny GPT-2 trained on WikiText-2 for 8 steps (the fixture-sized model the data-parallel tests share). */
export function gpt2Run(runDir: string, o: Partial<TrainerOptions>): TrainerOptions {
  return {
    model: { ...MODEL },
    loss: { kind: "dpsm", schedule: "cosine", warmupSteps: 6 },
    data: { source: "wikitext-2", contextLength: 17 },
    maxSteps: 8,
    lr: 2e-3,
    lrWarmupSteps: 2,
    evalEvery: 8,
    evalMaxSequences: 4,
    seed: 5,
    runDir,
    ...o,
  };
}

/** A TCP port free on 127.0.0.1 now (the rendezvous of a launch on loopback). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The losses of the `step <n> <loss>` lines of train-child.ts' output. */
export const lossesOf = (output: string): number[] =>
  output
    .split("\n")
    .filter((l) => l.startsWith("step "))
    .map((l) => Number(l.split(" ")[2]));

/**
 * How far two checkpoints' weights are apart: the largest absolute difference, and the L2 norm of the difference
 * over the L2 norm of `a`'s weights. AdamW divides each gradient by its running RMS, so a weight whose gradient is
 * all but zero (an embedding row no target names) moves by up to lr per step on rounding noise alone: the largest
 * difference shows that; the relative norm is what tells the same run from another.
 */
export function weightDifference(a: string, b: string): { max: number; relative: number } {
  const fa = path.join(a, "last", "model.safetensors");
  const fb = path.join(b, "last", "model.safetensors");
  let max = 0;
  let diff2 = 0;
  let norm2 = 0;
  for (const name of Object.keys(readHeader(fa).header)) {
    const [x, y] = [readTensor(fa, name), readTensor(fb, name)];
    for (let i = 0; i < x.length; i++) {
      const d = x[i]! - y[i]!;
      max = Math.max(max, Math.abs(d));
      diff2 += d * d;
      norm2 += x[i]! * x[i]!;
    }
  }
  return { max, relative: Math.sqrt(diff2 / norm2) };
}

/** The largest |a − b| / |a| over two loss curves. */
export function maxRelative(a: number[], b: number[]): number {
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]!) / Math.abs(x)));
}
