// Data-parallel training's settings: which rank this process is and where the ranks meet, given the torchrun way
// (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT: what `dpsm-native launch` sets, lib/launch.ts) or as
// options; and how an experiment shares its global batch between ranks. The training itself is in C++
// (native/core/train/data_parallel.cpp).
import { z } from "zod";

import { parseOrThrow } from "./config.ts";

export const DistributedOptionsSchema = z
  .object({
    rank: z.number().int().min(0),
    worldSize: z.number().int().min(1),
    masterAddr: z.string().min(1).default("127.0.0.1"),
    masterPort: z.number().int().min(1).max(65535).default(29500),
    /** how long a rank waits for the others in a collective (rank 0's evaluations and checkpoints included) */
    timeoutSeconds: z.number().positive().finite().default(1800),
    /** gradients are all-reduced in buckets of about this size */
    bucketMB: z.number().positive().finite().default(25),
  })
  .strict()
  .refine((d) => d.rank < d.worldSize, { message: "rank must be less than worldSize", path: ["rank"] });
export type DistributedOptions = z.input<typeof DistributedOptionsSchema>;

/** What the native trainer receives (its `distributed` field). */
export interface DistributedDocument {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  timeoutSeconds: number;
  bucketBytes: number;
}

const ONE_PROCESS: DistributedDocument = {
  rank: 0,
  worldSize: 1,
  masterAddr: "127.0.0.1",
  masterPort: 29500,
  timeoutSeconds: 1800,
  bucketBytes: 25 << 20,
};

function envInteger(env: NodeJS.ProcessEnv, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const text = env[name]!;
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new RangeError(`environment variable ${name}: expected an integer from ${min} to ${max}, got "${text}"`);
  }
  return n;
}

/**
 * The process group the environment names (WORLD_SIZE set: RANK, MASTER_ADDR and MASTER_PORT too, as torchrun
 * and `dpsm-native launch` set them); undefined when it names none.
 */
export function distributedFromEnv(env: NodeJS.ProcessEnv = process.env): DistributedOptions | undefined {
  if (env.WORLD_SIZE === undefined || env.WORLD_SIZE === "") return undefined;
  const worldSize = envInteger(env, "WORLD_SIZE", 1);
  if (env.RANK === undefined) throw new RangeError("environment variable RANK: WORLD_SIZE is set, RANK is not");
  return {
    rank: envInteger(env, "RANK", 0, worldSize - 1),
    worldSize,
    ...(env.MASTER_ADDR ? { masterAddr: env.MASTER_ADDR } : {}),
    ...(env.MASTER_PORT ? { masterPort: envInteger(env, "MASTER_PORT", 1, 65535) } : {}),
    ...(env.DPSM_DIST_TIMEOUT ? { timeoutSeconds: envInteger(env, "DPSM_DIST_TIMEOUT", 1) } : {}),
  };
}

/** A Trainer's `distributed` option as the native trainer takes it: false, "env" or options. */
export function resolveDistributed(option: false | "env" | DistributedOptions, what: string): DistributedDocument {
  let given: DistributedOptions | undefined;
  if (option === "env") {
    try {
      given = distributedFromEnv();
    } catch (e) {
      throw new RangeError(`${what}: ${(e as Error).message}`, { cause: e });
    }
  } else if (option !== false) {
    given = option;
  }
  if (!given) return ONE_PROCESS;
  const d = parseOrThrow(DistributedOptionsSchema, given, what);
  return {
    rank: d.rank,
    worldSize: d.worldSize,
    masterAddr: d.masterAddr,
    masterPort: d.masterPort,
    timeoutSeconds: d.timeoutSeconds,
    bucketBytes: Math.round(d.bucketMB * 2 ** 20),
  };
}

/**
 * An experiment's settings per rank, so that `worldSize` ranks train on the same global batch as one process
 * (batchSize × gradAccumulation sequences per step). The batch is divided as far as it goes (then each step is one
 * process's step, label noise and summary swaps included, to the reduction order's rounding: each rank's mean is
 * weighted by its share of the targets, native/core/train/trainer.cpp), gradient accumulation by what is left (the
 * same rows in larger micro-batches: the same step where every row has as many targets, as packed language-model
 * rows do, and no noise is drawn).
 */
export function shareGlobalBatch(
  batchSize: number,
  gradAccumulation: number,
  worldSize: number,
): { batchSize: number; gradAccumulation: number } {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const byBatch = gcd(batchSize, worldSize);
  const byAccumulation = worldSize / byBatch;
  if (gradAccumulation % byAccumulation !== 0) {
    throw new RangeError(
      `${worldSize} ranks: the global batch of ${batchSize} × ${gradAccumulation} sequences does not divide among ` +
        `them (batchSize shares ${byBatch}, gradAccumulation would have to share ${byAccumulation}); choose ` +
        "settings whose product is a multiple of the number of ranks",
    );
  }
  return { batchSize: batchSize / byBatch, gradAccumulation: gradAccumulation / byAccumulation };
}
