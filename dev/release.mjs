#!/usr/bin/env node
// Makes a release's tarballs from a clean clone of this checkout's HEAD: the main package (`npm pack`, which runs
// prepack's check and prepare's TypeScript build) and one package per prebuilt core, the flavours listed in
// package.json's dpsmNative.flavours (lib/flavour.ts names them and their packages; the loader is
// lib/core-select.ts). Each flavour is built the way the test suite builds it:
//   torch1.13            native/setup.sh                   (Debian's libtorch-dev) → build/
//   torch2.N             native/setup-torch2.sh            (PyPI's torch wheel, pinned there) → build-torch2/
//   torch2.N-cu13        native/setup-torch2.sh --cuda     (the same wheel's CUDA side, nvcc wheels) → build-torch2-cuda/
// and the flavour a build really has is read back from its CMakeCache (the torch it found): a release never packs
// a core under another torch's name. prebuildify then packages each core (dev/prebuild-core.mjs hands it the built
// core): stripped, named by its tags, in the package's prebuilds/linux-x64/ where node-gyp-build finds it. The
// cores also lose their build-machine RUNPATH (CMake's file(RPATH_REMOVE)): at load time the loader puts the user's
// torch libraries in place first.
//   node dev/release.mjs [--out DIR] [--flavours torch1.13,...] [--reuse CHECKOUT]
//     --reuse: take node_modules and the built cores from CHECKOUT's build folders instead of building in the clone
//              (what test/tarball-install.test.ts does with the builds the suite made).
//   node dev/release.mjs --check | --prepack | --postpack   package.json's flavours checked; written in as
//     optionalDependencies for `npm pack`, and taken out again (package.json's prepack and postpack).
// Prints a JSON summary of the tarballs (file, size, unpacked size) on its last line.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { tsImport } from "tsx/esm/api";

const checkout = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const say = (line) => console.error(`[dpsm-native release] ${line}`);
const die = (line) => {
  say(line);
  process.exit(1);
};
/** lib/flavour.ts: the flavour names, their packages and prebuildify's name for the cores. */
const { FLAVOUR_SCOPE, flavourName, flavourPackage, parseFlavour, PREBUILD_NAME } = await tsImport(
  path.join(checkout, "lib", "flavour.ts"),
  import.meta.url,
);
// the cores this script builds are for the machine it runs on, which the packages declare (os, cpu, libc)
const PLATFORM = ["linux", "x64"];

function manifest(root) {
  return JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
}

// The flavours live in package.json's dpsmNative.flavours; a packed package.json lists their packages as
// optionalDependencies, pinned to its own version, which npm installs where os/cpu/libc fit. They are written in at
// prepack and taken out at postpack, not kept in the checkout's package.json: `npm ci` refuses a lockfile that
// lacks them, and packages not yet on the registry cannot be locked.
/** The flavours package.json lists (checked against native/setup-torch2.sh's pinned torch); exits naming what is wrong. */
function checkManifest(root, { pinned: checkPinned = true } = {}) {
  const pkg = manifest(root);
  const flavours = pkg.dpsmNative?.flavours ?? [];
  if (flavours.length === 0) die("package.json lists no dpsmNative.flavours");
  for (const f of flavours) {
    if (!parseFlavour(f)) die(`dpsmNative.flavours: ${f} is not torch<M.m>[-cu<N>]`);
  }
  const pinned = /^TORCH=torch==(\d+\.\d+)/m.exec(fs.readFileSync(path.join(root, "native/setup-torch2.sh"), "utf8"));
  if (checkPinned && pinned && !flavours.some((f) => parseFlavour(f).torch === pinned[1])) {
    die(`native/setup-torch2.sh pins torch ${pinned[1]}, and dpsmNative.flavours lists no flavour for it`);
  }
  return flavours;
}

const ORIGINAL = "package.json.prepack";
/** prepack: package.json with its flavours' packages as optionalDependencies (the original kept for postpack). */
function prepack(root) {
  const flavours = checkManifest(root, { pinned: false });
  const file = path.join(root, "package.json");
  const text = fs.readFileSync(file, "utf8");
  const pkg = JSON.parse(text);
  const deps = Object.fromEntries(flavours.map((f) => [flavourPackage(f, ...PLATFORM), pkg.version]));
  const stale = Object.keys(pkg.optionalDependencies ?? {}).filter(
    (n) => n.startsWith(`${FLAVOUR_SCOPE}/`) && !deps[n],
  );
  if (stale.length) die(`optionalDependencies: ${stale.join(", ")} not in dpsmNative.flavours`);
  if (!fs.existsSync(path.join(root, ORIGINAL))) fs.writeFileSync(path.join(root, ORIGINAL), text);
  pkg.optionalDependencies = { ...pkg.optionalDependencies, ...deps };
  fs.writeFileSync(file, `${JSON.stringify(pkg, null, 2)}\n`);
}

function postpack(root) {
  const original = path.join(root, ORIGINAL);
  if (fs.existsSync(original)) fs.renameSync(original, path.join(root, "package.json"));
}

function sh(cmd, args, cwd, opts = {}) {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: "utf8",
    maxBuffer: 1 << 26,
    stdio: ["ignore", "pipe", "inherit"],
    ...opts,
  });
  if (r.status !== 0) die(`${cmd} ${args.join(" ")} failed (${r.status})`);
  return r.stdout;
}

/** The flavour a build folder holds, from the torch its CMake configuration used. */
function builtFlavour(buildDir) {
  const cache = fs.readFileSync(path.join(buildDir, "CMakeCache.txt"), "utf8");
  const value = (key) => new RegExp(`^${key}:[A-Z]+=(.*)$`, "m").exec(cache)?.[1];
  const cuda = value("DPSM_CUDA") === "ON";
  const root = value("DPSM_TORCH_ROOT");
  let version;
  let cudaVersion;
  if (root) {
    const py = fs.readFileSync(path.join(root, "version.py"), "utf8");
    version = /^__version__\s*=\s*'([^'+]+)/m.exec(py)?.[1];
    cudaVersion = /^cuda(?::[^=]*)?\s*=\s*'([\d.]+)'/m.exec(py)?.[1];
  } else {
    const dir = value("Torch_DIR");
    const text = fs.readFileSync(path.join(dir, "TorchConfigVersion.cmake"), "utf8");
    version = /set\(PACKAGE_VERSION "([^"]+)"\)/.exec(text)?.[1];
  }
  if (!version) die(`${buildDir}: cannot tell which torch it was built against`);
  return flavourName(version, cuda ? cudaVersion.split(".")[0] : null);
}

const BUILDS = [
  { folder: "build", cuda: false, torch1: true, args: ["native/setup.sh"] },
  { folder: "build-torch2", cuda: false, torch1: false, args: ["native/setup-torch2.sh"] },
  { folder: "build-torch2-cuda", cuda: true, torch1: false, args: ["native/setup-torch2.sh", "--cuda"] },
];
const buildFor = (flavour) => {
  const { torch, cuda } = parseFlavour(flavour);
  return BUILDS.find((b) => b.cuda === !!cuda && b.torch1 === torch.startsWith("1."));
};

function packJson(dir, out) {
  const stdout = sh("npm", ["pack", "--json", "--loglevel=error", "--pack-destination", out], dir);
  const [entry] = JSON.parse(stdout.slice(stdout.indexOf("[")));
  return { file: path.join(out, entry.filename), name: entry.name, size: entry.size, unpackedSize: entry.unpackedSize };
}

/** A flavour's package: its core packaged by prebuildify into prebuilds/linux-x64/, and its package.json. */
function packFlavour(flavour, core, version, out) {
  const { torch, cuda } = parseFlavour(flavour);
  const dir = path.join(out, "packages", flavour);
  fs.rmSync(dir, { recursive: true, force: true });
  const stage = path.join(out, "stage", flavour);
  fs.mkdirSync(stage, { recursive: true });
  const prebuildify = path.join(checkout, "node_modules", "prebuildify", "bin.js");
  const builder = path.join(checkout, "dev", "prebuild-core.mjs");
  const flags = ["--napi", "--strip", "--tag-libc", "--name", PREBUILD_NAME, "--node-gyp", builder, "--out", dir];
  sh(process.execPath, [prebuildify, ...flags, stage], stage, { env: { ...process.env, DPSM_PREBUILD_CORE: core } });
  const prebuilds = path.join(dir, "prebuilds", PLATFORM.join("-"));
  const files = fs.readdirSync(prebuilds);
  if (files.length !== 1) die(`${flavour}: prebuildify left ${files.join(", ") || "nothing"} in ${prebuilds}`);
  const script = path.join(stage, "rpath-remove.cmake");
  fs.writeFileSync(script, 'file(RPATH_REMOVE FILE "${CORE}")\n');
  sh("cmake", [`-DCORE=${path.join(prebuilds, files[0])}`, "-P", script], stage);
  const pkg = {
    name: flavourPackage(flavour, ...PLATFORM),
    version,
    description: `dpsm-native's core for PyTorch ${torch}.x, ${cuda ? `CUDA ${cuda} (sm_80, sm_90)` : "CPU"}, Linux x64 (glibc)`,
    license: "MIT",
    os: [PLATFORM[0]],
    cpu: [PLATFORM[1]],
    libc: ["glibc"],
    files: ["prebuilds/"],
    dpsmNative: { torch, cuda },
  };
  fs.writeFileSync(path.join(dir, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
  return packJson(dir, out);
}

const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
if (args.includes("--check")) {
  checkManifest(process.cwd());
  process.exit(0);
}
if (args.includes("--prepack")) {
  prepack(process.cwd());
  process.exit(0);
}
if (args.includes("--postpack")) {
  postpack(process.cwd());
  process.exit(0);
}

const out = path.resolve(option("--out") ?? fs.mkdtempSync(path.join(os.tmpdir(), "dpsm-release-")));
const reuse = option("--reuse") && path.resolve(option("--reuse"));
fs.mkdirSync(out, { recursive: true });
const clone = path.join(out, "clone");
fs.rmSync(clone, { recursive: true, force: true });
say(`cloning ${checkout} (HEAD) into ${clone}`);
sh("git", ["clone", "--quiet", "--no-hardlinks", checkout, clone], out);
const all = checkManifest(clone);
const flavours = option("--flavours")?.split(",") ?? all;
for (const f of flavours) if (!all.includes(f)) die(`--flavours: ${f} is not in package.json (${all.join(", ")})`);
const version = manifest(clone).version;
if (flavours.length < all.length) {
  // a partial release says so: its package.json lists only the flavours it has
  const pkg = manifest(clone);
  pkg.dpsmNative.flavours = flavours;
  fs.writeFileSync(path.join(clone, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
}

const from = reuse ?? clone;
if (reuse) fs.symlinkSync(path.join(reuse, "node_modules"), path.join(clone, "node_modules"));
else sh("npm", ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], clone);
const tarballs = [];
for (const flavour of flavours) {
  const build = buildFor(flavour);
  const core = path.join(from, build.folder, "Release", "dpsm_native.node");
  if (!reuse) {
    say(`building ${flavour}: bash ${build.args.join(" ")}`);
    sh("bash", build.args, clone);
  }
  if (!fs.existsSync(core)) die(`${flavour}: no ${core} (build it with bash ${build.args.join(" ")})`);
  const has = builtFlavour(path.join(from, build.folder));
  if (has !== flavour) die(`${flavour}: ${build.folder}/ holds ${has}; native/setup-torch2.sh pins another torch`);
  tarballs.push(packFlavour(flavour, core, version, out));
}
say("packing the main package (prepack checks package.json, prepare builds dist/)");
tarballs.unshift(packJson(clone, out));
for (const t of tarballs)
  say(`${t.name}: ${(t.size / 2 ** 20).toFixed(2)} MB (${(t.unpackedSize / 2 ** 20).toFixed(1)} MB unpacked)`);
console.log(JSON.stringify({ out, tarballs }));
