#!/usr/bin/env node
// npm's install step for dpsm-native. An installed tarball carries a prebuilt CPU core (prebuilds/); it links
// libtorch by soname (libtorch_cpu.so.<major.minor>), so it loads only where the libtorch it was built against
// is present. This loads it the way the package will (dist/native.js: the local build, else the prebuilt
// flavours) and says which core is used; where none loads, it says why and builds from source against the
// host's libtorch (binding.gyp → CMakeLists.txt), as node-gyp-build would, but with a message a user can act on.
import { spawn } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";

const root = new URL("../", import.meta.url);
const say = (line) => console.error(`[dpsm-native install] ${line}`);

// A checkout has no dist/ before its own setup (native/setup.sh builds everything); nothing to check here.
if (!fs.existsSync(new URL("dist/native.js", root))) process.exit(0);

let reason;
try {
  const { native } = await import(new URL("dist/native.js", root).href);
  const info = native().buildInfo();
  say(`using the ${info.cuda ? "CUDA" : "CPU"} core built against libtorch ${info.torchVersion}; no compiler ran`);
  process.exit(0);
} catch (e) {
  reason = (e instanceof Error ? e.message : String(e)).split("\n").slice(0, 4).join("\n  ");
}

say(`no prebuilt core loads on this host:\n  ${reason}`);
say(
  "building from source against this host's libtorch instead (needs CMake, a C++17 compiler and libtorch — " +
    "`apt-get install libtorch-dev libopenblas0-pthread nlohmann-json3-dev` on Debian, or LIBTORCH=/path; " +
    "a few minutes)",
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
