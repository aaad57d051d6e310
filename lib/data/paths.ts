// Where the real data sets live: DPSM_DATA_DIR when set, else the user's cache folder
// ($XDG_CACHE_HOME/dpsm-native/data, by default ~/.cache/dpsm-native/data), which `dpsm-native data fetch` fills.
// A local copy elsewhere (this project's ../shared/data, say) is used only when DPSM_DATA_DIR names it.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { ensureFolder } from "../io/paths.ts";

/** The environment variable the user's cache folder comes from: XDG_CACHE_HOME when absolute, else HOME. */
function cacheSetting(): "XDG_CACHE_HOME" | "HOME" {
  const xdg = process.env.XDG_CACHE_HOME;
  return xdg && path.isAbsolute(xdg) ? "XDG_CACHE_HOME" : "HOME";
}

/** dpsm-native's folder in the user's cache ($XDG_CACHE_HOME/dpsm-native, by default ~/.cache/dpsm-native). */
export function userCacheDir(): string {
  const cache = cacheSetting() === "XDG_CACHE_HOME" ? process.env.XDG_CACHE_HOME! : path.join(os.homedir(), ".cache");
  return path.join(cache, "dpsm-native");
}

/** The user cache folder data sets are fetched into when DPSM_DATA_DIR is not set. */
export function defaultDataDir(): string {
  return path.join(userCacheDir(), "data");
}

/** The data folder without checking it exists (DPSM_DATA_DIR, else the cache folder). */
export function dataDirPath(): string {
  const env = process.env.DPSM_DATA_DIR;
  return env !== undefined && env !== "" ? path.resolve(env) : defaultDataDir();
}

/** The data folder; DPSM_DATA_DIR must exist when set, the cache folder may still be empty (then made). */
export function dataDir(): string {
  const dir = dataDirPath();
  if (fs.existsSync(dir)) return dir;
  if (process.env.DPSM_DATA_DIR) {
    throw new Error(
      `data directory not found: ${dir} (DPSM_DATA_DIR must name the folder holding wikitext-2/, ood_lm/, …; ` +
        "unset it to use the cache folder that `dpsm-native data fetch` fills)",
    );
  }
  // The one path check of every writer: a cache folder under /proc, /sys or /dev would hang a recursive mkdir.
  return ensureFolder(dir, `the data cache folder (from ${cacheSetting()})`);
}
