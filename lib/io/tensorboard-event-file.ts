// A TensorBoard event file (`events.out.tfevents.<seconds>.<host>`): TFRecords, each a serialized `Event`
// protobuf, appended one write per record so a killed process keeps every record it wrote. Each writer opens a
// new file; TensorBoard merges the files of a folder in name order, so a later session's file must sort after
// the earlier ones (its seconds are pushed past theirs when the clock says otherwise).
//
// Written here rather than taken from npm: the only maintained writer is TensorFlow.js's
// (`@tensorflow/tfjs-node`: a native TensorFlow build), and the few messages needed — Event, Summary, Image,
// a string tensor, SessionLog — are a handful of protobuf fields, checked against TensorBoard's own reader in
// test/tensorboard.test.ts. Field numbers are those of tensorboard/compat/proto (event.proto, summary.proto,
// tensor.proto).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { maskedCrc32c } from "./crc32c.ts";
import { ensureFolder } from "./paths.ts";

export interface EventFileOptions {
  /** seconds since the epoch of the file's first record, and in its name (default: now) */
  wallTime?: number;
  /** the host in the file's name (default: this machine's) */
  hostname?: string;
}

const PREFIX = "events.out.tfevents.";
// tensorflow/core/framework/types.proto
const DT_STRING = 7;
// SessionLog.SessionStatus
const SESSION_START = 1;
// Summary.Image.colorspace by PNG colour type: grey, RGB, grey + alpha, RGBA
const COLORSPACE: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const nowSeconds = () => Date.now() / 1000;

/** Appends events to a new event file in `dir`; one writer per session. */
export class EventFileWriter {
  readonly file: string;
  #fd: number | undefined;

  constructor(dir: string, options: EventFileOptions = {}) {
    const folder = ensureFolder(dir, "TensorBoard log folder");
    const wallTime = options.wallTime ?? nowSeconds();
    const seconds = Math.max(Math.floor(wallTime), latestFileSeconds(folder) + 1);
    this.file = path.join(folder, `${PREFIX}${seconds}.${options.hostname ?? os.hostname()}`);
    this.#fd = fs.openSync(this.file, "wx");
    this.#write(event(wallTime, 0).string(3, "brain.Event:2"));
  }

  /** One event holding a scalar per tag (TensorBoard's float: single precision). */
  scalars(step: number, values: Readonly<Record<string, number>>, wallTime = nowSeconds()): void {
    const summary = new Message();
    for (const [tag, value] of Object.entries(values)) {
      summary.message(1, new Message().string(1, tag).float(2, value));
    }
    this.#write(event(wallTime, step).message(5, summary));
  }

  /** A PNG image (its size and colour type read from its header). */
  image(step: number, tag: string, png: Uint8Array, wallTime = nowSeconds()): void {
    const { width, height, colorspace } = pngHeader(png);
    const image = new Message().varint(1, height).varint(2, width).varint(3, colorspace).bytes(4, png);
    this.#write(event(wallTime, step).message(5, valueSummary(new Message().string(1, tag).message(4, image))));
  }

  /** Text for TensorBoard's text dashboard, which renders it as Markdown. */
  text(step: number, tag: string, text: string, wallTime = nowSeconds()): void {
    const metadata = new Message().message(1, new Message().string(1, "text"));
    const tensor = new Message().varint(1, DT_STRING).message(2, new Message()).string(8, text);
    const value = new Message().string(1, tag).message(9, metadata).message(8, tensor);
    this.#write(event(wallTime, step).message(5, valueSummary(value)));
  }

  /**
   * A session (re)starts at `step`: TensorBoard drops what earlier files hold at this step and later — the
   * steps a killed session ran past its last checkpoint, which the resumed session runs again.
   */
  sessionStart(step: number, wallTime = nowSeconds()): void {
    this.#write(event(wallTime, step).message(7, new Message().varint(1, SESSION_START)));
  }

  close(): void {
    if (this.#fd === undefined) return;
    fs.closeSync(this.#fd);
    this.#fd = undefined;
  }

  // One TFRecord: length, its masked CRC, the data, its masked CRC — in a single write.
  #write(message: Message): void {
    if (this.#fd === undefined) throw new Error(`EventFileWriter: ${this.file} is closed`);
    const data = message.toBytes();
    const record = Buffer.alloc(data.length + 16);
    record.writeBigUInt64LE(BigInt(data.length), 0);
    record.writeUInt32LE(maskedCrc32c(record.subarray(0, 8)), 8);
    record.set(data, 12);
    record.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
    fs.writeSync(this.#fd, record);
  }
}

function event(wallTime: number, step: number): Message {
  if (!Number.isFinite(wallTime)) throw new RangeError(`EventFileWriter: wall time ${wallTime} is not finite`);
  if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`EventFileWriter: step ${step} is not a count`);
  return new Message().double(1, wallTime).varint(2, step);
}

function valueSummary(value: Message): Message {
  return new Message().message(1, value);
}

// The seconds in the names of the event files already in `dir` (-Infinity when there are none).
function latestFileSeconds(dir: string): number {
  let latest = -Infinity;
  for (const name of fs.readdirSync(dir)) {
    const m = /^events\.out\.tfevents\.(\d+)\./.exec(name);
    if (m) latest = Math.max(latest, Number(m[1]));
  }
  return latest;
}

function pngHeader(png: Uint8Array): { width: number; height: number; colorspace: number } {
  const ok = png.length >= 33 && PNG_SIGNATURE.every((b, i) => png[i] === b);
  const colorspace = ok ? COLORSPACE[png[25]!] : undefined;
  if (colorspace === undefined) throw new TypeError("EventFileWriter.image: expected PNG bytes (8-bit, no palette)");
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20), colorspace };
}

// A protobuf message being built: fields appended in the order written (wire types 0, 1, 2 and 5).
class Message {
  readonly #parts: Uint8Array[] = [];
  #length = 0;

  varint(field: number, value: number): this {
    return this.#key(field, 0).#varint(value);
  }

  double(field: number, value: number): this {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(value);
    return this.#key(field, 1).#push(b);
  }

  float(field: number, value: number): this {
    const b = Buffer.alloc(4);
    b.writeFloatLE(value);
    return this.#key(field, 5).#push(b);
  }

  bytes(field: number, value: Uint8Array): this {
    return this.#key(field, 2).#varint(value.length).#push(value);
  }

  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, "utf8"));
  }

  message(field: number, value: Message): this {
    return this.bytes(field, value.toBytes());
  }

  toBytes(): Uint8Array {
    return Buffer.concat(this.#parts, this.#length);
  }

  #key(field: number, wireType: number): this {
    return this.#varint(field * 8 + wireType);
  }

  // Base-128, least significant group first; by division, as values may pass 2^32.
  #varint(value: number): this {
    const out: number[] = [];
    let v = value;
    while (v >= 0x80) {
      out.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    out.push(v);
    return this.#push(Uint8Array.from(out));
  }

  #push(bytes: Uint8Array): this {
    this.#parts.push(bytes);
    this.#length += bytes.length;
    return this;
  }
}
