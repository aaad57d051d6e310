// Paths checked before anything is written there: a folder the user names (a run dir, a model's save dir, a log
// file's folder) must not lie in a kernel file system (/proc, /sys, /dev: `mkdirSync(…, { recursive: true })`
// spins there forever), and no existing file may stand where a folder is needed (or a folder where a file is).
// Each refusal names the option (`what`) and the path.
import fs from "node:fs";
import path from "node:path";

const KERNEL_ROOTS = ["/proc", "/sys", "/dev"];

function under(p: string, root: string): boolean {
  return p === root || p.startsWith(`${root}/`);
}

// The nearest existing ancestor of `p` (or `p`), resolved through its symbolic links.
function realAncestor(p: string): string {
  for (let q = p; ; q = path.dirname(q)) {
    try {
      return fs.realpathSync(q);
    } catch {
      if (path.dirname(q) === q) return q;
    }
  }
}

// undefined where nothing is (ENOENT), or where a file stands in the way (ENOTDIR: the loop then meets it).
function statOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw e;
  }
}

/**
 * `dir` resolved, once checked as a place for a folder (existing or to be created): not under /proc, /sys or
 * /dev (also through symbolic links), and each part of it that exists is a folder. Throws an Error naming
 * `what` otherwise. Touches nothing.
 */
export function checkFolderPath(dir: string, what: string): string {
  if (typeof dir !== "string" || dir.length === 0) throw new TypeError(`${what}: expected a folder path`);
  if (dir.includes("\0")) throw new TypeError(`${what}: a path cannot contain a NUL character`);
  const abs = path.resolve(dir);
  for (const p of [abs, realAncestor(abs)]) {
    const root = KERNEL_ROOTS.find((r) => under(p, r));
    if (root) throw new Error(`${what}: ${dir} lies in ${root}, a kernel file system; choose a folder on a disk`);
  }
  for (let q = abs; ; q = path.dirname(q)) {
    const st = statOrUndefined(q);
    if (st) {
      if (!st.isDirectory()) {
        throw new Error(`${what}: ${q === abs ? dir : `${q} (part of ${dir})`} is a file, expected a folder`);
      }
      break; // an existing folder: its ancestors exist and are folders too
    }
    if (path.dirname(q) === q) break;
  }
  return abs;
}

/** `file` resolved, once checked as a place for a file: not a folder, and its folder passes checkFolderPath. */
export function checkFilePath(file: string, what: string): string {
  if (typeof file !== "string" || file.length === 0) throw new TypeError(`${what}: expected a file path`);
  const abs = path.resolve(file);
  checkFolderPath(path.dirname(abs), what);
  if (statOrUndefined(abs)?.isDirectory()) {
    throw new Error(`${what}: ${file} is a folder, expected a file`);
  }
  return abs;
}

/** checkFolderPath, then creates the folder (and its parents). Returns the resolved path. */
export function ensureFolder(dir: string, what: string): string {
  const abs = checkFolderPath(dir, what);
  fs.mkdirSync(abs, { recursive: true });
  return abs;
}
