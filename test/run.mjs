// Runs the ava suite and ends with the plain summary line CI reads: "N passed, N failed[, N skipped]".
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

// ../shared/data beside the checkout, when there is one and DPSM_DATA_DIR is unset (inherited by ava).
import "./helpers/project-data.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const ava = path.join(root, "node_modules", "ava", "entrypoints", "cli.mjs");
const child = spawn(process.execPath, [ava, "--tap", ...process.argv.slice(2)], {
  stdio: ["ignore", "pipe", "inherit"],
});

const counts = { pass: 0, fail: 0, skip: 0, todo: 0 };
let buffered = "";
child.stdout.on("data", (chunk) => {
  process.stdout.write(chunk);
  buffered += chunk.toString();
  const lines = buffered.split("\n");
  buffered = lines.pop() ?? "";
  for (const line of lines) {
    const m = /^# (pass|fail|skip|todo) (\d+)$/.exec(line.trim());
    if (m) counts[m[1]] = Number(m[2]);
  }
});
child.on("close", (code) => {
  const m = /^# (pass|fail|skip|todo) (\d+)$/.exec(buffered.trim());
  if (m) counts[m[1]] = Number(m[2]);
  // A crash of the runner itself counts as a failure even if no test reported one.
  const failed = counts.fail + (code !== 0 && counts.fail === 0 ? 1 : 0);
  const skipped = counts.skip + counts.todo;
  console.log(`\n${counts.pass} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
  process.exit(code ?? 1);
});
