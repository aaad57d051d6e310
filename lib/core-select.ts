// Which compiled core to load, and from where: the one place that decides it.
//
// A core links libtorch by name (libtorch_cpu.so, libc10.so; Debian's by soname, libtorch_cpu.so.1.13) and only
// the libtorch minor release it was compiled against fits it (libtorch has no stable C++ ABI across minors). So no
// libtorch is shipped: the user's PyTorch is found (LIBTORCH, Torch_DIR, the `torch` that python3 imports, else
// Debian's libtorch-dev), and the core built for that torch's major.minor — its CUDA flavour when that torch has
// CUDA, else its CPU flavour — is loaded from the per-flavour package npm installed beside this one
// (lib/flavour.ts names them; package.json's dpsmNative.flavours lists them), where node-gyp-build finds it in the
// package's prebuilds/ folder (prebuildify's layout). A checkout's own build (build/Release) and DPSM_NATIVE_PATH
// come first. The found torch's libraries are loaded first (RTLD_GLOBAL, never unloaded), so the
// core's libtorch_cpu.so resolves to them and not to another libtorch on the linker's path.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { userCacheDir } from "./data/paths.ts";
import { flavourName, flavourPackage, packageFlavour, parseFlavour, torchMinor } from "./flavour.ts";
import { writeJsonAtomic } from "./io/atomic.ts";

/** The package root (one level above lib/ or dist/). */
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** A PyTorch installation the core can link against. */
export interface FoundTorch {
  /** its version, e.g. "2.15.0" (a local suffix such as "+cu132" dropped) */
  version: string;
  /** the CUDA release it was built with, e.g. "13.2"; null for a CPU-only torch */
  cuda: string | null;
  /** the folder holding libtorch_cpu.so, to load it from; null when the system's linker path has it (Debian) */
  libDir: string | null;
  /** where it was found, for messages: "LIBTORCH=…", "python3 (…)", … */
  source: string;
}

/** A compiled core on disk, and what it was built for. */
export interface CoreFile {
  file: string;
  /** "torch2.15-cu13", "torch1.13", or "local build" / "DPSM_NATIVE_PATH" */
  flavour: string;
}

const read = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
};
const cleanVersion = (v: string): string => v.replace(/\+.*$/, "");

// What a torch folder says about itself: the wheel's torch/version.py (__version__ = '2.15.0+cu132',
// cuda = '13.2'), the libtorch archive's build-version ("2.5.1+cu124"), or CMake's TorchConfigVersion.cmake.
function describe(
  root: string,
  cmakeDir: string | undefined,
  source: string,
  libDirs: string[],
): FoundTorch | { error: string } {
  const versionPy = read(path.join(root, "version.py"));
  const buildVersion = read(path.join(root, "build-version"))?.trim();
  const cmake = read(path.join(cmakeDir ?? path.join(root, "share", "cmake", "Torch"), "TorchConfigVersion.cmake"));
  const fromPy = versionPy && /^__version__\s*=\s*['"]([^'"]+)['"]/m.exec(versionPy)?.[1];
  const fromCmake = cmake && /set\(PACKAGE_VERSION "([^"]+)"\)/.exec(cmake)?.[1];
  const version = fromPy || buildVersion || fromCmake;
  if (!version) return { error: `${source}: no version.py, build-version or TorchConfigVersion.cmake found there` };
  let cuda: string | null = null;
  const cudaPy = versionPy && /^cuda(?::[^=]*)?\s*=\s*['"]([\d.]+)['"]/m.exec(versionPy)?.[1];
  const cudaTag = /\+cu(\d+?)(\d)$/.exec(buildVersion ?? fromPy ?? "");
  if (cudaPy) cuda = cudaPy;
  else if (cudaTag) cuda = `${cudaTag[1]}.${cudaTag[2]}`;
  const libDir = libDirs.find((d) => fs.existsSync(path.join(d, "libtorch_cpu.so"))) ?? null;
  return { version: cleanVersion(version), cuda, libDir, source };
}

// python3 on PATH, and what identifies it (a changed or replaced interpreter asks again).
function pythonOnPath(): { file: string; stamp: string } | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, "python3");
    try {
      fs.accessSync(file, fs.constants.X_OK);
      const real = fs.realpathSync(file);
      return { file, stamp: `${real}:${fs.statSync(real).mtimeMs}:${process.env.PYENV_VERSION ?? ""}` };
    } catch {
      // not here
    }
  }
  return undefined;
}

// The torch folder python3 imports, asked once per interpreter: finding the spec imports nothing of torch (fast),
// and the answer is kept in the user cache (torch-location.json), keyed by the interpreter and the variables that
// change what it imports, so later loads start no Python at all. It is asked again when the cached folder has gone
// or one of the interpreter's package folders has changed (a `pip install torch` since, say).
interface PythonAnswer {
  folder: string | null;
  /** the interpreter's package folders and their mtimes when asked */
  watch: Record<string, number>;
}

const mtime = (dir: string): number => {
  try {
    return fs.statSync(dir).mtimeMs;
  } catch {
    return -1;
  }
};

function pythonTorchFolder(): { folder: string | null; python: string } | undefined {
  const python = pythonOnPath();
  if (!python) return undefined;
  const key = [python.stamp, process.env.PYTHONPATH ?? "", process.env.VIRTUAL_ENV ?? ""].join("|");
  const cacheFile = path.join(userCacheDir(), "torch-location.json");
  let cache: Record<string, PythonAnswer>;
  try {
    cache = JSON.parse(read(cacheFile) ?? "{}") as Record<string, PythonAnswer>;
  } catch {
    cache = {};
  }
  const cached = cache[key];
  if (
    cached &&
    (cached.folder === null || fs.existsSync(cached.folder)) &&
    Object.entries(cached.watch ?? {}).every(([dir, t]) => mtime(dir) === t)
  ) {
    return { folder: cached.folder, python: python.file };
  }
  const script = [
    "import importlib.util as u, json, os, site, sys",
    "s = u.find_spec('torch')",
    "f = (os.path.dirname(s.origin) if s.origin else list(s.submodule_search_locations)[0]) if s else None",
    "w = [p for p in sys.path + [site.getusersitepackages()] if p and os.path.isdir(p)]",
    "print(json.dumps({'folder': f, 'watch': w}))",
  ].join("\n");
  const r = spawnSync(python.file, ["-c", script], { encoding: "utf8", timeout: 30_000 });
  let answer: PythonAnswer;
  try {
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "") as { folder: string | null; watch: string[] };
    answer = { folder: out.folder, watch: Object.fromEntries(out.watch.map((d) => [d, mtime(d)])) };
  } catch {
    // no python3 that runs, or one that printed something else: no torch from it (asked again next time)
    return { folder: null, python: python.file };
  }
  cache[key] = answer;
  try {
    writeJsonAtomic(cacheFile, cache);
  } catch {
    // a read-only cache only costs asking again next time
  }
  return { folder: answer.folder, python: python.file };
}

/**
 * The user's PyTorch: LIBTORCH (a libtorch folder, or a torch package folder), else Torch_DIR (CMake's
 * share/cmake/Torch), else the torch python3 imports, else Debian's libtorch-dev. `errors` says why a named one
 * could not be read.
 */
export function findTorch(errors: string[] = []): FoundTorch | undefined {
  const libtorch = process.env.LIBTORCH;
  if (libtorch) {
    const r = describe(libtorch, undefined, `LIBTORCH=${libtorch}`, [path.join(libtorch, "lib")]);
    if ("error" in r) errors.push(r.error);
    else return r;
  }
  const torchDir = process.env.Torch_DIR;
  if (torchDir) {
    const root = path.resolve(torchDir, "..", "..", "..");
    const r = describe(root, torchDir, `Torch_DIR=${torchDir}`, [
      path.join(root, "lib"),
      path.resolve(torchDir, "..", ".."),
    ]);
    if ("error" in r) errors.push(r.error);
    else return r;
  }
  const py = pythonTorchFolder();
  if (py?.folder) {
    const r = describe(py.folder, undefined, `python3 (${py.python}): ${py.folder}`, [path.join(py.folder, "lib")]);
    if ("error" in r) errors.push(r.error);
    // Debian's python3-torch keeps its libraries on the system path, not in the package folder
    else return r.libDir || !fs.existsSync(path.join(py.folder, "lib")) ? r : { ...r, libDir: null };
  }
  for (const triplet of ["x86_64-linux-gnu", "aarch64-linux-gnu"]) {
    const cmakeDir = `/usr/lib/${triplet}/cmake/Torch`;
    if (fs.existsSync(path.join(cmakeDir, "TorchConfigVersion.cmake"))) {
      const r = describe("/usr", cmakeDir, `Debian's libtorch (${cmakeDir})`, []);
      if (!("error" in r)) return { ...r, libDir: null };
    }
  }
  return undefined;
}

/** The flavours this release has (package.json's) and the cores installed for them. */
export function availableCores(): { released: string[]; installed: CoreFile[] } {
  const pkg = JSON.parse(read(path.join(packageRoot, "package.json")) ?? "{}") as {
    optionalDependencies?: Record<string, string>;
    dpsmNative?: { flavours?: string[] };
  };
  // a packed package.json lists them as optionalDependencies (dev/release.mjs), a checkout's in dpsmNative.flavours
  const released = [
    ...new Set([
      ...Object.keys(pkg.optionalDependencies ?? {}).flatMap((n) => packageFlavour(n) ?? []),
      ...(pkg.dpsmNative?.flavours ?? []),
    ]),
  ];
  const installed: CoreFile[] = [];
  const require = createRequire(path.join(packageRoot, "package.json"));
  const nodeGypBuild = require("node-gyp-build") as { path(dir: string): string };
  for (const flavour of released) {
    let dir: string;
    try {
      dir = path.dirname(require.resolve(`${flavourPackage(flavour)}/package.json`));
    } catch {
      continue; // not installed (another platform, or --omit=optional)
    }
    try {
      installed.push({ file: nodeGypBuild.path(dir), flavour });
    } catch {
      // a package without a core for this platform, libc or Node runtime (node-gyp-build's tags)
    }
  }
  return { released, installed };
}

/** The cores that come before any prebuilt one: DPSM_NATIVE_PATH, then a local build (a checkout's, or a source build's). */
export function ownBuilds(): CoreFile[] {
  const out: CoreFile[] = [];
  if (process.env.DPSM_NATIVE_PATH) {
    out.push({ file: path.resolve(process.env.DPSM_NATIVE_PATH), flavour: "DPSM_NATIVE_PATH" });
  }
  const local = path.join(packageRoot, "build", "Release", "dpsm_native.node");
  if (fs.existsSync(local)) out.push({ file: local, flavour: "local build" });
  return out;
}

/** The prebuilt cores to try, in order, for `torch`: its CUDA flavour, then its CPU one (all when no torch was found). */
export function prebuiltCandidates(torch: FoundTorch | undefined): CoreFile[] {
  const { installed } = availableCores();
  if (!torch) return installed;
  const wanted = new Set([flavourName(torch.version, torch.cuda?.split(".")[0]), flavourName(torch.version)]);
  return [...wanted].flatMap((w) => installed.filter((c) => c.flavour === w));
}

// Loads `lib` so that later libraries needing its soname get this file. Node's dlopen refuses a library that is
// not an addon ("did not self-register") after loading it; RTLD_NODELETE keeps it loaded all the same.
function preload(file: string): void {
  const { RTLD_NOW, RTLD_GLOBAL, RTLD_NODELETE } = os.constants.dlopen as Record<string, number>;
  try {
    process.dlopen({ exports: {} } as NodeJS.Module, file, RTLD_NOW! | RTLD_GLOBAL! | (RTLD_NODELETE ?? 0));
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (!message.includes("did not self-register")) throw e;
  }
}

/** The torch libraries a flavour's core links, in load order. */
function torchLibraries(flavour: string): string[] {
  const cpu = ["libc10.so", "libtorch_cpu.so"];
  return parseFlavour(flavour)?.cuda ? [...cpu, "libc10_cuda.so", "libtorch_cuda.so"] : cpu;
}

export interface LoadedCore<T> {
  addon: T;
  core: CoreFile;
  /** the PyTorch it was chosen for (undefined for DPSM_NATIVE_PATH and a local build, which link their own) */
  torch: FoundTorch | undefined;
  /** the cores tried before it, and why each did not load */
  skipped: { core: CoreFile; error: string }[];
}

/** Loads the first core that fits the user's torch; throws an Error that says what to do when none does. */
export function loadCore<T>(): LoadedCore<T> {
  const require = createRequire(import.meta.url);
  const skipped: { core: CoreFile; error: string }[] = [];
  const attempt = (core: CoreFile, torch: FoundTorch | undefined): T | undefined => {
    try {
      if (torch?.libDir) for (const lib of torchLibraries(core.flavour)) preload(path.join(torch.libDir, lib));
      return require(core.file) as T;
    } catch (e) {
      skipped.push({ core, error: e instanceof Error ? e.message : String(e) });
      return undefined;
    }
  };
  // The user's own builds link their libtorch already (RUNPATH, or the system's): no torch to look for.
  for (const core of ownBuilds()) {
    const addon = attempt(core, undefined);
    if (addon) return { addon, core, torch: undefined, skipped };
  }
  const torchErrors: string[] = [];
  const torch = findTorch(torchErrors);
  for (const core of prebuiltCandidates(torch)) {
    const addon = attempt(core, torch);
    if (addon) return { addon, core, torch, skipped };
  }
  throw new Error(explain(torch, torchErrors, skipped));
}

function explain(torch: FoundTorch | undefined, torchErrors: string[], skipped: { core: CoreFile; error: string }[]) {
  const { released, installed } = availableCores();
  const version = (JSON.parse(read(path.join(packageRoot, "package.json")) ?? "{}") as { version?: string }).version;
  const lines = ["dpsm-native: no compiled core loads here."];
  lines.push(
    torch
      ? `Your PyTorch: ${torch.version}${torch.cuda ? ` (CUDA ${torch.cuda})` : " (CPU)"}, from ${torch.source}.`
      : "No PyTorch found: LIBTORCH and Torch_DIR are unset, python3 imports no torch, and Debian's libtorch-dev is " +
          "not installed.",
  );
  lines.push(...torchErrors.map((e) => `  ${e}`));
  const all = [...new Set([...released, ...installed.map((c) => c.flavour)])];
  lines.push(
    all.length
      ? `This release has cores for ${all.join(", ")} (torch<major.minor>[-cu<CUDA major>]); installed here: ` +
          `${installed.map((c) => c.flavour).join(", ") || "none"}.`
      : "This copy has no prebuilt cores.",
  );
  const missing = torch
    ? released.filter(
        (f) => parseFlavour(f)?.torch === torchMinor(torch.version) && !installed.some((c) => c.flavour === f),
      )
    : [];
  if (missing.length) {
    lines.push(
      `The core for your PyTorch is in ${missing.map((f) => flavourPackage(f)).join(" / ")}, which npm did not install ` +
        `(optional dependencies omitted, or another platform): npm install ${missing
          .map((f) => `${flavourPackage(f)}@${version}`)
          .join(" ")}`,
    );
  } else if (torch) {
    lines.push(`This release has no core for PyTorch ${torchMinor(torch.version)}.`);
  }
  lines.push(...skipped.map((s) => `  passed over ${s.core.flavour} (${s.core.file}): ${s.error.split("\n")[0]}`));
  lines.push(
    "Use a PyTorch it has a core for (LIBTORCH=<libtorch folder>, Torch_DIR=<its share/cmake/Torch>, or the torch " +
      "python3 imports; Debian: `apt-get install libtorch-dev libopenblas0-pthread`), or build the core from source " +
      "against yours (CMake, a C++17 compiler, nlohmann-json; a few minutes): " +
      "Torch_DIR=\"$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')/Torch\" " +
      "npm rebuild dpsm-native --foreground-scripts (or LIBTORCH=/path/to/libtorch instead of Torch_DIR).",
  );
  return lines.join("\n");
}
