// `npm run exp1` as a user runs it: bad flags and config files are named before any work, and Ctrl-C then
// the same command again finishes the experiment without redoing finished runs.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import test from "ava";

import { packageRoot } from "../lib/native.ts";
import { run } from "./helpers/run.ts";

const CLI = path.join(packageRoot, "examples", "exp1-language-modelling.ts");
const cli = (args: string[]) => run(process.execPath, ["--import", "tsx", CLI, ...args], { cwd: packageRoot });
const SMALL = ["--context-length", "33", "--max-steps", "6", "--eval-every", "3", "--eval-sequences", "2", "--test-sequences", "2",
  "--ood-sequences", "2", "--ood", "ptb", "--variations", "ce,dpsm-linear", "--no-label-noise"];

test("bad flags and config files are named, before any work", (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "dpsm-cli-"));
  const bad = [
    [["--max-steps", "abc"], /exp1 config\.maxSteps/],
    [["--models", "tiny,huge"], /exp1 config\.models\.1/],
    [["--profile", "fast"], /--profile: expected one of quick, wt2-small, full/],
    [["--config", path.join(out, "missing.json")], /--config: .*missing\.json not found/],
  ] as const;
  for (const [args, message] of bad) {
    const r = cli([...args, "--out", out]);
    t.is(r.code, 2, r.output);
    t.regex(r.output, message);
  }
  fs.writeFileSync(path.join(out, "bad.json"), JSON.stringify({ profile: "quick", seeds: [0, -1] }));
  const r = cli(["--config", path.join(out, "bad.json"), "--out", out]);
  t.is(r.code, 2);
  t.regex(r.output, /exp1 config\.seeds\.1/);
  t.false(fs.existsSync(path.join(out, "runs")), "work started despite a bad config");
  t.regex(cli(["--help"]).output, /usage: npm run exp1/);
});

test("Ctrl-C, then the same command again: finished runs skipped, the interrupted one resumed, a report", async (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "dpsm-cli-"));
  const args = ["--import", "tsx", CLI, ...SMALL, "--out", out];
  const child = spawn(process.execPath, args, { cwd: packageRoot, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const code = await new Promise<number | null>((resolve) => {
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      // The second run has started and taken a step: interrupt it.
      if (/\[2\/2\] tiny\/dpsm-linear\/seed0: training[\s\S]*step [1-9]/.test(log) && !child.killed) child.kill("SIGINT");
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (c) => resolve(c));
  });
  t.is(code, 130, log.slice(-2000));
  t.regex(log, /stopping at the next step boundary/);
  t.true(fs.existsSync(path.join(out, "runs", "tiny", "ce", "seed0", "result.json")));
  t.false(fs.existsSync(path.join(out, "runs", "tiny", "dpsm-linear", "seed0", "result.json")));

  const again = cli([...SMALL, "--out", out]);
  t.is(again.code, 0, again.output.slice(-2000));
  t.regex(again.output, /tiny\/ce\/seed0: done before, skipped/);
  t.regex(again.output, /tiny\/dpsm-linear\/seed0: resuming/);
  t.regex(again.output, /exp1: 2 runs reported in .*report\.md/);
  t.true(fs.readFileSync(path.join(out, "report.md"), "utf8").includes("### Verdicts"));
});
