// Reading input files: only regular files. A FIFO among the inputs (a `x.story` named pipe, a tokenizer.json that
// is one) blocked a plain read forever, and a folder where a file was expected gave a bare EISDIR naming nothing.
// Every reader of a user's file goes through here, so each refusal names the file and what it is instead.
import fs from "node:fs";

function kind(st: fs.Stats): string {
  if (st.isDirectory()) return "a folder";
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  return "not a regular file";
}

/** A path that is there but is no regular file: a folder, a FIFO, a socket or a device. */
export class NotRegularFileError extends Error {
  override name = "NotRegularFileError";
  constructor(
    readonly path: string,
    /** "a folder", "a FIFO (named pipe)", … */
    readonly kind: string,
    what: string | undefined,
  ) {
    super(`${what ? `${what}: ` : ""}${path} is ${kind}, expected a regular file`);
  }
}

function refusal(file: string, st: fs.Stats, what: string | undefined): Error {
  return new NotRegularFileError(file, kind(st), what);
}

/**
 * Throws unless `file` is a regular file (links followed); `what` (optional) says what it should hold. A missing
 * file throws Node's own ENOENT error, so callers that treat absence as "not given" still can.
 */
export function checkRegularFile(file: string, what?: string): void {
  const st = fs.statSync(file);
  if (!st.isFile()) throw refusal(file, st, what);
}

/**
 * Opens `file` for reading without blocking (a FIFO with no writer would block the open itself), then checks the
 * open descriptor: what is read is what was checked, even if the path is swapped in between.
 */
function openRegular(file: string, what: string | undefined): number {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    throw refusal(file, st, what);
  }
  return fd;
}

/** `file`'s bytes, read only if it is a regular file (see {@link checkRegularFile}). */
export function readRegularFile(file: string, what?: string): Buffer {
  const fd = openRegular(file, what);
  try {
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** `file` as UTF-8 text, read only if it is a regular file (see {@link checkRegularFile}). */
export function readTextFile(file: string, what?: string): string {
  return readRegularFile(file, what).toString("utf8");
}

/** `file` opened for asynchronous reading, only if it is a regular file (see {@link checkRegularFile}). */
export async function openRegularFile(file: string, what?: string): Promise<fs.promises.FileHandle> {
  const fh = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw refusal(file, st, what);
  }
  return fh;
}
