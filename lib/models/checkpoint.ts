// A Hugging Face checkpoint folder as every model family reads it: config.json, and the weights in one
// model.safetensors or sharded behind model.safetensors.index.json (what save_pretrained writes for large models).
import fs from "node:fs";
import path from "node:path";

export interface HfCheckpoint {
  /** config.json, parsed but not yet validated (each family's schema does that) */
  config: unknown;
  /** model.safetensors, or model.safetensors.index.json for sharded weights */
  weights: string;
}

export function readHfCheckpoint(dir: string, who: string): HfCheckpoint {
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
