// The checkout's own data defaults, stated once. This checkout's commands — the package.json scripts that read
// data (quickstart, exp1, exp2, bench:*, gpu:pack, demo:loss) and the tests (test/run.mjs, ava's `require`) —
// read the data folder beside the checkout, ../shared/data, when that folder exists and DPSM_DATA_DIR does not
// already name one, and keep their token cache in the checkout (.cache/tokens) unless DPSM_CACHE_DIR says otherwise.
//
// Why the commands and not the package: ../shared/data is one local folder of this project's machines, not
// something a user of the package has, so the library's default stays lib/data/paths.ts's (DPSM_DATA_DIR, else
// the user cache folder that `dpsm-native data fetch` fills) and neither lib/ nor bin/ knows about this folder.
// Each command preloads this file (`node --import ./dev/checkout-env.mjs …`, `tsx --import …`), so the default is
// visible on the command line, is set before anything reads the variables, and is inherited by every process the
// command starts (the experiments' ranks, the tests' children). dev/ is not shipped: an installed package, or
// bin/dpsm-native.mjs run without this preload, sees only the library's default.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The checkout this file is in. */
export const checkoutRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The checkout's defaults for `env`, where it does not say otherwise (what this module applies on import). */
export function applyCheckoutEnv(env = process.env) {
  const shared = path.resolve(checkoutRoot, "..", "shared", "data");
  if (!env.DPSM_DATA_DIR && fs.existsSync(shared)) env.DPSM_DATA_DIR = shared;
  env.DPSM_CACHE_DIR ||= path.join(checkoutRoot, ".cache", "tokens");
  return env;
}

applyCheckoutEnv();
