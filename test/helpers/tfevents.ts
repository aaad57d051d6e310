// A reader of TensorBoard event files for the tests, written apart from the writer (lib/io/tensorboard-event-file.ts):
// TFRecord framing with both CRCs checked, a generic protobuf decoder, and the Event fields the writer uses —
// plus the view TensorBoard builds from a folder of them (files in name order, a session start dropping what
// earlier files hold at its step and later), to compare with what TensorBoard itself read.
import fs from "node:fs";
import path from "node:path";

import { maskedCrc32c } from "../../lib/io/crc32c.ts";

export interface EventValue {
  tag: string;
  simpleValue?: number;
  image?: { height: number; width: number; colorspace: number; png: Buffer };
  pluginName?: string;
  text?: string[];
  dtype?: number;
}

export interface TfEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  sessionStatus?: number;
  values: EventValue[];
}

/** The records of an event file, each checked against its two CRCs (throws on a mismatch or a cut record). */
export function readRecords(file: string): Buffer[] {
  const bytes = fs.readFileSync(file);
  const records: Buffer[] = [];
  for (let at = 0; at < bytes.length;) {
    if (at + 12 > bytes.length) throw new Error(`${file}: a record header cut short at byte ${at}`);
    const length = Number(bytes.readBigUInt64LE(at));
    if (bytes.readUInt32LE(at + 8) !== maskedCrc32c(bytes.subarray(at, at + 8))) {
      throw new Error(`${file}: the length CRC of the record at byte ${at} does not match`);
    }
    const data = bytes.subarray(at + 12, at + 12 + length);
    if (data.length !== length || at + 16 + length > bytes.length) throw new Error(`${file}: a record cut short`);
    if (bytes.readUInt32LE(at + 12 + length) !== maskedCrc32c(data)) {
      throw new Error(`${file}: the data CRC of the record at byte ${at} does not match`);
    }
    records.push(data);
    at += 16 + length;
  }
  return records;
}

type Field = number | Buffer;

// field number → its values in order: varints as numbers, fixed64 as doubles, fixed32 as floats, bytes as Buffers
function decode(bytes: Buffer): Map<number, Field[]> {
  const fields = new Map<number, Field[]>();
  let at = 0;
  const varint = () => {
    let value = 0;
    for (let scale = 1; ; scale *= 128) {
      const b = bytes[at++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
    }
  };
  while (at < bytes.length) {
    const key = varint();
    const [field, wire] = [Math.floor(key / 8), key % 8];
    let value: Field;
    if (wire === 0) value = varint();
    else if (wire === 1) value = ((at += 8), bytes.readDoubleLE(at - 8));
    else if (wire === 5) value = ((at += 4), bytes.readFloatLE(at - 4));
    else if (wire === 2) {
      const n = varint();
      value = bytes.subarray(at, (at += n));
    } else throw new Error(`protobuf: wire type ${wire} at byte ${at}`);
    fields.set(field, [...(fields.get(field) ?? []), value]);
  }
  return fields;
}

const one = (m: Map<number, Field[]>, f: number) => m.get(f)?.at(-1);
const buf = (m: Map<number, Field[]>, f: number) => one(m, f) as Buffer | undefined;
const num = (m: Map<number, Field[]>, f: number) => one(m, f) as number | undefined;

/** An Event record, the fields TensorBoard reads for scalars, images, text and session starts. */
export function parseEvent(record: Buffer): TfEvent {
  const e = decode(record);
  const event: TfEvent = { wallTime: num(e, 1) ?? 0, step: num(e, 2) ?? 0, values: [] };
  const version = buf(e, 3);
  if (version) event.fileVersion = version.toString("utf8");
  const session = buf(e, 7);
  if (session) event.sessionStatus = num(decode(session), 1) ?? 0;
  const summary = buf(e, 5);
  for (const raw of summary ? ((decode(summary).get(1) ?? []) as Buffer[]) : []) {
    const v = decode(raw);
    const value: EventValue = { tag: buf(v, 1)?.toString("utf8") ?? "" };
    const simple = num(v, 2);
    if (simple !== undefined) value.simpleValue = simple;
    const image = buf(v, 4);
    if (image) {
      const i = decode(image);
      value.image = { height: num(i, 1)!, width: num(i, 2)!, colorspace: num(i, 3)!, png: buf(i, 4)! };
    }
    const metadata = buf(v, 9);
    const plugin = metadata ? buf(decode(metadata), 1) : undefined;
    if (plugin) value.pluginName = buf(decode(plugin), 1)?.toString("utf8");
    const tensor = buf(v, 8);
    if (tensor) {
      const t = decode(tensor);
      value.dtype = num(t, 1);
      value.text = ((t.get(8) ?? []) as Buffer[]).map((s) => s.toString("utf8"));
    }
    event.values.push(value);
  }
  return event;
}

/** The event files of `dir`, in the order TensorBoard reads them. */
export function eventFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.includes("tfevents"))
    .sort()
    .map((f) => path.join(dir, f));
}

/** Each event of the folder with the value it carries, after TensorBoard's purge at every session start. */
export function folderView(dir: string): { event: TfEvent; value: EventValue }[] {
  let kept: { event: TfEvent; value: EventValue }[] = [];
  for (const file of eventFiles(dir)) {
    for (const record of readRecords(file)) {
      const event = parseEvent(record);
      if (event.sessionStatus === 1) kept = kept.filter((k) => k.event.step < event.step);
      kept.push(...event.values.map((value) => ({ event, value })));
    }
  }
  return kept;
}
