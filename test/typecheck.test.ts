// The whole project (lib, tests, bench, examples) type-checks in strict mode.
import path from "node:path";

import test from "ava";

import { packageRoot } from "../lib/native.ts";
import { run } from "./helpers/run.ts";

test("tsc --noEmit passes in strict mode", (t) => {
  const tsc = path.join(packageRoot, "node_modules", "typescript", "bin", "tsc");
  const r = run(process.execPath, [tsc, "--noEmit", "-p", path.join(packageRoot, "tsconfig.json")]);
  t.is(r.code, 0, r.output);
});
