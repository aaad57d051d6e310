// Reads a safetensors file's header and tensors in plain TypeScript: an independent check of what the
// native writer puts on disk.
import fs from "node:fs";

export interface TensorEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

export function readHeader(file: string): {
  header: Record<string, TensorEntry>;
  metadata: Record<string, string>;
  dataStart: number;
} {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const json = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Record<string, unknown>;
  const { __metadata__: metadata = {}, ...header } = json;
  return {
    header: header as Record<string, TensorEntry>,
    metadata: metadata as Record<string, string>,
    dataStart: 8 + n,
  };
}

/** A tensor as float64 values (F32 and F16 only). */
export function readTensor(file: string, name: string): Float64Array {
  const { header, dataStart } = readHeader(file);
  const e = header[name];
  if (!e) throw new Error(`${name} not in ${file}`);
  const buf = fs.readFileSync(file).subarray(dataStart + e.data_offsets[0], dataStart + e.data_offsets[1]);
  const n = e.shape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++)
    out[i] = e.dtype === "F32" ? buf.readFloatLE(4 * i) : halfToFloat(buf.readUInt16LE(2 * i));
  return out;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** Rewrites a safetensors file with renamed tensors (same bytes). */
export function renameTensors(src: string, dst: string, rename: (name: string) => string): void {
  const buf = fs.readFileSync(src);
  const { header, metadata, dataStart } = readHeader(src);
  const renamed: Record<string, unknown> = { __metadata__: metadata };
  for (const [k, v] of Object.entries(header)) renamed[rename(k)] = v;
  let json = JSON.stringify(renamed);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  fs.writeFileSync(dst, Buffer.concat([len, Buffer.from(json), buf.subarray(dataStart)]));
}

/** A safetensors file in pieces: the parsed header (metadata included) and the data section's bytes. */
export interface SafetensorsParts {
  header: Record<string, unknown>;
  data: Buffer;
}

export function readParts(file: string): SafetensorsParts {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  return {
    header: JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Record<string, unknown>,
    data: Buffer.from(buf.subarray(8 + n)),
  };
}

/**
 * Writes `parts` as a safetensors file exactly as given (no checks, for corrupting on purpose); the header
 * length field is the header's byte length unless `headerLength` overrides it.
 */
export function writeParts(file: string, parts: SafetensorsParts, headerLength?: bigint): void {
  let json = JSON.stringify(parts.header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLength ?? BigInt(Buffer.byteLength(json)));
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(json), parts.data]));
}

/**
 * `parts` repacked contiguously in header order after `edit` changed entries (the bytes of each tensor kept, or
 * replaced by `bytes`): a self-consistent file whose only fault is what the edit made.
 */
export function repack(
  parts: SafetensorsParts,
  edit: (name: string, e: TensorEntry & { bytes: Buffer }) => (TensorEntry & { bytes: Buffer }) | null,
): SafetensorsParts {
  const header: Record<string, unknown> = {};
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, v] of Object.entries(parts.header)) {
    if (name === "__metadata__") {
      header[name] = v;
      continue;
    }
    const e = v as TensorEntry;
    const out = edit(name, { ...e, bytes: parts.data.subarray(e.data_offsets[0], e.data_offsets[1]) });
    if (out === null) continue;
    header[name] = { dtype: out.dtype, shape: out.shape, data_offsets: [offset, offset + out.bytes.length] };
    chunks.push(out.bytes);
    offset += out.bytes.length;
  }
  return { header, data: Buffer.concat(chunks) };
}
