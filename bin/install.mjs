#!/usr/bin/env node
// npm's install step for dpsm-native, and `npm rebuild dpsm-native` (a source build). The package works without
// it: the core for the user's PyTorch comes in a per-flavour package npm installs beside this one (package.json's
// optionalDependencies), and lib/core-select.ts picks it at load time. This loads the core the way the package
// will and says which it uses; where none loads it says why, and builds from source against the host's libtorch
// (binding.gyp → CMakeLists.txt) when CMake and a C++ compiler work here. With no working compiler it leaves the
// install as it is: the package's first use throws the same message (what is there, what to install or build).
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";

const root = new URL("../", import.meta.url);
const say = (line) => console.error(`[dpsm-native install] ${line}`);

// A checkout has no dist/ before its own setup (native/setup.sh builds everything); nothing to check here.
if (!fs.existsSync(new URL("dist/native.js", root))) process.exit(0);

let reason;
try {
  const { native, loadedCore } = await import(new URL("dist/native.js", root).href);
  const info = native().buildInfo();
  const { core, torch, skipped } = loadedCore();
  for (const s of skipped) say(`passed over ${s.core.flavour} (${s.core.file}): ${s.error.split("\n")[0]}`);
  say(
    `using the ${info.cuda ? "CUDA" : "CPU"} core built against libtorch ${info.torchVersion} (${core.flavour}: ` +
      `${core.file}${torch ? `; PyTorch from ${torch.source}` : ""}); no compiler ran`,
  );
  process.exit(0);
} catch (e) {
  reason = e instanceof Error ? e.message : String(e);
}

say(reason);
// `--version` of each: a missing tool, or one that does not run, means no source build can work here.
const works = (tool) => spawnSync(tool, ["--version"], { stdio: "ignore" }).status === 0;
const missing = ["cmake", "c++"].filter((tool) => !works(tool));
if (missing.length > 0) {
  say(`no source build either: ${missing.join(" and ")} ${missing.length > 1 ? "do" : "does"} not run here`);
  process.exit(0);
}
say(
  "building from source against this host's libtorch (needs libtorch — `apt-get install libtorch-dev " +
    "libopenblas0-pthread nlohmann-json3-dev` on Debian, or LIBTORCH=/path or Torch_DIR; a few minutes)",
);
const nodeGypBuild = createRequire(import.meta.url).resolve("node-gyp-build/bin.js");
const child = spawn(process.execPath, [nodeGypBuild], {
  stdio: "inherit",
  env: { ...process.env, npm_config_build_from_source: "true" },
});
child.on("exit", (code) => {
  if (code !== 0) say("the source build failed; its output is above");
  process.exit(code ?? 1);
});
