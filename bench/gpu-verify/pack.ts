// npm run gpu:pack — makes .gpu-verify/, the folder the device tool carries to a CUDA host for `npm run gpu:verify`
// (bench/gpu-verify/README.md). The host has Python, torch, nvcc, cmake and ninja but no Node and no
// node_modules, and what travels must stay under 64 MiB, so the folder holds:
//   node.xz                 this node binary, stripped and xz-compressed (run.sh unpacks it with Python's lzma)
//   checks.mjs, bench-fused-loss.mjs, fused_loss_torch.py   the checks and the benchmark, bundled by esbuild
//   src/                    CMakeLists.txt and native/ (the addons are built there, against the host's torch)
//   include/                Node-API's and node-addon-api's headers (what cmake-js would point the build at)
//   nlohmann/               nlohmann-json's headers and CMake package (Debian's nlohmann-json3-dev)
//   assets/                 the GPT-2 fixture (test/fixtures/gpt2) and WikiText-2 slices tokenised here
//   run.sh, probe.sh, kernel-probe.cu   the command, and the kernel probe it compiles and runs beside the build
//
//   npm run gpu:pack -- [--out DIR] [--xz-level 0-9]
// The compressed node is cached in .cache/gpu-verify/ (xz -9 of ~86 MB takes a minute or two on 2 cores).
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import { build } from "esbuild";

import { prepareLanguageModelData } from "../../lib/index.ts";
import { writeFileAtomic } from "../../lib/io/atomic.ts";
import { packageRoot } from "../../lib/native.ts";

const { values: args } = parseArgs({
  options: {
    out: { type: "string", default: path.join(packageRoot, ".gpu-verify") },
    "xz-level": { type: "string", default: "9" },
    // the benchmark's GPU anchors (Liger-Kernel, cut-cross-entropy) as wheels for the host's Python
    "no-wheels": { type: "boolean", default: false },
    // node_modules (the package's run-time dependencies and tsx) and WikiText-2, so that in-tree.sh can run any
    // of the checkout's commands (bench:train-step, exp1) on the host from the tree the device tool sends
    runtime: { type: "boolean", default: false },
  },
});
const out = path.resolve(args.out);
const xzLevel = Number(args["xz-level"]);
if (!Number.isInteger(xzLevel) || xzLevel < 0 || xzLevel > 9) throw new Error(`--xz-level: expected 0-9`);
const here = path.join(packageRoot, "bench", "gpu-verify");
const tiktokenVersion = (
  JSON.parse(fs.readFileSync(path.join(packageRoot, "node_modules", "tiktoken", "package.json"), "utf8")) as {
    version: string;
  }
).version;
const t0 = Date.now();
const say = (m: string) => console.log(`[gpu:pack ${((Date.now() - t0) / 1000).toFixed(1)} s] ${m}`);

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
const copy = (from: string, to: string) => fs.cpSync(from, path.join(out, to), { recursive: true });

// 1. The checks and the benchmark, each one file. The addons are loaded by path (DPSM_NATIVE_PATH and
// DPSM_TESTING_NATIVE_PATH, set by run.sh); tiktoken and node-gyp-build are only ever required at run time
// through createRequire, so they stay out, and nothing in these two entry points needs them.
say("bundling the checks (esbuild)");
for (const [entry, file] of [
  [path.join(here, "checks.ts"), "checks.mjs"],
  [path.join(packageRoot, "bench", "fused-loss.ts"), "bench-fused-loss.mjs"],
] as const) {
  await build({
    entryPoints: [entry],
    outfile: path.join(out, file),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "warning",
    // Charts (vega, and resvg's native binary) never run here: the checks' trainers log no TensorBoard files.
    plugins: [
      {
        // The tokenizer's id names tiktoken's version, read from its package.json at import time; the bundle
        // carries no tiktoken (the checks tokenise nothing: pack.ts did), so the version is written in here.
        name: "tiktoken-version",
        setup(b) {
          b.onLoad({ filter: /lib[\\/]data[\\/]tokenizer\.ts$/ }, (a) => {
            const source = fs.readFileSync(a.path, "utf8");
            const call = "${tiktokenVersion()}";
            if (!source.includes(call)) throw new Error(`${a.path}: ${call} not found (pack.ts must follow it)`);
            return { contents: source.replace(call, tiktokenVersion), loader: "ts" };
          });
        },
      },
      {
        name: "no-charts",
        setup(b) {
          b.onResolve({ filter: /chart-thread\.ts$/ }, (a) => ({ path: a.path, namespace: "no-charts" }));
          b.onLoad({ filter: /.*/, namespace: "no-charts" }, () => ({
            contents:
              'export function reliabilityDiagramPngOffThread() { throw new Error("no charts in gpu-verify"); }',
          }));
        },
      },
    ],
    // CommonJS dependencies inside an ES module bundle still call require() for Node's own modules.
    banner: {
      js: 'import { createRequire as __dpsmRequire } from "node:module"; const require = __dpsmRequire(import.meta.url);',
    },
  });
}
copy(path.join(packageRoot, "bench", "fused_loss_torch.py"), "fused_loss_torch.py");
copy(path.join(here, "hf_gpt2_logits.py"), "hf_gpt2_logits.py");

// 2. What the build needs besides a torch.
say("copying the native sources and headers");
copy(path.join(packageRoot, "CMakeLists.txt"), "src/CMakeLists.txt");
copy(path.join(packageRoot, "native"), "src/native");
copy(path.join(packageRoot, "node_modules", "node-api-headers", "include"), "include/node-api");
const addonApi = path.join(packageRoot, "node_modules", "node-addon-api");
fs.mkdirSync(path.join(out, "include", "node-addon-api"), { recursive: true });
for (const f of fs.readdirSync(addonApi).filter((f) => f.endsWith(".h")))
  copy(path.join(addonApi, f), `include/node-addon-api/${f}`);
const jsonInclude = "/usr/include/nlohmann";
const jsonCmake = "/usr/share/cmake/nlohmann_json";
if (!fs.existsSync(path.join(jsonInclude, "json.hpp")) || !fs.existsSync(jsonCmake)) {
  throw new Error("nlohmann-json's headers and CMake package are needed (npm run setup installs nlohmann-json3-dev)");
}
// Debian's nlohmann_json config finds the headers three folders above itself: share/cmake/nlohmann_json → include.
copy(jsonInclude, "nlohmann/include/nlohmann");
copy(jsonCmake, "nlohmann/share/cmake/nlohmann_json");

// 3. Real inputs: the GPT-2 fixture, and WikiText-2 tokenised by the project's own pipeline (GPT-2 BPE, packed
// in rows of 128), cut to what the checks use: 2,048 training rows (262,144 tokens) and 256 validation rows.
say("assets: GPT-2 fixture, WikiText-2 slices");
const fixture = path.join(packageRoot, "test", "fixtures", "gpt2");
for (const f of ["config.json", "model.safetensors", "expected.json"]) copy(path.join(fixture, f), `assets/gpt2/${f}`);
fs.mkdirSync(path.join(out, "assets", "wikitext-2"), { recursive: true });
for (const [split, rows] of [
  ["train", 2048],
  ["valid", 256],
] as const) {
  const packed = await prepareLanguageModelData({ source: "wikitext-2", split, contextLength: 128 });
  const n = Math.min(rows, packed.sequences);
  const dir = path.join(out, "assets", "wikitext-2");
  const bytes = (a: Int32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  writeFileAtomic(path.join(dir, `${split}.tokens.i32`), bytes(packed.tokens.subarray(0, n * packed.contextLength)));
  writeFileAtomic(path.join(dir, `${split}.lengths.i32`), bytes(packed.lengths.subarray(0, n)));
  writeFileAtomic(
    path.join(dir, `${split}.json`),
    JSON.stringify({ contextLength: packed.contextLength, sequences: n, source: packed.source, of: packed.sequences }),
  );
}

// 4. Node itself: the running binary (a static build needs only glibc), stripped and compressed once per binary.
const exe = fs.realpathSync(process.execPath);
const stat = fs.statSync(exe);
const id = crypto
  .createHash("sha256")
  .update(`${exe} ${stat.size} ${stat.mtimeMs} ${process.version}`)
  .digest("hex")
  .slice(0, 12);
const cacheDir = path.join(packageRoot, ".cache", "gpu-verify");
const cached = path.join(cacheDir, `node-${process.version}-${id}-xz${xzLevel}.xz`);
if (!fs.existsSync(cached)) {
  say(`node ${process.version}: strip + xz -${xzLevel} (once; cached in ${path.relative(packageRoot, cacheDir)})`);
  fs.mkdirSync(cacheDir, { recursive: true });
  const stripped = `${cached}.stripped`;
  execFileSync("strip", ["-o", stripped, exe]);
  execFileSync("sh", ["-c", `xz -${xzLevel} -T0 -c "$0" > "$1.tmp" && mv "$1.tmp" "$1"`, stripped, cached]);
  fs.rmSync(stripped);
}
fs.copyFileSync(cached, path.join(out, "node.xz"));

// 5. The benchmark's anchors, pinned, for a host that cannot reach PyPI (run.sh installs them beside its torch).
// QuACK (quack-kernels) is not among them: its CUTLASS DSL wheel alone is 92 MB, over what one call may carry.
const WHEELS = ["liger-kernel==0.8.5", "cut-cross-entropy==25.1.1"];
if (!args["no-wheels"]) {
  const wheelCache = path.join(cacheDir, "wheels");
  fs.mkdirSync(wheelCache, { recursive: true });
  for (const spec of WHEELS) {
    const name = spec.split("==")[0]!.replace(/-/g, "_");
    if (fs.readdirSync(wheelCache).some((f) => f.startsWith(`${name}-${spec.split("==")[1]}-`))) continue;
    say(`wheel ${spec} (pip download, once)`);
    try {
      execFileSync(
        "python3",
        ["-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", wheelCache, spec],
        {
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
    } catch (e) {
      say(
        `  ${spec}: not downloaded (${String((e as { stderr?: Buffer }).stderr ?? e)
          .trim()
          .split("\n")
          .pop()}); the bench's column stays empty`,
      );
    }
  }
  for (const f of fs.readdirSync(wheelCache).filter((f) => f.endsWith(".whl")))
    copy(path.join(wheelCache, f), `wheels/${f}`);
}

// 6. With --runtime: what the checkout's own commands need at run time, for in-tree.sh.
if (args.runtime) {
  say("runtime: node_modules (run-time dependencies + tsx) and WikiText-2, xz");
  const list = (argv: string[]) =>
    execFileSync("npm", ["ls", "--all", "--parseable", ...argv], { cwd: packageRoot, encoding: "utf8" })
      .split("\n")
      .filter((l) => l.includes(`${path.sep}node_modules${path.sep}`))
      .map((l) => path.relative(packageRoot, l));
  const modules = new Set([
    ...list(["--omit=dev"]),
    ...list(["tsx"]),
    "node_modules/esbuild",
    "node_modules/get-tsconfig",
    "node_modules/resolve-pkg-maps",
  ]);
  for (const d of fs.readdirSync(path.join(packageRoot, "node_modules", "@esbuild")))
    modules.add(`node_modules/@esbuild/${d}`);
  const dataDir = process.env.DPSM_DATA_DIR;
  if (!dataDir || !fs.existsSync(path.join(dataDir, "wikitext-2")))
    throw new Error("--runtime: DPSM_DATA_DIR/wikitext-2 not found");
  const listFile = path.join(out, "runtime.list");
  writeFileAtomic(listFile, [...modules].filter((m) => fs.existsSync(path.join(packageRoot, m))).join("\n"));
  // Left out, to keep the call under its 64 MiB beside the tree: what nothing runs (TypeScript's declarations,
  // source maps, READMEs) and tiktoken's rank files and lite build (the GPT-2 encoding it uses is inside its wasm).
  // xz -9: its 64 MiB dictionary spans WikiText-2's 11 MB train split (a minute more, once per pack).
  const excludes = [
    "*.d.ts",
    "*.d.cts",
    "*.d.mts",
    "*.map",
    "*.md",
    "node_modules/tiktoken/encoders",
    "node_modules/tiktoken/lite",
  ];
  execFileSync("sh", [
    "-c",
    `tar -C "$1" ${excludes.map((e) => `--exclude='${e}'`).join(" ")} -cf - -T "$2" -C "$3" wikitext-2 | xz -9 -T0 > "$4"`,
    "sh",
    packageRoot,
    listFile,
    dataDir,
    path.join(out, "runtime.tar.xz"),
  ]);
  fs.rmSync(listFile);
}

copy(path.join(here, "run.sh"), "run.sh");
fs.chmodSync(path.join(out, "run.sh"), 0o755);
copy(path.join(here, "in-tree.sh"), "in-tree.sh");
// The kernel probe (the exp2 and sanitizer stages), compiled on the host beside the addons' build.
copy(path.join(here, "probe.sh"), "probe.sh");
copy(path.join(here, "kernel-probe.cu"), "kernel-probe.cu");
writeFileAtomic(
  path.join(out, "PACKED.json"),
  JSON.stringify({ date: new Date().toISOString(), node: process.version, nodeBinary: exe, xzLevel }, null, 1),
);

const total = (dir: string): number =>
  fs.readdirSync(dir, { withFileTypes: true }).reduce((s, e) => {
    const p = path.join(dir, e.name);
    return s + (e.isDirectory() ? total(p) : fs.statSync(p).size);
  }, 0);
say(`${path.relative(process.cwd(), out) || out}: ${(total(out) / 2 ** 20).toFixed(1)} MiB`);
