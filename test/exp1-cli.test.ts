// `dpsm-native exp1` as a user runs it: bad flags and config files are named before any work, and Ctrl-C then
// the same command again finishes the experiment without redoing finished runs.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { packageRoot } from "../lib/native.ts";
import { run } from "./helpers/run.ts";
import { tmpDir } from "./helpers/tmp.ts";

const BIN = path.join(packageRoot, "bin", "dpsm-native.mjs");
const cli = (args: string[]) => run(process.execPath, [BIN, "exp1", ...args], { cwd: packageRoot });
const SMALL = [
  "--no-efficiency-audit",
  "--context-length",
  "33",
  "--max-steps",
  "6",
  "--eval-every",
  "3",
  "--eval-max-sequences",
  "2",
  "--test-max-sequences",
  "2",
  "--ood-max-sequences",
  "2",
  "--ood",
  "ptb",
  "--variations",
  "ce,dpsm-linear",
  "--no-label-noise",
];

test("package.json's bin is this command", (t) => {
  const pkg: { bin: Record<string, string> } = JSON.parse(
    fs.readFileSync(path.join(packageRoot, "package.json"), "utf8"),
  );
  t.is(path.resolve(packageRoot, pkg.bin["dpsm-native"]!), BIN);
  const top = run(process.execPath, [BIN, "--help"]);
  t.is(top.code, 0, top.output);
  t.regex(top.output, /^ {2}exp1 +Experiment 1/m);
  const unknown = run(process.execPath, [BIN, "exp9"]);
  t.is(unknown.code, 2);
  t.regex(unknown.output, /unknown command "exp9"; expected one of exp1/);
});

test("bad flags and config files are named, before any work", (t) => {
  const out = tmpDir(t, "dpsm-cli-");
  const bad = [
    [["--max-steps", "abc"], /--max-steps: expected a number, got "abc"/],
    [["--max-steps", "0"], /exp1 config\.maxSteps: Too small/],
    [["--context-length", "2000000"], /exp1 config\.contextLength: Too big: expected number to be <=1024/],
    [["--max-steps"], /--max-steps: expected a value/],
    [["--models", "tiny,huge"], /exp1 config\.models\.1/],
    [["--colour", "red"], /--colour: unknown flag/],
    [["--eval-sequences", "2"], /--eval-sequences: unknown flag \(did you mean --eval-max-sequences\?\)/],
    [["--report-only=yes"], /--report-only: takes no value/],
    [["--no-label-noise", "--label-noise", "x"], /--label-noise: unknown flag/],
    [["tiny"], /unexpected argument tiny/],
    [["--profile", "fast"], /--profile: expected one of quick, cpu-study, wt2-small, full, got "fast"/],
    [["--config", path.join(out, "missing.json")], /--config: .*missing\.json not found/],
  ] as const;
  for (const [args, message] of bad) {
    const r = cli([...args, "--out", out]);
    t.is(r.code, 2, `${args.join(" ")}: ${r.output}`);
    t.regex(r.output, message);
  }
  fs.writeFileSync(path.join(out, "bad.json"), JSON.stringify({ profile: "quick", seeds: [0, -1] }));
  const r = cli(["--config", path.join(out, "bad.json"), "--out", out]);
  t.is(r.code, 2);
  t.regex(r.output, /exp1 config\.seeds\.1/);
  fs.writeFileSync(path.join(out, "other.json"), JSON.stringify({ experiment: "exp2", maxSteps: 3 }));
  const other = cli(["--config", path.join(out, "other.json"), "--out", out]);
  t.regex(other.output, /--config: .*other\.json holds settings of "exp2", not of "exp1"/);
  t.false(fs.existsSync(path.join(out, "runs")), "work started despite a bad config");
  const help = cli(["--help"]);
  t.is(help.code, 0);
  t.regex(help.output, /usage: dpsm-native exp1/);
  t.regex(help.output, /--max-steps N +optimiser steps; \[quick: 150\]/);
  t.regex(cli(["--profile", "full", "--help"]).output, /--max-steps N +optimiser steps; \[full: 20000\]/);
});

test("an output folder, settings file or environment that cannot work is refused in one line, exit 2, before any work", (t) => {
  const dir = tmpDir(t, "dpsm-cli-");
  const out = path.join(dir, "out");
  // JSON.parse keeps "__proto__" as a key; merged as settings it would be dropped without a word.
  fs.writeFileSync(path.join(dir, "proto.json"), '{"seeds": [1], "__proto__": {"maxSteps": 0}}');
  const bad = [
    [["--out", "/proc/self/x"], {}, /^exp1: --out: \/proc\/self\/x lies in \/proc, a kernel file system/],
    [["--out", ""], {}, /^exp1: --out: expected a folder path, got ""/],
    // Refused by the spec's check with the other settings, before the run's config.json is pinned in --out.
    [
      ["--data-dir", "/proc/self/x", "--out", out],
      {},
      /^exp1: exp1 config\.dataDir: \/proc\/self\/x lies in \/proc, a kernel/,
    ],
    [
      ["--data-dir", path.join(dir, "proto.json"), "--out", out],
      {},
      /^exp1: exp1 config\.dataDir: .*proto\.json is a file, expected a folder$/m,
    ],
    [
      ["--config", path.join(dir, "proto.json"), "--out", out],
      {},
      /^exp1: --config: .*proto\.json: __proto__ is not a setting/,
    ],
    [
      ["--out", out],
      { WORLD_SIZE: "2", RANK: "abc" },
      /^exp1: environment variable RANK: expected an integer from 0 to 1, got "abc"$/m,
    ],
    [
      ["--out", out],
      { WORLD_SIZE: "1", RANK: "0", MASTER_PORT: "99999" },
      /^exp1: environment variable MASTER_PORT: expected an integer from 1 to 65535/,
    ],
    [
      ["--out", out],
      { WORLD_SIZE: "1", RANK: "0", DPSM_DIST_TIMEOUT: "0" },
      /^exp1: environment variable DPSM_DIST_TIMEOUT: expected an integer from 1/,
    ],
  ] as const;
  for (const [args, env, message] of bad) {
    const r = run(process.execPath, [BIN, "exp1", ...args], {
      cwd: dir,
      env: { ...process.env, ...env },
      timeout: 120_000,
    });
    t.is(r.code, 2, `${args.join(" ")} ${JSON.stringify(env)}: ${r.output}`);
    t.regex(r.output, message);
    t.notRegex(r.output, /\n\s+at /, "a stack trace");
  }
  t.deepEqual(fs.readdirSync(dir), ["proto.json"], "work started despite a bad setting");
});

test("Ctrl-C, then the same command again: finished runs skipped, the interrupted one resumed, a report", async (t) => {
  const out = tmpDir(t, "dpsm-cli-");
  const child = spawn(process.execPath, [BIN, "exp1", ...SMALL, "--out", out], {
    cwd: packageRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  const code = await new Promise<number | null>((resolve) => {
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      // The second run has started and taken a step: interrupt it.
      const secondStepped = /\[2\/2\] tiny\/clean\/dpsm-linear\/seed0: training[\s\S]*step [1-9]/.test(log);
      if (secondStepped && !child.killed) child.kill("SIGINT");
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (c) => resolve(c));
  });
  t.is(code, 130, log.slice(-2000));
  t.regex(log, /stopping at the next step boundary/);
  const runs = path.join(out, "runs", "tiny", "clean");
  t.true(fs.existsSync(path.join(runs, "ce", "seed0", "result.json")));
  t.false(fs.existsSync(path.join(runs, "dpsm-linear", "seed0", "result.json")));

  const again = cli([...SMALL, "--out", out]);
  t.is(again.code, 0, again.output.slice(-2000));
  t.regex(again.output, /tiny\/clean\/ce\/seed0: done before, skipped/);
  t.regex(again.output, /tiny\/clean\/dpsm-linear\/seed0: resuming/);
  t.regex(again.output, /exp1: 2 runs reported in .*report\.md/);
  t.true(fs.readFileSync(path.join(out, "report.md"), "utf8").includes("### Verdicts"));

  // The folder's config.json is a settings file: --report-only with it rewrites the report, trains nothing.
  fs.rmSync(path.join(out, "report.md"));
  const report = cli(["--config", path.join(out, "config.json"), "--out", out, "--report-only"]);
  t.is(report.code, 0, report.output.slice(-2000));
  t.is((report.output.match(/done before, skipped/g) ?? []).length, 2);
  t.true(fs.existsSync(path.join(out, "report.md")));
});
