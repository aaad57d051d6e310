// Runs the ava suite and ends with the plain summary line CI reads: "N passed, N failed[, N skipped]".
//   node test/run.mjs                  the whole suite (against build/, Debian's libtorch 1.13), then the CUDA
//                                      flavour's build against 2.x (one result), then the libtorch 2.x subset
//                                      below against build-torch2/; the line adds them all
//   node test/run.mjs FILE...          those files only (against build/)
//   node test/run.mjs --torch2 [FILE...]  the libtorch 2.x subset (or those files) only
// The 2.x subset builds the addons against PyPI's torch wheel first (native/setup-torch2.sh: a download of
// ~540 MB once, then ~5 minutes of compiling on 2 cores). DPSM_TORCH2=0 leaves it out of the whole-suite run,
// DPSM_TORCH2_CUDA=0 only the CUDA flavour's build.
// A test that stalls (ava's inactivity timeout, scaled by the load at the start) fails by name
// (test/helpers/ava-tap-timeout.mjs), and the run still ends with its summary line.
import { spawn, spawnSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

// The checkout's data defaults (../shared/data when there is one and DPSM_DATA_DIR is unset; inherited by ava).
import "../dev/checkout-env.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const ava = path.join(root, "node_modules", "ava", "entrypoints", "cli.mjs");

// The test files run against libtorch 2.x: the core's numerics (the fused loss against its float64 reference,
// the loss API, AdamW and a step's op list: 2.x has the fused kernel), both model families and their generation,
// training (bf16 autocast included) and its checkpoints, data-parallel training over Gloo, the evaluator,
// safetensors I/O, and test/libtorch.test.ts (the run really loaded 2.x; the CUDA side of platform.h compiles
// against the 2.x headers), and a release's tarballs installed as users install them (test/tarball-install.test.ts,
// ~3.5 min; the first time also `pip install torch` with its CUDA libraries: 3.6 min, 5.3 GB). About 5.5 minutes on
// 2 cores (trainer 2.5, checkpoint 1.5) before the data-parallel tests (3.6 on a loaded machine), after the build's ~5.
const TORCH2_SUBSET = [
  "test/libtorch.test.ts",
  "test/adamw.test.ts",
  "test/step-ops.test.ts",
  "test/fused-loss-reference.test.ts",
  "test/dpsm-loss.test.ts",
  "test/gpt2.test.ts",
  "test/seq2seq-model.test.ts",
  "test/seq2seq-generate.test.ts",
  "test/evaluator.test.ts",
  "test/safetensors.test.ts",
  "test/checkpoint.test.ts",
  "test/trainer.test.ts",
  "test/data-parallel.test.ts",
  "test/tarball-install.test.ts",
];

// ava's inactivity timeout (no test finished for this long: the run stops, naming the tests then running), scaled
// by the machine's load when the run starts: a test that takes 8 minutes on a quiet 2-core machine takes 3–4 times
// as long at a load average of 6–9. package.json's "timeout" is the quiet machine's; an explicit --timeout wins.
function inactivityTimeout(args) {
  if (args.some((a) => a.startsWith("--timeout") || a === "-T")) return [];
  const load = os.loadavg()[0] / os.availableParallelism();
  return [`--timeout=${Math.round(10 * Math.min(6, Math.max(1, load)))}m`];
}

// test/helpers/ava-tap-timeout.mjs: ava 7's TAP reporter crashes when that timeout fires instead of naming the
// tests that stalled; loaded into ava's process, it writes each as a failing test.
const tapTimeoutFix = new URL("./helpers/ava-tap-timeout.mjs", import.meta.url).href;

/** Runs ava over `args` with `env`, echoing its TAP; resolves to its counts and exit code. */
function runAva(args, env) {
  return new Promise((resolve) => {
    const argv = ["--import", tapTimeoutFix, ava, "--tap", ...inactivityTimeout(args), ...args];
    const child = spawn(process.execPath, argv, {
      cwd: root,
      env,
      stdio: ["ignore", "pipe", "inherit"],
    });
    const counts = { pass: 0, fail: 0, skip: 0, todo: 0 };
    let buffered = "";
    const read = (line) => {
      const m = /^# (pass|fail|skip|todo) (\d+)$/.exec(line.trim());
      if (m) counts[m[1]] = Number(m[2]);
    };
    child.stdout.on("data", (chunk) => {
      process.stdout.write(chunk);
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      lines.forEach(read);
    });
    child.on("close", (code) => {
      read(buffered);
      // A crash of the runner itself counts as a failure even if no test reported one.
      const failed = counts.fail + (code !== 0 && counts.fail === 0 ? 1 : 0);
      resolve({ passed: counts.pass, failed, skipped: counts.skip + counts.todo, code: code ?? 1 });
    });
  });
}

/** Builds the libtorch 2.x addons (native/setup-torch2.sh), then runs `files` against them. */
async function runTorch2(files) {
  console.log("\n# libtorch 2.x: building against PyPI's torch wheel (native/setup-torch2.sh)");
  const setup = spawnSync("bash", [path.join(root, "native", "setup-torch2.sh")], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  });
  if (setup.status !== 0) {
    console.log("not ok - libtorch 2.x: native/setup-torch2.sh failed");
    return { passed: 0, failed: 1, skipped: 0, code: 1 };
  }
  const out = path.join(root, "build-torch2");
  const env = {
    ...process.env,
    DPSM_NATIVE_PATH: path.join(out, "Release", "dpsm_native.node"),
    DPSM_TESTING_NATIVE_PATH: path.join(out, "testing", "dpsm_native_testing.node"),
    DPSM_EXPECT_TORCH: "2.", // test/libtorch.test.ts checks the run loaded it
  };
  const r = await runAva(files.length ? files : TORCH2_SUBSET, env);
  console.log(`# libtorch 2.x: ${r.passed} passed, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped` : ""}`);
  return r;
}

/**
 * The CUDA flavour a CUDA user builds: the kernels by nvcc, the core against the wheel's libtorch_cuda
 * (native/setup-torch2.sh --cuda). It compiles and links here; loading it needs a GPU's libraries. One result line.
 */
function buildCudaFlavour() {
  console.log("\n# the CUDA flavour against libtorch 2.x (native/setup-torch2.sh --cuda)");
  const t0 = performance.now();
  const setup = spawnSync("bash", [path.join(root, "native", "setup-torch2.sh"), "--cuda"], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  });
  const minutes = ((performance.now() - t0) / 60000).toFixed(1);
  const addon = setup.stdout.trim().split("\n").at(-1) ?? "";
  // Linked against the wheel's CUDA side, not a CPU-only addon that happened to build.
  const needed = setup.status === 0 ? spawnSync("readelf", ["-d", addon], { encoding: "utf8" }).stdout : "";
  // Data-parallel CUDA runs over NCCL: the addon calls c10d's ProcessGroupNCCL (in libtorch_cuda.so).
  const imports =
    setup.status === 0 ? spawnSync("nm", ["-D", "--undefined-only", addon], { encoding: "utf8" }).stdout : "";
  const nccl = /_ZN4c10d16ProcessGroupNCCLC[12]E/.test(imports ?? "");
  if (setup.status === 0 && !nccl) console.log("# the CUDA flavour does not call ProcessGroupNCCL (no NCCL backend)");
  const ok = /libtorch_cuda\.so/.test(needed ?? "") && /libc10_cuda\.so/.test(needed ?? "") && nccl;
  console.log(
    `${ok ? "ok" : "not ok"} - the CUDA flavour compiles and links against libtorch 2.x, NCCL included (${minutes} min)`,
  );
  return { passed: ok ? 1 : 0, failed: ok ? 0 : 1, skipped: 0, code: ok ? 0 : 1 };
}

const args = process.argv.slice(2);
const results = [];
if (args[0] === "--torch2") {
  results.push(await runTorch2(args.slice(1)));
} else {
  results.push(await runAva(args, process.env));
  if (args.length === 0 && process.env.DPSM_TORCH2 !== "0") {
    // the CUDA flavour first: test/tarball-install.test.ts packs it into the release the 2.x subset installs
    if (process.env.DPSM_TORCH2_CUDA !== "0") results.push(buildCudaFlavour());
    results.push(await runTorch2([]));
  }
}
const sum = (k) => results.reduce((s, r) => s + r[k], 0);
const skipped = sum("skipped");
console.log(`\n${sum("passed")} passed, ${sum("failed")} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(results.find((r) => r.code !== 0)?.code ?? 0);
