// Install as users install: a release made by dev/release.mjs from a clean clone of HEAD (the main tarball, packed by
// `npm pack` with its prepack, and one tarball per prebuilt core), installed with `npm install <tarballs>` into an
// empty project (dependencies from the registry) with every compiler on PATH shadowed by a failing shim, so a
// source build cannot hide a core that does not load. The release reuses the cores the suite built (--reuse), so
// nothing is compiled twice; note that it packs HEAD, not uncommitted changes.
//   against Debian's libtorch 1.13 (the whole-suite run):
//     (a) no PyTorch but Debian's libtorch-dev (python3 shadowed too) → the torch1.13 core from its package;
//   in the libtorch 2.x run (test/run.mjs --torch2; it has built build-torch2/ and fetched the wheel):
//     (b) PyPI's torch as `pip install torch` gives it (every CUDA library, no GPU), found through python3 (whose
//         answer is cached in the user cache) → the torch2.x-cu13 core loads, CUDA compiled in with 0 devices, and
//         trains on the CPU; then the same torch with only its CUDA runtime beside it (LIBTORCH) → the CUDA core is
//         passed over, saying why, and the torch2.x CPU core trains;
//     (c) the same torch named by LIBTORCH, with a release that has no core for it → the install says so and
//         finishes, and the package's first use throws the message: which PyTorch, which cores, what to do.
// Each case then runs the loss, a few Trainer steps on real data and the `dpsm-native` command where a core loads.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

import test, { type ExecutionContext } from "ava";

import { flavourName, flavourPackage, PREBUILD_NAME } from "../lib/flavour.ts";
import { tokenCacheDir } from "../lib/data/cache.ts";
import { dataDir } from "../lib/data/paths.ts";
import { packageRoot } from "../lib/native.ts";
import { run } from "./helpers/run.ts";
import { tmpDir } from "./helpers/tmp.ts";

const MB = 2 ** 20;
const torch2 = (process.env.DPSM_EXPECT_TORCH ?? "").startsWith("2.");
const wheelTorch = path.join(packageRoot, ".cache", "torch2", "torch");

interface Tarball {
  file: string;
  name: string;
  size: number;
  unpackedSize: number;
}

/** dev/release.mjs with the suite's own builds: the flavours' tarballs and the main one (first). */
function release(t: ExecutionContext, dir: string, flavours: string[]): Tarball[] {
  const out = path.join(dir, "release");
  const script = path.join(packageRoot, "dev", "release.mjs");
  const args = [script, "--out", out, "--reuse", packageRoot, "--flavours", flavours.join(",")];
  const r = spawnSync(process.execPath, args, { encoding: "utf8", maxBuffer: 1 << 26 });
  t.is(r.status, 0, `${r.stdout}${r.stderr}`);
  // its summary is stdout's last line (npm's lifecycle banners come before it)
  const tarballs = (JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { tarballs: Tarball[] }).tarballs;
  for (const tb of tarballs) {
    t.log(`${tb.name}: ${(tb.size / MB).toFixed(2)} MB packed, ${(tb.unpackedSize / MB).toFixed(1)} MB unpacked`);
  }
  return tarballs;
}

/** A folder of failing stand-ins for the compilers (and `extra`), to put first on PATH. */
function shadowed(dir: string, extra: string[] = []): string {
  const bin = path.join(dir, "shadowed-bin");
  fs.mkdirSync(bin);
  for (const tool of ["cc", "c++", "gcc", "g++", "clang", "clang++", "cmake", "make", "ninja", "nvcc", ...extra]) {
    fs.writeFileSync(path.join(bin, tool), `#!/bin/sh\necho "${tool}: shadowed by the install test" >&2\nexit 127\n`);
    fs.chmodSync(path.join(bin, tool), 0o755);
  }
  return bin;
}

/** The consumer's environment: no hint of the checkout's builds or libtorch, a fresh user cache. */
function consumerEnv(dir: string, bin: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ""}` };
  for (const k of ["DPSM_NATIVE_PATH", "DPSM_TESTING_NATIVE_PATH", "LIBTORCH", "Torch_DIR", "PYTHONPATH"])
    delete env[k];
  env.XDG_CACHE_HOME = path.join(dir, "user-cache");
  // the checkout's data and token cache: the data are tokenised once per machine, not once per install
  env.DPSM_DATA_DIR = dataDir();
  env.DPSM_CACHE_DIR = tokenCacheDir();
  return { ...env, ...extra };
}

function install(t: ExecutionContext, dir: string, tarballs: Tarball[], env: NodeJS.ProcessEnv) {
  const consumer = path.join(dir, "consumer");
  fs.mkdirSync(consumer);
  fs.writeFileSync(path.join(consumer, "package.json"), JSON.stringify({ name: "consumer", type: "module" }));
  const t0 = performance.now();
  const r = run("npm", ["install", "--no-audit", "--no-fund", "--foreground-scripts", ...tarballs.map((x) => x.file)], {
    cwd: consumer,
    env,
  });
  t.log(
    `npm install of ${tarballs.length} tarballs, dependencies from the registry: ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  t.is(r.code, 0, r.output);
  t.false(fs.existsSync(path.join(consumer, "node_modules", "dpsm-native", "build")), "nothing was built at install");
  return { consumer, output: r.output };
}

// A user's program: the loss, a few steps of training on real data, and which libtorch it ran on.
const program = `import { DPSMLoss, Trainer, buildInfo } from "dpsm-native";
const loss = new DPSMLoss({ kind: "dpsm", schedule: "linear", warmupSteps: 100 });
const r = loss.forward(new Float32Array([0.5, -1, 2, 0, 1, -0.5]), new Int32Array([2, 0]), { vocabSize: 3, step: 50 });
const trainer = new Trainer({
  model: { size: "tiny" },
  loss: { kind: "dpsm", schedule: "linear", warmupSteps: 2 },
  data: { source: "wikitext-2", contextLength: 64 },
  batchSize: 2,
  maxSteps: 3,
  evalEvery: 2,
  evalMaxSequences: 8,
  device: "cpu",
  runDir: process.argv[2],
  seed: 0,
  progress: false,
});
const fit = await trainer.fit();
const info = buildInfo();
console.log(JSON.stringify({ alpha: r.alpha, loss: r.loss, steps: fit.steps, final: fit.history.steps.at(-1).loss, nll: fit.bestNll, torch: info.torchVersion, library: info.torchLibrary, cuda: info.cuda, devices: info.cudaDeviceCount }));
`;

function runProgram(
  t: ExecutionContext,
  consumer: string,
  env: NodeJS.ProcessEnv,
  runDir = "run",
): Record<string, number | string | boolean> {
  fs.writeFileSync(path.join(consumer, "program.mjs"), program);
  const t0 = performance.now();
  const exec = run(process.execPath, ["program.mjs", runDir], { cwd: consumer, env });
  t.log(`the consumer's program (loss, 3 training steps): ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  t.is(exec.code, 0, exec.output);
  // the program's one line of JSON (stderr may add a warning after it)
  const line = exec.output
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .at(-1)!;
  const out = JSON.parse(line) as Record<string, number | string | boolean>;
  t.is(out.alpha, 0.5);
  t.true(Number.isFinite(out.loss) && (out.loss as number) > 0, `loss ${out.loss}`);
  t.is(out.steps, 3);
  t.true(Number.isFinite(out.final), `last step's loss ${out.final}`);
  t.true(Number.isFinite(out.nll) && (out.nll as number) > 0, `validation NLL ${out.nll}`);
  const cli = run(path.join(consumer, "node_modules", ".bin", "dpsm-native"), ["exp1", "--help"], {
    cwd: consumer,
    env,
  });
  t.is(cli.code, 0, cli.output);
  t.regex(cli.output, /usage: dpsm-native exp1/);
  return { ...out, output: exec.output };
}

// where prebuildify put the core in its package, and node-gyp-build finds it
const coreFile = (consumer: string, flavour: string) =>
  path.join(consumer, "node_modules", flavourPackage(flavour), "prebuilds", "linux-x64", `${PREBUILD_NAME}.glibc.node`);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

if (!torch2) {
  test.serial(
    "(a) with Debian's libtorch, the install takes the torch1.13 core's package and compiles nothing",
    (t) => {
      const dir = tmpDir(t, "dpsm-tarball-");
      const tarballs = release(t, dir, ["torch1.13"]);
      const main = tarballs[0]!;
      t.is(main.name, "dpsm-native");
      const listing = run("tar", ["-tzf", main.file]).output.split("\n");
      t.true(listing.includes("package/dist/index.js") && listing.includes("package/dist/index.d.ts"), "JS and types");
      t.false(
        listing.some((p) => /^package\/(build|test|node_modules|prebuilds)\/|\.node$|package\.json\.prepack/.test(p)),
        "no core, build folder, tests or dependencies in the main tarball",
      );
      const manifest = JSON.parse(run("tar", ["-xzOf", main.file, "package/package.json"]).output) as {
        optionalDependencies?: Record<string, string>;
      };
      t.deepEqual(manifest.optionalDependencies, { "@dpsm-native/linux-x64-torch1.13": "0.1.0" }, "prepack listed it");
      const flavourListing = run("tar", ["-tzf", tarballs[1]!.file]).output.trim().split("\n").sort();
      t.deepEqual(
        flavourListing,
        ["package/package.json", "package/prebuilds/linux-x64/dpsm-native.glibc.node"],
        "the flavour package holds prebuildify's layout and nothing else",
      );

      const env = consumerEnv(dir, shadowed(dir, ["python3"]));
      const { consumer, output } = install(t, dir, tarballs, env);
      t.regex(
        output,
        new RegExp(
          `using the CPU core built against libtorch 1\\.13\\.\\d \\(torch1\\.13: ${escape(coreFile(consumer, "torch1.13"))}; ` +
            "PyTorch from Debian's libtorch .*\\); no compiler ran",
        ),
      );
      const out = runProgram(t, consumer, env);
      t.regex(String(out.torch), /^1\.13\./);
    },
  );
}

if (torch2) {
  const version = /^__version__\s*=\s*'([^'+]+)/m.exec(
    fs.readFileSync(path.join(wheelTorch, "version.py"), "utf8"),
  )![1]!;
  const cpuFlavour = flavourName(version);
  const cudaFlavour = flavourName(version, "13");
  const setupTorch2 = (t: ExecutionContext, flag: string) => {
    const r = spawnSync("bash", [path.join(packageRoot, "native", "setup-torch2.sh"), flag], { encoding: "utf8" });
    t.is(r.status, 0, r.stderr);
    return r.stdout.trim().split("\n").at(-1)!;
  };

  // DPSM_TORCH2_CUDA=0 leaves the CUDA flavour out of the run (test/run.mjs), and so this case
  (process.env.DPSM_TORCH2_CUDA === "0" ? test.serial.skip : test.serial)(
    "(b) PyPI's torch as pip installs it, no GPU: the CUDA core loads and trains on the CPU; without its CUDA libraries the CPU core does",
    (t) => {
      const dir = tmpDir(t, "dpsm-tarball-");
      // built before the 2.x subset in a whole-suite run (an incremental no-op then); PyPI's torch with every
      // dependency (~4 GB, once per machine) is what `pip install torch` gives a CUDA host
      setupTorch2(t, "--cuda");
      const runtime = setupTorch2(t, "--runtime");
      const tarballs = release(t, dir, [cpuFlavour, cudaFlavour]);
      const env = consumerEnv(dir, shadowed(dir), { PYTHONPATH: runtime });
      const { consumer, output } = install(t, dir, tarballs, env);
      const torchDir = path.join(runtime, "torch");
      t.regex(
        output,
        new RegExp(
          `using the CUDA core built against libtorch ${escape(version)} \\(${escape(cudaFlavour)}: ` +
            `${escape(coreFile(consumer, cudaFlavour))}; PyTorch from python3 \\(.*\\): ${escape(torchDir)}\\); no compiler ran`,
        ),
      );
      const cache = JSON.parse(
        fs.readFileSync(path.join(env.XDG_CACHE_HOME!, "dpsm-native", "torch-location.json"), "utf8"),
      );
      const answers = Object.values(cache as Record<string, { folder: string | null }>).map((a) => a.folder);
      t.true(answers.includes(torchDir), "python3's answer cached");
      const out = runProgram(t, consumer, env);
      t.is(out.torch, version);
      t.is(out.cuda, true, "CUDA compiled in");
      t.is(out.devices, 0, "and no device");
      t.is(out.library, fs.realpathSync(path.join(torchDir, "lib", "libtorch_cpu.so")), "pip's libtorch ran");

      // The same torch with only its CUDA runtime beside it (native/setup-torch2.sh's download), named by LIBTORCH:
      // libtorch_cuda's own libraries do not load, so the CUDA core is passed over, saying why.
      const bare = { ...env, LIBTORCH: wheelTorch };
      const rebuild = run("npm", ["rebuild", "dpsm-native", "--foreground-scripts"], { cwd: consumer, env: bare });
      t.is(rebuild.code, 0, rebuild.output);
      t.regex(
        rebuild.output,
        new RegExp(`passed over ${escape(cudaFlavour)} \\(${escape(coreFile(consumer, cudaFlavour))}\\): lib\\S+\\.so`),
      );
      t.regex(
        rebuild.output,
        new RegExp(
          `using the CPU core built against libtorch ${escape(version)} \\(${escape(cpuFlavour)}: ` +
            `${escape(coreFile(consumer, cpuFlavour))}; PyTorch from LIBTORCH=${escape(wheelTorch)}\\); no compiler ran`,
        ),
      );
      const cpu = runProgram(t, consumer, bare, "run-cpu"); // a new run, not a resume of the first
      t.regex(String(cpu.output), new RegExp(`DPSM_CUDA_CORE_SKIPPED.*the ${escape(cudaFlavour)} core did not load`));
      t.is(cpu.cuda, false);
      t.is(cpu.library, fs.realpathSync(path.join(wheelTorch, "lib", "libtorch_cpu.so")), "the wheel's libtorch ran");
    },
  );

  test.serial(
    "(c) with a torch this release has no core for, the install finishes and the first use says what to do",
    (t) => {
      const dir = tmpDir(t, "dpsm-tarball-");
      const tarballs = release(t, dir, ["torch1.13"]);
      const env = consumerEnv(dir, shadowed(dir), { LIBTORCH: wheelTorch });
      const { consumer, output } = install(t, dir, tarballs, env);
      t.regex(output, /no source build either: cmake and c\+\+ do not run here/);
      fs.writeFileSync(
        path.join(consumer, "program.mjs"),
        'import { buildInfo } from "dpsm-native";\ntry { buildInfo(); } catch (e) { console.log(e.message); process.exit(3); }\n',
      );
      const r = run(process.execPath, ["program.mjs"], { cwd: consumer, env });
      t.is(r.code, 3, r.output);
      t.true(r.output.includes(`Your PyTorch: ${version} (CUDA `), r.output);
      t.true(r.output.includes(`from LIBTORCH=${wheelTorch}`), r.output);
      t.true(r.output.includes("This release has cores for torch1.13 "), r.output);
      t.true(r.output.includes(`This release has no core for PyTorch ${cpuFlavour.slice(5)}.`), r.output);
      t.regex(r.output, /build the core from source against yours .*npm rebuild dpsm-native/);
    },
  );
}
