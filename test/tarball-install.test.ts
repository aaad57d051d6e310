// Install as users install: `npm pack`, then `npm install ./dpsm-native-<version>.tgz` into an empty project (no
// symlinks; dependencies from the registry), with the CPU core prebuilt inside the tarball, so no compiler runs;
// then the consumer imports and runs DPSMLoss, a few Trainer steps and the `dpsm-native` command. The prebuilt
// core is laid out as `npm run prebuild` (prebuildify --napi --strip --name dpsm-native.cpu) lays it out, but taken
// from the build setup made: prebuildify's `node-gyp rebuild` would rebuild from scratch and clean build/.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { tokenCacheDir } from "../lib/data/cache.ts";
import { dataDir } from "../lib/data/paths.ts";
import { packageRoot } from "../lib/native.ts";
import { run } from "./helpers/run.ts";
import { tmpDir } from "./helpers/tmp.ts";

const MB = 2 ** 20;

interface PackEntry {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: { path: string }[];
}

// `npm <args> --json`'s answer (stdout alone: npm writes its warnings to stderr).
function npmJson(t: import("ava").ExecutionContext, args: string[], cwd: string): PackEntry[] {
  const r = spawnSync("npm", [...args, "--json", "--loglevel=error"], { cwd, encoding: "utf8", maxBuffer: 1 << 26 });
  t.is(r.status, 0, `npm ${args.join(" ")}: ${r.stderr}`);
  return JSON.parse(r.stdout.slice(r.stdout.indexOf("["))) as PackEntry[];
}

// Tarballs from the checkout: the files npm would pack (its own list, after `prepare` built dist/) copied to a
// stage with the prebuilt core added, so the checkout's own prebuilds/ is never touched.
function packWithPrebuilt(t: import("ava").ExecutionContext, dir: string): PackEntry {
  const files = npmJson(t, ["pack", "--dry-run"], packageRoot)[0]!.files;
  const stage = path.join(dir, "stage");
  for (const f of files) {
    if (f.path.startsWith("prebuilds/")) continue;
    fs.mkdirSync(path.dirname(path.join(stage, f.path)), { recursive: true });
    fs.copyFileSync(path.join(packageRoot, f.path), path.join(stage, f.path));
  }
  const prebuilt = path.join(stage, "prebuilds", `${process.platform}-${process.arch}`, "dpsm-native.cpu.node");
  fs.mkdirSync(path.dirname(prebuilt), { recursive: true });
  fs.copyFileSync(path.join(packageRoot, "build", "Release", "dpsm_native.node"), prebuilt);
  const strip = run("strip", ["--strip-unneeded", prebuilt]);
  t.is(strip.code, 0, strip.output);
  return npmJson(t, ["pack", "--ignore-scripts", "--pack-destination", dir], stage)[0]!;
}

test("npm install of the packed tarball uses the prebuilt core, compiles nothing, and runs", (t) => {
  const dir = tmpDir(t, "dpsm-tarball-");
  const pack = packWithPrebuilt(t, dir);
  const tarball = path.join(dir, pack.filename);
  const paths = pack.files.map((f) => f.path);
  t.true(paths.includes(`prebuilds/${process.platform}-${process.arch}/dpsm-native.cpu.node`), "prebuilt core packed");
  t.true(paths.includes("dist/index.js") && paths.includes("dist/index.d.ts"), "built JS and types packed");
  t.false(
    paths.some((p) => p.startsWith("build/") || p.startsWith("test/") || p.startsWith("node_modules/")),
    "no build folder, tests or dependencies packed",
  );

  const consumer = path.join(dir, "consumer");
  fs.mkdirSync(consumer);
  fs.writeFileSync(
    path.join(consumer, "package.json"),
    JSON.stringify({ name: "consumer", type: "module", private: true }),
  );
  const t0 = performance.now();
  const install = run("npm", ["install", "--no-audit", "--no-fund", "--foreground-scripts", tarball], {
    cwd: consumer,
  });
  const seconds = (performance.now() - t0) / 1000;
  t.is(install.code, 0, install.output);
  t.regex(install.output, /\[dpsm-native install\] using the CPU core built against libtorch [\d.]+; no compiler ran/);
  const installed = path.join(consumer, "node_modules", "dpsm-native");
  t.false(fs.existsSync(path.join(installed, "build")), "nothing was built at install");
  t.false(fs.lstatSync(installed).isSymbolicLink(), "installed as files, not a link");
  t.log(
    `tarball ${(pack.size / MB).toFixed(2)} MB (${pack.entryCount} files, ${(pack.unpackedSize / MB).toFixed(1)} MB ` +
      `unpacked); npm install with its dependencies from the registry: ${seconds.toFixed(1)} s`,
  );

  // A user's program: the loss, a few steps of training on real data, and the command.
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
  runDir: "run",
  seed: 0,
  progress: false,
});
const fit = await trainer.fit();
console.log(JSON.stringify({ alpha: r.alpha, loss: r.loss, steps: fit.steps, final: fit.history.steps.at(-1).loss, nll: fit.bestNll, torch: buildInfo().torchVersion }));
`;
  fs.writeFileSync(path.join(consumer, "program.mjs"), program);
  // The checkout's token cache: the data are tokenised once per machine, not once per install.
  const env = { ...process.env, DPSM_DATA_DIR: dataDir(), DPSM_CACHE_DIR: tokenCacheDir() };
  const t1 = performance.now();
  const exec = run(process.execPath, ["program.mjs"], { cwd: consumer, env });
  t.log(
    `the consumer's program (loss, 3 training steps, evaluations on 8 sequences): ${((performance.now() - t1) / 1000).toFixed(1)} s`,
  );
  t.is(exec.code, 0, exec.output);
  const out = JSON.parse(exec.output.trim().split("\n").pop()!) as Record<string, number | string>;
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
});
