// Int32 arrays on disk, so a corpus is tokenised once per (source bytes, tokenizer, settings). One file format
// serves every pipeline: the language-model token rows and the encoder–decoder summarisation arrays.
//
// A file is: "DPSMTOK3", a uint32 (LE) header length, the header's sha256 (32 bytes), a JSON header padded to a
// multiple of 8 bytes, then the named arrays as int32 in the writer's byte order, in header order. The header
// carries the key it was built for, the arrays' lengths, the payload's size and its sha256, so a truncated,
// corrupted or misnamed file is never trusted; its own sha256 covers the ids and counts it holds (version 2 had
// none, so an edited count or example id was returned as if cached). Any file that fails a check is a miss: the
// caller hears why and rebuilds it.
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { writeFileAtomic } from "../io/atomic.ts";
import { userCacheDir } from "./paths.ts";
import type { PackedArrays } from "./pack.ts";
import { openRegularFile } from "../io/read.ts";

const MAGIC = "DPSMTOK3";
// The magic, the header length, the header's sha256.
const PREFIX = MAGIC.length + 4 + 32;

interface Header {
  key: string;
  endianness: string;
  /** whatever else the reader needs back (sizes, ids, counts): plain JSON */
  meta: unknown;
  arrays: { name: string; length: number }[];
  payloadBytes: number;
  payloadSha256: string;
}

/** `override`, else DPSM_CACHE_DIR, else the user's cache folder (an installed package's own may be read-only). */
export function tokenCacheDir(override?: string): string {
  return path.resolve(override ?? process.env.DPSM_CACHE_DIR ?? path.join(userCacheDir(), "tokens"));
}

/** sha256 of a file's bytes, read in chunks so a WikiText-103 shard needs no whole-file buffer. */
export function hashFile(file: string): string {
  const hash = createHash("sha256");
  const chunk = Buffer.allocUnsafe(1 << 23);
  const fd = fs.openSync(file, "r");
  try {
    for (let n; (n = fs.readSync(fd, chunk, 0, chunk.length, null)) > 0;) hash.update(chunk.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}

// Slices small enough (a few ms of sha256 each) that the event loop is never held long by the async forms.
const SLICE = 1 << 20;
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** hashFile off the event loop: the file read on libuv's pool, hashed a slice at a time between other work. */
export async function hashFileAsync(file: string): Promise<string> {
  const hash = createHash("sha256");
  const chunk = Buffer.allocUnsafe(SLICE);
  const fh = await openRegularFile(file, "data file");
  try {
    for (let n; (n = (await fh.read(chunk, 0, chunk.length, null)).bytesRead) > 0;) hash.update(chunk.subarray(0, n));
  } finally {
    await fh.close();
  }
  return hash.digest("hex");
}

/** sha256 of the JSON of `parts`: everything the cached arrays depend on. */
export function cacheKey(parts: unknown): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex");
}

/**
 * `<folder>/<label as a file-name slug>-<key>.tokens`: the label keeps the folder readable, the key keeps
 * entries for other inputs or settings apart.
 */
export function cacheFilePath(cacheDir: string | undefined, label: string, key: string): string {
  const slug = label
    .replace(/[^A-Za-z0-9.-]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(-60);
  return path.join(tokenCacheDir(cacheDir), `${slug}-${key}.tokens`);
}

function bytesOf(a: Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function payloadHash(arrays: readonly Int32Array[]): string {
  const hash = createHash("sha256");
  for (const a of arrays) hash.update(bytesOf(a));
  return hash.digest("hex");
}

async function payloadHashAsync(arrays: readonly Int32Array[]): Promise<string> {
  const hash = createHash("sha256");
  for (const a of arrays) {
    const bytes = bytesOf(a);
    for (let off = 0; off < bytes.byteLength; off += SLICE) {
      hash.update(bytes.subarray(off, off + SLICE));
      await yieldToLoop();
    }
  }
  return hash.digest("hex");
}

/** Writes named int32 arrays and `meta` atomically: readers never see half a file. */
export function writeArrayCache(file: string, key: string, meta: unknown, arrays: Record<string, Int32Array>): void {
  const entries = Object.entries(arrays);
  const header: Header = {
    key,
    endianness: os.endianness(),
    meta,
    arrays: entries.map(([name, a]) => ({ name, length: a.length })),
    payloadBytes: entries.reduce((n, [, a]) => n + a.byteLength, 0),
    payloadSha256: payloadHash(entries.map(([, a]) => a)),
  };
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((PREFIX + Buffer.byteLength(json)) % 8)) % 8);
  const head = Buffer.alloc(PREFIX + Buffer.byteLength(json));
  head.write(MAGIC, 0, "latin1");
  head.writeUInt32LE(Buffer.byteLength(json), MAGIC.length);
  head.write(json, PREFIX, "utf8");
  createHash("sha256")
    .update(head.subarray(PREFIX))
    .digest()
    .copy(head, MAGIC.length + 4);

  writeFileAtomic(file, [head, ...entries.map(([, a]) => bytesOf(a))]);
}

function readAll(file: string, size: number): Uint8Array {
  // Our own buffer, so the int32 views below start on an aligned offset.
  const bytes = new Uint8Array(size);
  const fd = fs.openSync(file, "r");
  try {
    for (let off = 0, n; off < size; off += n) {
      n = fs.readSync(fd, bytes, off, size - off, off);
      if (n === 0) throw new Error(`${file} shrank while being read`);
    }
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}

/**
 * The arrays (exactly `names`, in that order) and meta cached in `file` for `key`; undefined when there is no
 * such file, or when it fails a check (then `onInvalid` hears why, and the caller rebuilds it).
 */
export function readArrayCache(
  file: string,
  key: string,
  names: readonly string[],
  onInvalid?: (reason: string) => void,
): { meta: unknown; arrays: Record<string, Int32Array> } | undefined {
  const size = fs.statSync(file, { throwIfNoEntry: false })?.size;
  if (size === undefined) return undefined;
  if (size < PREFIX) return void onInvalid?.(`${size} bytes, shorter than a header`);
  const got = parseArrayCache(readAll(file, size), key, names, onInvalid);
  if (got === undefined) return undefined;
  if (payloadHash(Object.values(got.arrays)) !== got.sha256) return void onInvalid?.(CORRUPTED);
  return { meta: got.meta, arrays: got.arrays };
}

/** readArrayCache off the event loop: the file read on libuv's pool, its payload hashed in slices. */
export async function readArrayCacheAsync(
  file: string,
  key: string,
  names: readonly string[],
  onInvalid?: (reason: string) => void,
): Promise<{ meta: unknown; arrays: Record<string, Int32Array> } | undefined> {
  const size = (await fs.promises.stat(file).catch(() => undefined))?.size;
  if (size === undefined) return undefined;
  if (size < PREFIX) return void onInvalid?.(`${size} bytes, shorter than a header`);
  const bytes = new Uint8Array(size);
  const fh = await fs.promises.open(file, "r");
  try {
    for (let off = 0, n; off < size; off += n) {
      n = (await fh.read(bytes, off, size - off, off)).bytesRead;
      if (n === 0) throw new Error(`${file} shrank while being read`);
    }
  } finally {
    await fh.close();
  }
  const got = parseArrayCache(bytes, key, names, onInvalid);
  if (got === undefined) return undefined;
  if ((await payloadHashAsync(Object.values(got.arrays))) !== got.sha256) return void onInvalid?.(CORRUPTED);
  return { meta: got.meta, arrays: got.arrays };
}

const CORRUPTED = "payload sha256 mismatch (corrupted)";

// The header's checks and the arrays' views over `bytes`; the payload's hash (returned) is the caller's to check.
// Whatever a malformed file throws is a miss too, never an error of the caller's.
function parseArrayCache(
  bytes: Uint8Array,
  key: string,
  names: readonly string[],
  onInvalid?: (reason: string) => void,
): { meta: unknown; arrays: Record<string, Int32Array>; sha256: string } | undefined {
  try {
    return parseArrayCacheOrThrow(bytes, key, names, onInvalid);
  } catch (e) {
    onInvalid?.(`malformed (${(e as Error).message})`);
    return undefined;
  }
}

function parseArrayCacheOrThrow(
  bytes: Uint8Array,
  key: string,
  names: readonly string[],
  onInvalid?: (reason: string) => void,
): { meta: unknown; arrays: Record<string, Int32Array>; sha256: string } | undefined {
  const size = bytes.byteLength;
  const invalid = (reason: string) => {
    onInvalid?.(reason);
    return undefined;
  };
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.toString("latin1", 0, MAGIC.length) !== MAGIC) return invalid("not a token cache file of this version");
  const offset = PREFIX + view.readUInt32LE(MAGIC.length);
  if (offset > size || offset % 8 !== 0) return invalid("bad header length");
  const headerHash = createHash("sha256").update(view.subarray(PREFIX, offset)).digest();
  if (!headerHash.equals(view.subarray(MAGIC.length + 4, PREFIX))) return invalid("header sha256 mismatch (edited?)");
  let h: Header;
  try {
    h = JSON.parse(view.toString("utf8", PREFIX, offset)) as Header;
  } catch {
    return invalid("unreadable header");
  }
  if (typeof h !== "object" || h === null) return invalid("unreadable header");
  if (h.key !== key) return invalid("built for other inputs");
  if (h.endianness !== os.endianness()) return invalid("written on a machine of the other byte order");
  const lengths = Array.isArray(h.arrays) ? h.arrays.map((a) => a.length) : [];
  const total = lengths.reduce((a, b) => a + b, 0);
  if (
    !Array.isArray(h.arrays) ||
    h.arrays.map((a) => a.name).join("\0") !== names.join("\0") ||
    !lengths.every((n) => Number.isSafeInteger(n) && n >= 0) ||
    h.payloadBytes !== total * 4
  ) {
    return invalid("inconsistent header");
  }
  if (size !== offset + h.payloadBytes)
    return invalid(`${size} bytes, expected ${offset + h.payloadBytes} (truncated?)`);
  const arrays: Record<string, Int32Array> = {};
  let at = offset;
  for (const a of h.arrays) {
    arrays[a.name] = new Int32Array(bytes.buffer, at, a.length);
    at += a.length * 4;
  }
  return { meta: h.meta, arrays, sha256: h.payloadSha256 };
}

type PackedMeta = Omit<PackedArrays, "tokens" | "lengths">;

/** The language-model rows: tokens (sequences × contextLength) and lengths, with their counts as meta. */
export function writeTokenCache(file: string, key: string, packed: PackedArrays): void {
  const { tokens, lengths, ...meta } = packed;
  writeArrayCache(file, key, meta satisfies PackedMeta, { tokens, lengths });
}

/** The language-model rows cached in `file` for `key`, as readArrayCache reads them. */
export function readTokenCache(
  file: string,
  key: string,
  onInvalid?: (reason: string) => void,
): PackedArrays | undefined {
  return tokenRows(readArrayCache(file, key, ["tokens", "lengths"], onInvalid), onInvalid);
}

/** readTokenCache off the event loop (readArrayCacheAsync). */
export async function readTokenCacheAsync(
  file: string,
  key: string,
  onInvalid?: (reason: string) => void,
): Promise<PackedArrays | undefined> {
  return tokenRows(await readArrayCacheAsync(file, key, ["tokens", "lengths"], onInvalid), onInvalid);
}

function tokenRows(
  got: { meta: unknown; arrays: Record<string, Int32Array> } | undefined,
  onInvalid?: (reason: string) => void,
): PackedArrays | undefined {
  if (got === undefined) return undefined;
  const meta = got.meta as PackedMeta;
  const { tokens, lengths } = got.arrays as { tokens: Int32Array; lengths: Int32Array };
  if (
    typeof meta !== "object" ||
    meta === null ||
    tokens.length !== meta.sequences * meta.contextLength ||
    lengths.length !== meta.sequences
  ) {
    onInvalid?.("inconsistent header");
    return undefined;
  }
  return { ...meta, tokens, lengths };
}
