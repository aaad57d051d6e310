// The one place the experiments resolve their data folder and, when a data set they read is not there at all,
// fetch it (saying what, how much and from where) before the loaders look for its files.

import { distributedFromEnv } from "../distributed.ts";
import { checkFolderPath, ensureFolder } from "../io/paths.ts";
import { datasetStatus, ensureDataset } from "./fetch.ts";
import { dataDir } from "./paths.ts";
import { type FetchableName, isFetchable } from "./sources.ts";

/**
 * An experiment's dataDir setting checked as the place of the data folder (lib/io/paths.ts), by its spec's check
 * before the run's config.json is pinned: one under /proc, /sys or /dev, or a file, is refused there, not when the
 * data is prepared.
 */
export function checkDataDir(experiment: string, dir: string | undefined): void {
  if (dir !== undefined) checkFolderPath(dir, `${experiment} config.dataDir`);
}

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
    // The one path check of every writer: under /proc, /sys or /dev a recursive mkdir never returns.
    root = ensureFolder(override, "dataDir");
  }
  // Under `dpsm-native launch` rank 0 fetches; the others wait for its files (two writers of one file would not do).
  const place = distributedFromEnv();
  for (const name of new Set(names)) {
    if (!isFetchable(name)) continue;
    if (!place || place.rank === 0) await ensureDataset(name, root, say);
    else await waitForDataset(name, root, (place.timeoutSeconds ?? 1800) * 1000, say);
  }
  return root;
}

async function waitForDataset(name: FetchableName, root: string, timeoutMs: number, say: (line: string) => void) {
  const ready = () => {
    const status = datasetStatus(root, name);
    return status.other.length > 0 || status.files.every((f) => f.state === "present");
  };
  if (ready()) return;
  say(`data: waiting for rank 0 to fetch ${name} into ${root}`);
  const until = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > until) {
      throw new Error(
        `data: ${name} did not appear in ${root} within ${Math.round(timeoutMs / 1000)} s (rank 0 fetches it)`,
      );
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}
