#!/usr/bin/env node
// The builder prebuildify runs during a release (dev/release.mjs passes this file as prebuildify's --node-gyp).
// prebuildify drives `node-gyp rebuild` in its working folder, then takes build/Release/*.node from there, strips it,
// names it by its tags (dpsm-native.glibc.node: N-API, so no Node ABI tag) and moves it to prebuilds/<platform>-<arch>/
// of its --out folder, where node-gyp-build finds it. binding.gyp's one build cannot choose which PyTorch to compile
// against, and a flavour is exactly that choice, so each flavour's core is built before by its setup script
// (native/setup.sh, native/setup-torch2.sh [--cuda]); this "rebuild" only puts that core (DPSM_PREBUILD_CORE) where
// prebuildify looks. node-gyp's arguments (rebuild, --target, --arch, …) do not apply to a finished core.
import fs from "node:fs";
import path from "node:path";

const core = process.env.DPSM_PREBUILD_CORE;
if (!core || !fs.existsSync(core)) {
  console.error(`dev/prebuild-core.mjs: DPSM_PREBUILD_CORE names no built core (${core ?? "unset"})`);
  process.exit(1);
}
const release = path.join(process.cwd(), "build", "Release");
fs.rmSync(release, { recursive: true, force: true });
fs.mkdirSync(release, { recursive: true });
fs.copyFileSync(core, path.join(release, "dpsm_native.node"));
