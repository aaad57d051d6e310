// Temporary folders for tests, removed when the test (or the test file) is done — pass or fail — so runs
// leave nothing under os.tmpdir(). Training tests write gigabytes there; leftovers add up fast.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import test, { type ExecutionContext } from "ava";

const remove = (dir: string) => fs.rmSync(dir, { recursive: true, force: true });

/**
 * A new folder `${os.tmpdir()}/${prefix}XXXXXX`, removed when test `t` ends (after its last assertion and
 * any child process it awaited). Use it for folders that one test creates and uses.
 */
export function tmpDir(t: Pick<ExecutionContext, "teardown">, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => remove(dir));
  return dir;
}

/**
 * A new folder `${os.tmpdir()}/${prefix}XXXXXX` shared by the tests of a file, removed after all of them
 * (`test.after.always`). Call it at the top level of the test file, while tests are being declared — AVA
 * refuses hooks registered once tests run.
 */
export function sharedTmpDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  test.after.always(() => remove(dir));
  return dir;
}
