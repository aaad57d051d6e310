// A Hugging Face checkpoint folder as every model family reads it: config.json, and the weights in one
// model.safetensors or sharded behind model.safetensors.index.json (what save_pretrained writes for large models).
import fs from "node:fs";
import path from "node:path";

import { z } from "zod";

import { parseOrThrow } from "../config.ts";
import { ensureFolder } from "../io/paths.ts";
import type { NativeModel } from "../native.ts";
import { readTextFile } from "../io/read.ts";

export interface HfCheckpoint {
  /** config.json, parsed but not yet validated (each family's schema does that) */
  config: unknown;
  /** model.safetensors, or model.safetensors.index.json for sharded weights */
  weights: string;
}

export function readHfCheckpoint(dir: string, who: string): HfCheckpoint {
  if (typeof dir !== "string" || dir === "") {
    throw new TypeError(`${who}: dir: expected a checkpoint folder's path, got ${dir === "" ? '""' : String(dir)}`);
  }
  const configFile = path.join(dir, "config.json");
  if (!fs.existsSync(configFile)) throw new Error(`${who}: ${configFile} not found`);
  const weights = ["model.safetensors", "model.safetensors.index.json"]
    .map((f) => path.resolve(dir, f))
    .find((f) => fs.existsSync(f));
  if (!weights) throw new Error(`${who}: ${path.join(dir, "model.safetensors")} (or a sharded index) not found`);
  let config: unknown;
  try {
    config = JSON.parse(readTextFile(configFile, who));
  } catch (e) {
    throw new Error(`${who}: ${configFile} is not valid JSON (${(e as Error).message})`, { cause: e });
  }
  return { config, weights };
}

// The format's bound on a header (safetensors' MAX_HEADER_SIZE), as the native reader applies it.
const MAX_HEADER = 100 * 2 ** 20;

/** The values (elements) a safetensors file's header declares, or undefined where it is unreadable. */
function headerValueCount(file: string): number | undefined {
  let fd: number | undefined;
  try {
    if (!fs.statSync(file).isFile()) return undefined;
    fd = fs.openSync(file, "r");
    const len = Buffer.alloc(8);
    if (fs.readSync(fd, len, 0, 8, 0) !== 8) return undefined;
    const n = len.readBigUInt64LE(0);
    if (n > BigInt(Math.min(MAX_HEADER, fs.fstatSync(fd).size - 8))) return undefined;
    const header = Buffer.alloc(Number(n));
    if (fs.readSync(fd, header, 0, header.length, 8) !== header.length) return undefined;
    const json = JSON.parse(header.toString("utf8")) as Record<string, { shape?: unknown }>;
    let total = 0;
    for (const [name, entry] of Object.entries(json)) {
      if (name === "__metadata__") continue;
      const shape = entry?.shape;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) return undefined;
      total += (shape as number[]).reduce((a, b) => a * b, 1);
    }
    return total;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * The values the checkpoint's weights declare (every shard's header summed), or undefined where a header or the
 * index cannot be read: the native reader then says precisely what is wrong. Reads headers only.
 */
function storedValueCount(weights: string): number | undefined {
  if (!weights.endsWith(".index.json")) return headerValueCount(weights);
  try {
    if (!fs.statSync(weights).isFile() || fs.statSync(weights).size > MAX_HEADER) return undefined;
    const map = (JSON.parse(fs.readFileSync(weights, "utf8")) as { weight_map?: Record<string, unknown> }).weight_map;
    if (typeof map !== "object" || map === null) return undefined;
    let total = 0;
    for (const shard of new Set(Object.values(map))) {
      if (typeof shard !== "string" || shard.includes("/")) return undefined;
      const n = headerValueCount(path.join(path.dirname(weights), shard));
      if (n === undefined) return undefined;
      total += n;
    }
    return total;
  } catch {
    return undefined;
  }
}

/**
 * Refuses a config.json that describes a model larger than the weights beside it, before the model is built: a
 * tiny file whose config claimed a 2^24 vocabulary built and initialised 537 M parameters first, only for the
 * native loader to find every shape wrong. `needed` is the fewest values a file of that config must store. A
 * model up to twice the file (and 2^20 values, 4 MiB, over) costs no more to build than the file costs to read:
 * there the native loader's list of each missing or mis-shaped tensor is the more useful message.
 */
export function checkConfigAgainstWeights(dir: string, weights: string, needed: number, who: string): void {
  const stored = storedValueCount(weights);
  if (stored !== undefined && needed > 2 * stored + 2 ** 20) {
    throw new Error(
      `${who}: ${path.join(dir, "config.json")} describes a model of at least ${needed.toLocaleString("en-US")} ` +
        `values, more than twice the ${stored.toLocaleString("en-US")} that ${weights} holds: ` +
        "the config does not belong to these weights",
    );
  }
}

const SaveOptionsSchema = z
  .object({
    /** shard the weights past this many bytes (default: transformers' 5 GB, stated in native/core/models) */
    maxShardBytes: z.number().int().min(1).optional(),
  })
  .strict();
export type SaveOptions = z.input<typeof SaveOptionsSchema>;

/**
 * Writes config.json and the weights in Hugging Face's layout (one file, or shards past maxShardBytes): on the
 * calling thread, or (`async`) on libuv's pool. The folder is checked (lib/io/paths.ts) before it is created.
 */
export function saveHfCheckpoint(model: NativeModel, dir: string, options: SaveOptions, who: string): void;
export function saveHfCheckpoint(
  model: NativeModel,
  dir: string,
  options: SaveOptions,
  who: string,
  async: true,
): Promise<void>;
export function saveHfCheckpoint(
  model: NativeModel,
  dir: string,
  options: SaveOptions,
  who: string,
  async = false,
): void | Promise<void> {
  const o = parseOrThrow(SaveOptionsSchema, options, `${who} options`);
  const abs = ensureFolder(dir, `${who}: dir`);
  return async ? model.saveAsync(abs, JSON.stringify(o)) : model.save(abs, JSON.stringify(o));
}
