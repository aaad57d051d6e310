// lib/io/atomic.ts: a file is replaced whole or not at all, no temporary file stays behind, and it is the only
// writer of files (the run log's appends aside).
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { dataDir } from "../lib/data/paths.ts";
import { writeFileAtomic, writeJsonAtomic } from "../lib/io/atomic.ts";
import { packageRoot } from "../lib/native.ts";
import { tmpDir } from "./helpers/tmp.ts";

const leftovers = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith(".tmp"));
const WIKITEXT = path.join(dataDir(), "wikitext-2");

test("writes text, bytes and chunk lists into a new folder, and replaces a file", (t) => {
  const dir = path.join(tmpDir(t, "dpsm-atomic-"), "a", "b");
  const file = path.join(dir, "out.txt");
  writeFileAtomic(file, "first");
  t.is(fs.readFileSync(file, "utf8"), "first");
  const source = fs
    .readdirSync(WIKITEXT)
    .map((f) => path.join(WIKITEXT, f))
    .find((f) => fs.statSync(f).isFile())!;
  const bytes = fs.readFileSync(source);
  writeFileAtomic(file, [bytes.subarray(0, 1000), "|", bytes.subarray(1000)]);
  t.deepEqual(fs.readFileSync(file), Buffer.concat([bytes.subarray(0, 1000), Buffer.from("|"), bytes.subarray(1000)]));
  writeJsonAtomic(path.join(dir, "x.json"), { a: [1, 2], b: "ü" });
  t.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, "x.json"), "utf8")), { a: [1, 2], b: "ü" });
  t.true(fs.readFileSync(path.join(dir, "x.json"), "utf8").endsWith("}\n"));
  t.deepEqual(leftovers(dir), []);
});

test("a failed write leaves the old file as it was and no temporary file", (t) => {
  const dir = tmpDir(t, "dpsm-atomic-");
  const file = path.join(dir, "out.txt");
  writeFileAtomic(file, "old");
  // A chunk that cannot be written fails halfway through the temporary file.
  t.throws(() => writeFileAtomic(file, ["new", 42 as unknown as string]), {
    message: /data: expected strings and Uint8Arrays, got number/,
  });
  t.is(fs.readFileSync(file, "utf8"), "old");
  t.deepEqual(leftovers(dir), []);
  // The rename fails: the destination is a folder.
  fs.mkdirSync(path.join(dir, "taken", "inside"), { recursive: true });
  t.throws(() => writeFileAtomic(path.join(dir, "taken"), "x"));
  t.deepEqual(leftovers(dir), []);
  t.true(fs.statSync(path.join(dir, "taken")).isDirectory());
});

test("a file under /proc, /sys or /dev is refused, naming the file, before any folder is made", (t) => {
  // A recursive mkdir under /proc never returns: the one path check (lib/io/paths.ts) runs first.
  for (const file of ["/proc/self/x/out.json", "/sys/x/out.json", "/dev/x/out.json"]) {
    t.throws(() => writeFileAtomic(file, "x"), {
      message: new RegExp(`writing ${file}: .* lies in /[a-z]+, a kernel`),
    });
  }
});

/** `file: call` for each of `calls` made in a .ts file under `dirs` other than `allowed`. */
function callsOutside(dirs: readonly string[], calls: readonly string[], allowed: string): string[] {
  const offenders: string[] = [];
  for (const dir of dirs) {
    for (const f of fs.readdirSync(path.join(packageRoot, dir), { recursive: true, encoding: "utf8" })) {
      const file = path.join(dir, f);
      if (!file.endsWith(".ts") || file === allowed) continue;
      const text = fs.readFileSync(path.join(packageRoot, file), "utf8");
      for (const call of calls) if (text.includes(call)) offenders.push(`${file}: ${call}`);
    }
  }
  return offenders;
}

test("no other file writer in lib/, bench/, examples/: every file goes through lib/io/atomic.ts", (t) => {
  const writers = ["renameSync(", "writeFileSync(", "rename(", "writeFile(", "createWriteStream("];
  t.deepEqual(callsOutside(["lib", "bench", "examples"], writers, path.join("lib", "io", "atomic.ts")), []);
});

test("no other folder maker in lib/: every folder goes through the one path check (lib/io/paths.ts)", (t) => {
  t.deepEqual(callsOutside(["lib"], ["mkdirSync(", "mkdir(", "mkdtempSync("], path.join("lib", "io", "paths.ts")), []);
});
