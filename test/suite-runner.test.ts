// test/run.mjs, the suite's runner: when ava's inactivity timeout fires (a test stalled, or a loaded machine made
// one slower than the timeout), the run names each test that was running as a failing TAP line — ava 7's TAP
// reporter crashed there instead ("Cannot set properties of undefined (setting 'name')"), naming none (issue 29).
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { packageRoot } from "../lib/native.ts";
import { run } from "./helpers/run.ts";
import { tmpDir } from "./helpers/tmp.ts";

const AVA = path.join(packageRoot, "node_modules", "ava");
const FIX = path.join(packageRoot, "test", "helpers", "ava-tap-timeout.mjs");

test("a stalled test is named as a failure when ava's inactivity timeout fires, and the run ends", (t) => {
  // A project of its own (ava's files setting), so the stalling test is no test of this suite.
  const dir = tmpDir(t, "dpsm-ava-stall-");
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ type: "module", ava: { files: ["*.test.mjs"] } }));
  fs.writeFileSync(
    path.join(dir, "stall.test.mjs"),
    [
      `import test from ${JSON.stringify(path.join(AVA, "entrypoints", "main.mjs"))};`,
      `test("finishes", (t) => t.pass());`,
      `test("stalls", (t) => new Promise((resolve) => setTimeout(resolve, 120_000)).then(() => t.pass()));`,
    ].join("\n"),
  );
  const cli = path.join(AVA, "entrypoints", "cli.mjs");
  const r = run(process.execPath, ["--import", FIX, cli, "--tap", "--timeout=3s"], { cwd: dir, timeout: 100_000 });
  t.is(r.code, 1, r.output);
  t.regex(r.output, /^ok 1 - finishes$/m);
  t.regex(r.output, /^not ok 2 - stalls$/m);
  t.regex(r.output, /stall\.test\.mjs: stalls: stalled: no test completed within the last 3000/);
  t.regex(r.output, /^# fail 1$/m);
  t.notRegex(r.output, /TypeError/);
});

test("test/run.mjs loads that fix into ava and scales the inactivity timeout with the machine's load", (t) => {
  const runner = fs.readFileSync(path.join(packageRoot, "test", "run.mjs"), "utf8");
  t.regex(runner, /"--import", tapTimeoutFix, ava, "--tap", \.\.\.inactivityTimeout\(args\)/);
  t.regex(runner, /new URL\("\.\/helpers\/ava-tap-timeout\.mjs", import\.meta\.url\)/);
  // The fix replaces a method of ava's own: still there in the ava installed.
  t.regex(fs.readFileSync(path.join(AVA, "lib", "reporters", "tap.js"), "utf8"), /\n\twriteTimeout\(evt\) \{/);
});
