// A Hugging Face checkpoint folder as every model family reads it: config.json, and the weights in one
// model.safetensors or sharded behind model.safetensors.index.json (what save_pretrained writes for large models).
import fs from "node:fs";
import path from "node:path";

import { z } from "zod";

import { parseOrThrow } from "../config.ts";
import { ensureFolder } from "../io/paths.ts";
import type { NativeModel } from "../native.ts";

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
    config = JSON.parse(fs.readFileSync(configFile, "utf8"));
  } catch (e) {
    throw new Error(`${who}: ${configFile} is not valid JSON (${(e as Error).message})`, { cause: e });
  }
  return { config, weights };
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
