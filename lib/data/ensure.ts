// The one place the experiments resolve their data folder and, when a data set they read is not there at all,
// fetch it (saying what, how much and from where) before the loaders look for its files.
import fs from "node:fs";
import path from "node:path";

import { ensureDataset } from "./fetch.ts";
import { dataDir } from "./paths.ts";
import { isFetchable } from "./sources.ts";

/**
 * The data folder (`override`, else DPSM_DATA_DIR, else the user cache folder), with each fetchable data set of
 * `names` fetched into it when the folder holds nothing of it. Other names (OOD sets, DialogSum, AESLC, folders
 * given by path) are left to the loaders, which say what to place where.
 */
export async function experimentDataDir(
  override: string | undefined,
  names: readonly string[],
  say: (line: string) => void,
): Promise<string> {
  let root: string;
  if (override === undefined) root = dataDir();
  else {
    root = path.resolve(override);
    fs.mkdirSync(root, { recursive: true });
  }
  for (const name of new Set(names)) {
    if (isFetchable(name)) await ensureDataset(name, root, say);
  }
  return root;
}
