// Files that readers see whole or not at all: the bytes go to a temporary file in the destination's folder
// (so the rename stays on one file system), are flushed to disk, and the temporary file is renamed over the
// destination. A failure removes the temporary file and leaves the previous destination untouched.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

import { ensureFolder } from "./paths.ts";

export type Chunk = string | Uint8Array;

/**
 * Writes `data` (one chunk, or several written in order so a large payload needs no concatenated copy) to
 * `file` atomically, creating its folder.
 */
export function writeFileAtomic(file: string, data: Chunk | readonly Chunk[]): void {
  const target = path.resolve(file);
  // Every writer's folder passes the one path check (no /proc, /sys, /dev: a recursive mkdir there never returns).
  const dir = ensureFolder(path.dirname(target), `writing ${target}`);
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    const fd = fs.openSync(tmp, "w");
    try {
      for (const chunk of typeof data === "string" || data instanceof Uint8Array ? [data] : data) {
        if (typeof chunk !== "string" && !(chunk instanceof Uint8Array)) {
          throw new TypeError(`writeFileAtomic: data: expected strings and Uint8Arrays, got ${typeof chunk}`);
        }
        const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
        for (let off = 0; off < bytes.byteLength;) off += fs.writeSync(fd, bytes, off, bytes.byteLength - off);
      }
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  syncDir(dir);
}

/**
 * Moves `tmp`, a finished file its writer has flushed (a download's `.partial`, written as it arrives so that it
 * can be resumed), over `file` in one rename, and makes the rename durable. They must share a file system.
 */
export function moveIntoPlace(tmp: string, file: string): void {
  const target = path.resolve(file);
  fs.renameSync(tmp, target);
  syncDir(path.dirname(target));
}

/** `value` as indented JSON with a final newline, written atomically. */
export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 1)}\n`);
}

// The rename itself lives in the folder's entry list: flushing the folder makes it survive a power loss.
// Some platforms (Windows) cannot open a folder for that; the file's own fsync already happened.
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch {
    // best effort, see above
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
