// Where the real data sets live: DPSM_DATA_DIR, else the project's shared/data beside the checkout.
import fs from "node:fs";
import path from "node:path";

import { packageRoot } from "../native.ts";

export function dataDir(): string {
  const dir = process.env.DPSM_DATA_DIR ?? path.resolve(packageRoot, "..", "shared", "data");
  if (!fs.existsSync(dir)) {
    throw new Error(
      `data directory not found: ${dir} (set DPSM_DATA_DIR to the folder holding wikitext-2/, ood_lm/, …)`,
    );
  }
  return dir;
}
