// This project's own runs (npm test, ava, npm run quickstart) read the data folder beside the checkout,
// ../shared/data, when there is one and DPSM_DATA_DIR does not already say otherwise, and keep their token cache in
// the checkout (.cache/tokens) unless DPSM_CACHE_DIR says otherwise. The package itself has no
// such default (lib/data/paths.ts: DPSM_DATA_DIR, else the user cache folder `dpsm-native data fetch` fills), so
// this is set here, explicitly, for the processes these entry points start. Imported first (ava's `require`,
// `node --import`), before anything reads the variable.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const shared = path.resolve(root, "..", "shared", "data");
if (!process.env.DPSM_DATA_DIR && fs.existsSync(shared)) process.env.DPSM_DATA_DIR = shared;
process.env.DPSM_CACHE_DIR ||= path.join(root, ".cache", "tokens");
