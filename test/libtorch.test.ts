// Which libtorch the addon runs on: buildInfo() names the version it was compiled against and the library the
// process loaded. test/run.mjs runs this file twice: against build/ (Debian's libtorch 1.13) and against
// build-torch2/ (PyPI's torch wheel, native/setup-torch2.sh) with DPSM_EXPECT_TORCH="2.", where a silent
// fallback to another build would otherwise pass the 2.x subset on 1.13.
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { buildInfo, packageRoot } from "../lib/native.ts";
import { probes } from "./helpers/testing-addon.ts";

test("buildInfo names the libtorch version and the library file this process loaded", (t) => {
  const info = buildInfo();
  t.regex(info.torchVersion, /^\d+\.\d+\.\d+/);
  t.true(path.isAbsolute(info.torchLibrary), info.torchLibrary);
  t.true(fs.existsSync(info.torchLibrary), info.torchLibrary);
  t.regex(path.basename(info.torchLibrary), /^libtorch_cpu\.so/);
  // The testing addon (DPSM_TESTING_NATIVE_PATH in the 2.x run) loads beside it.
  t.regex(probes.cpuIsa(), /^(avx512|avx2|baseline)$/);
  const expected = process.env.DPSM_EXPECT_TORCH;
  if (expected) {
    t.true(info.torchVersion.startsWith(expected), `expected libtorch ${expected}x, loaded ${info.torchVersion}`);
    t.is(
      path.dirname(info.torchLibrary),
      fs.realpathSync(path.join(packageRoot, ".cache", "torch2", "torch", "lib")),
      "the 2.x run loads the wheel's libtorch from .cache/torch2",
    );
  }
});
