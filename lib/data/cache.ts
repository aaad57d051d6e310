// Packed token arrays on disk, so a corpus is tokenised once per (source bytes, tokenizer, settings).
//
// A file is: "DPSMTOK1", a uint32 (LE) header length, a JSON header padded to a multiple of 8 bytes, then
// the tokens and the lengths as int32 in the writer's byte order. The header carries the key it was built
// for, the payload's size and its sha256, so a truncated, corrupted or misnamed file is never trusted.
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { writeFileAtomic } from "../io/atomic.ts";
import { packageRoot } from "../native.ts";
import type { PackedArrays } from "./pack.ts";

const MAGIC = "DPSMTOK1";

interface Header {
  key: string;
  endianness: string;
  contextLength: number;
  sequences: number;
  totalTokens: number;
  documents: number;
  streamTokens: number;
  payloadBytes: number;
  payloadSha256: string;
}

/** `override`, else DPSM_CACHE_DIR, else `<package>/.cache/tokens`. */
export function tokenCacheDir(override?: string): string {
  return path.resolve(override ?? process.env.DPSM_CACHE_DIR ?? path.join(packageRoot, ".cache", "tokens"));
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

/** sha256 of the JSON of `parts`: everything the packed arrays depend on. */
export function cacheKey(parts: unknown): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex");
}

function bytesOf(a: Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function payloadHash(tokens: Int32Array, lengths: Int32Array): string {
  return createHash("sha256").update(bytesOf(tokens)).update(bytesOf(lengths)).digest("hex");
}

/** Writes the cache file atomically: readers never see half a file. */
export function writeTokenCache(file: string, key: string, packed: PackedArrays): void {
  const header: Header = {
    key,
    endianness: os.endianness(),
    contextLength: packed.contextLength,
    sequences: packed.sequences,
    totalTokens: packed.totalTokens,
    documents: packed.documents,
    streamTokens: packed.streamTokens,
    payloadBytes: packed.tokens.byteLength + packed.lengths.byteLength,
    payloadSha256: payloadHash(packed.tokens, packed.lengths),
  };
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((MAGIC.length + 4 + Buffer.byteLength(json)) % 8)) % 8);
  const head = Buffer.alloc(MAGIC.length + 4 + Buffer.byteLength(json));
  head.write(MAGIC, 0, "latin1");
  head.writeUInt32LE(Buffer.byteLength(json), MAGIC.length);
  head.write(json, MAGIC.length + 4, "utf8");

  writeFileAtomic(file, [head, bytesOf(packed.tokens), bytesOf(packed.lengths)]);
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
 * The arrays cached in `file` for `key`; undefined when there is no such file, or when it fails a check
 * (then `onInvalid` hears why, and the caller rebuilds it).
 */
export function readTokenCache(
  file: string,
  key: string,
  onInvalid?: (reason: string) => void,
): PackedArrays | undefined {
  const size = fs.statSync(file, { throwIfNoEntry: false })?.size;
  if (size === undefined) return undefined;
  const invalid = (reason: string) => {
    onInvalid?.(reason);
    return undefined;
  };
  const prefix = MAGIC.length + 4;
  if (size < prefix) return invalid(`${size} bytes, shorter than a header`);
  const bytes = readAll(file, size);
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.toString("latin1", 0, MAGIC.length) !== MAGIC) return invalid("not a token cache file");
  const offset = prefix + view.readUInt32LE(MAGIC.length);
  if (offset > size || offset % 8 !== 0) return invalid("bad header length");
  let h: Header;
  try {
    h = JSON.parse(view.toString("utf8", prefix, offset)) as Header;
  } catch {
    return invalid("unreadable header");
  }
  if (h.key !== key) return invalid("built for other inputs");
  if (h.endianness !== os.endianness()) return invalid("written on a machine of the other byte order");
  const rows = h.sequences * h.contextLength;
  if (!Number.isSafeInteger(rows) || h.payloadBytes !== (rows + h.sequences) * 4) return invalid("inconsistent header");
  if (size !== offset + h.payloadBytes)
    return invalid(`${size} bytes, expected ${offset + h.payloadBytes} (truncated?)`);
  const tokens = new Int32Array(bytes.buffer, offset, rows);
  const lengths = new Int32Array(bytes.buffer, offset + rows * 4, h.sequences);
  if (payloadHash(tokens, lengths) !== h.payloadSha256) return invalid("payload sha256 mismatch (corrupted)");
  return {
    contextLength: h.contextLength,
    sequences: h.sequences,
    tokens,
    lengths,
    totalTokens: h.totalTokens,
    documents: h.documents,
    streamTokens: h.streamTokens,
  };
}
