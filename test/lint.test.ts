// Formatting and lint rules hold over the whole tree (Prettier, ESLint, clang-format): `npm run format` fixes layout.
import test from "ava";

import { packageRoot } from "../lib/native.ts";
import { run } from "./helpers/run.ts";

test("npm run lint passes", (t) => {
  const r = run("npm", ["run", "--silent", "lint"], { cwd: packageRoot });
  t.is(r.code, 0, r.output);
});
