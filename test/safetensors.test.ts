// Safetensors reading that trusts nothing (native/core/io/safetensors.cpp) and weight loading that copies only
// exact shapes (native/core/models/registry.cpp): each corrupted file is built from a real fixture (the GPT-2 of
// test/fixtures/gpt2, BART's sharded folder) and must be refused with a message naming the file, the tensor and
// what was expected; the untouched copy loads and gives the fixture's logits bit for bit.
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { GPT2Model } from "../lib/index.ts";
import { Seq2SeqModel } from "../lib/models/bart.ts";
import { readParts, repack, type SafetensorsParts, type TensorEntry, writeParts } from "./helpers/safetensors.ts";
import { sharedTmpDir } from "./helpers/tmp.ts";

const FIXTURE = path.join(import.meta.dirname, "fixtures", "gpt2");
const SHARDED = path.join(import.meta.dirname, "fixtures", "seq2seq", "bart-sharded");
const TMP = sharedTmpDir("dpsm-safetensors-");
const IDS = Int32Array.from({ length: 48 }, (_, i) => (i * 977 + 13) % 50257);
const reference = GPT2Model.load(FIXTURE).logits({ ids: IDS, batch: 2, length: 24 });

let folders = 0;
/** A copy of the GPT-2 fixture whose model.safetensors is what `corrupt` writes from the original's parts. */
function corrupted(corrupt: (parts: SafetensorsParts, file: string) => void): { dir: string; file: string } {
  const dir = path.join(TMP, `gpt2-${folders++}`);
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(FIXTURE, "config.json"), path.join(dir, "config.json"));
  const file = path.join(dir, "model.safetensors");
  corrupt(readParts(path.join(FIXTURE, "model.safetensors")), file);
  return { dir, file };
}
const entry = (p: SafetensorsParts, name: string) => p.header[name] as TensorEntry;
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

test("the untouched copy loads and gives the fixture's logits bit for bit", (t) => {
  const { dir } = corrupted((p, f) => writeParts(f, p));
  t.deepEqual(GPT2Model.load(dir).logits({ ids: IDS, batch: 2, length: 24 }), reference);
  // Repacked in another order (the format requires none): the same tensors, the same logits.
  const reordered = corrupted((p, f) => {
    const names = Object.keys(p.header).reverse();
    writeParts(
      f,
      repack({ header: Object.fromEntries(names.map((k) => [k, p.header[k]])), data: p.data }, (_k, e) => e),
    );
  });
  t.deepEqual(GPT2Model.load(reordered.dir).logits({ ids: IDS, batch: 2, length: 24 }), reference);
});

const LN1W = "transformer.h.0.ln_1.weight";
const LN1B = "transformer.h.0.ln_1.bias";
const LNF = "transformer.ln_f.bias";

// [what, corruption, the message after "safetensors: <file>: "]
const fileCases: [string, (p: SafetensorsParts, f: string) => void, RegExp][] = [
  [
    "4 bytes inserted before the data, offsets unchanged",
    (p, f) => writeParts(f, { ...p, data: Buffer.concat([Buffer.alloc(4), p.data]) }),
    /the data section holds 1623460 bytes but its tensors end at byte 1623456: 4 bytes unaccounted for/,
  ],
  [
    "two tensors given the same byte range",
    (p, f) => {
      entry(p, LN1B).data_offsets = [...entry(p, LN1W).data_offsets];
      writeParts(f, p);
    },
    /tensor 'transformer\.h\.0\.ln_1\.(weight|bias)': data_offsets \[\d+, \d+\] overlap those of 'transformer\.h\.0\.ln_1\.(weight|bias)'/,
  ],
  [
    "a gap between two tensors (one shrunk to shape [1], offsets otherwise unchanged)",
    (p, f) => {
      const e = entry(p, "transformer.ln_f.weight");
      e.shape = [1];
      e.data_offsets[1] = e.data_offsets[0] + 2;
      writeParts(f, p);
    },
    /tensor 'transformer\.ln_f\.bias': data_offsets begin at byte 1623424, expected 1623394 \(where 'transformer\.ln_f\.weight' ends\): 30 bytes between belong to no tensor/,
  ],
  [
    "truncated by 100 bytes",
    (p, f) => writeParts(f, { ...p, data: p.data.subarray(0, p.data.length - 100) }),
    /tensor 'transformer\.h\.1\.mlp\.c_proj\.weight': data_offsets end at byte 1623360, past the data section's 1623356 bytes/,
  ],
  [
    "8 bytes appended",
    (p, f) => writeParts(f, { ...p, data: Buffer.concat([p.data, Buffer.alloc(8)]) }),
    /8 bytes unaccounted for \(bytes appended or inserted, or data_offsets shifted\)/,
  ],
  [
    "dtype F32 over F16 bytes",
    (p, f) => {
      entry(p, LNF).dtype = "F32";
      writeParts(f, p);
    },
    /tensor 'transformer\.ln_f\.bias': data_offsets \[1623424,1623456\] span 32 bytes, but F32 of shape \[16\] needs 64/,
  ],
  [
    "an unknown dtype",
    (p, f) => {
      entry(p, LNF).dtype = "F8_E4M3";
      writeParts(f, p);
    },
    /tensor 'transformer\.ln_f\.bias': dtype: expected one of F32, F16, BF16, .*, got 'F8_E4M3'/,
  ],
  [
    "a dtype that is a number",
    (p, f) => {
      (entry(p, LNF) as unknown as { dtype: number }).dtype = 7;
      writeParts(f, p);
    },
    /tensor 'transformer\.ln_f\.bias': dtype: expected a string, got 7/,
  ],
  [
    "a shape entry that is a string",
    (p, f) => {
      (entry(p, LNF) as unknown as { shape: string[] }).shape = ["16"];
      writeParts(f, p);
    },
    /tensor 'transformer\.ln_f\.bias': shape: expected non-negative integers, got \["16"\]/,
  ],
  [
    "a fractional shape entry",
    (p, f) => {
      entry(p, LNF).shape = [2.5];
      writeParts(f, p);
    },
    /tensor 'transformer\.ln_f\.bias': shape: expected non-negative integers, got \[2\.5\]/,
  ],
  [
    "a negative shape entry",
    (p, f) => {
      entry(p, LNF).shape = [-16];
      writeParts(f, p);
    },
    /tensor 'transformer\.ln_f\.bias': shape: expected non-negative integers, got \[-16\]/,
  ],
  [
    "a shape whose element count overflows int64 (2^31 × 2^31 × 2^2 wraps to 0)",
    (p, f) => {
      const e = entry(p, LNF);
      e.shape = [2 ** 31, 2 ** 31, 4];
      e.data_offsets = [e.data_offsets[0], e.data_offsets[0]];
      writeParts(f, p);
    },
    /tensor 'transformer\.ln_f\.bias': shape \[2147483648,2147483648,4\] has more elements than int64 holds/,
  ],
  [
    "a shape whose byte count overflows int64",
    (p, f) => {
      const e = entry(p, LNF);
      e.shape = [2 ** 31, 2 ** 31];
      writeParts(f, p);
    },
    /tensor 'transformer\.ln_f\.bias': shape \[2147483648,2147483648\] needs more bytes than int64 holds/,
  ],
  [
    "data_offsets that are strings",
    (p, f) => {
      const e = entry(p, LNF) as unknown as { data_offsets: unknown[] };
      e.data_offsets = e.data_offsets.map(String);
      writeParts(f, p);
    },
    /tensor 'transformer\.ln_f\.bias': data_offsets: expected \[begin, end\], non-negative integers with begin <= end, got \["1623424","1623456"\]/,
  ],
  [
    "data_offsets with end before begin",
    (p, f) => {
      entry(p, LNF).data_offsets.reverse();
      writeParts(f, p);
    },
    /tensor 'transformer\.ln_f\.bias': data_offsets: expected \[begin, end\].*got \[1623456,1623424\]/,
  ],
  [
    "a header length of 2^62",
    (p, f) => writeParts(f, p, 2n ** 62n),
    /header length 4611686018427387904 exceeds the \d+ bytes after the length field \(and the format's 100 MiB\)/,
  ],
  [
    "a header length one byte past the file",
    (p, f) => {
      writeParts(f, p);
      const size = fs.statSync(f).size;
      writeParts(f, p, BigInt(size - 8 + 1));
    },
    /header length (\d+) exceeds the \d+ bytes after the length field$/,
  ],
  [
    "a header that is not JSON",
    (p, f) => {
      writeParts(f, p);
      const b = fs.readFileSync(f);
      b[9] = 0x7b; // {{"...
      fs.writeFileSync(f, b);
    },
    /header is not JSON/,
  ],
  [
    "a header that is a JSON array",
    (p, f) => writeParts(f, { header: [1, 2] as unknown as Record<string, unknown>, data: p.data }),
    /header is not a JSON object/,
  ],
  [
    "a metadata value that is not a string",
    (p, f) => {
      p.header.__metadata__ = { format: 1 };
      writeParts(f, p);
    },
    /__metadata__\.format: expected a string, got 1/,
  ],
  [
    "an entry that is not an object",
    (p, f) => {
      p.header[LNF] = 3;
      writeParts(f, p);
    },
    /tensor 'transformer\.ln_f\.bias': expected an object \{ dtype, shape, data_offsets \}, got number/,
  ],
  [
    "an entry without data_offsets",
    (p, f) => {
      delete (entry(p, LNF) as Partial<TensorEntry>).data_offsets;
      writeParts(f, p);
    },
    /tensor 'transformer\.ln_f\.bias': lacks 'data_offsets'/,
  ],
  ["a file of 5 bytes", (_p, f) => fs.writeFileSync(f, Buffer.alloc(5)), /too short for a header \(5 bytes\)/],
  [
    // Issue 29: 100,000 nested objects overflowed the native stack (SIGSEGV); written by hand because
    // JSON.stringify would recurse as deep.
    "100,000 objects nested inside __metadata__",
    (p, f) => {
      const n = 100_000;
      const json = `{"__metadata__":{"a":${'{"a":'.repeat(n)}"x"${"}".repeat(n)}},${JSON.stringify(p.header).slice(1)}`;
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
      fs.writeFileSync(f, Buffer.concat([len, Buffer.from(json), p.data]));
    },
    /header nests objects or arrays more than 64 deep/,
  ],
];

for (const [what, corrupt, message] of fileCases) {
  test(`refused: ${what}`, (t) => {
    const { dir, file } = corrupted(corrupt);
    const e = t.throws(() => GPT2Model.load(dir));
    t.regex(e.message, new RegExp(`^safetensors: ${escape(file)}: `));
    t.regex(e.message, message);
  });
}

// [what, corruption, the message after "<file> does not match the GPT-2 config: "]
const loadCases: [string, (p: SafetensorsParts, f: string) => void, RegExp][] = [
  [
    "shape [1] where the model needs [n_embd] (a consistent file: copy_ would broadcast it)",
    (p, f) =>
      writeParts(
        f,
        repack(p, (k, e) =>
          k === "transformer.ln_f.weight" ? { ...e, shape: [1], bytes: e.bytes.subarray(0, 2) } : e,
        ),
      ),
    /mis-shaped \[transformer\.ln_f\.weight \(file \[1\], model \[16\]\)\]/,
  ],
  [
    "shape [16, 1] where the model needs [16]",
    (p, f) =>
      writeParts(
        f,
        repack(p, (k, e) => (k === LNF ? { ...e, shape: [16, 1] } : e)),
      ),
    /mis-shaped \[transformer\.ln_f\.bias \(file \[16, 1\], model \[16\]\)\]/,
  ],
  [
    "a missing tensor",
    (p, f) =>
      writeParts(
        f,
        repack(p, (k, e) => (k === LNF ? null : e)),
      ),
    /missing \[transformer\.ln_f\.bias\]$/,
  ],
  [
    "integer values for a float parameter (I16 over the same bytes)",
    (p, f) =>
      writeParts(
        f,
        repack(p, (k, e) => (k === LNF ? { ...e, dtype: "I16" } : e)),
      ),
    /mis-shaped \[transformer\.ln_f\.bias \(file dtype Short, model Float\)\]/,
  ],
  [
    "an lm_head.weight that differs from the token embedding it is tied to",
    (p, f) => {
      const wte = entry(p, "transformer.wte.weight");
      const head = Buffer.from(p.data.subarray(wte.data_offsets[0], wte.data_offsets[1]));
      head[0] = head[0]! ^ 1;
      const parts = { header: { ...p.header, "lm_head.weight": { ...wte } }, data: p.data };
      writeParts(
        f,
        repack(parts, (k, e) => (k === "lm_head.weight" ? { ...e, bytes: head } : e)),
      );
    },
    /mis-shaped \[lm_head\.weight \(differs from transformer\.wte\.weight, which it is tied to/,
  ],
  [
    "an lm_head.weight of another shape",
    (p, f) => {
      const parts = { header: { ...p.header, "lm_head.weight": { ...entry(p, LNF) } }, data: p.data };
      writeParts(
        f,
        repack(parts, (_k, e) => e),
      );
    },
    /mis-shaped \[lm_head\.weight \(file \[16\], model \[50257, 16\]\)\]/,
  ],
];

for (const [what, corrupt, message] of loadCases) {
  test(`refused when loading: ${what}`, (t) => {
    const { dir, file } = corrupted(corrupt);
    const e = t.throws(() => GPT2Model.load(dir));
    t.regex(e.message, new RegExp(`^${escape(file)} does not match the GPT-2 config: `));
    t.regex(e.message, message);
  });
}

test("a stored head equal to the token embedding (transformers' tied layout) loads the same", (t) => {
  const { dir } = corrupted((p, f) => {
    const parts = {
      header: { ...p.header, "lm_head.weight": { ...entry(p, "transformer.wte.weight") } },
      data: p.data,
    };
    writeParts(
      f,
      repack(parts, (_k, e) => e),
    );
  });
  t.deepEqual(GPT2Model.load(dir).logits({ ids: IDS, batch: 2, length: 24 }), reference);
});

test("a shard of a sharded checkpoint is checked the same; a shard name that is no file is refused", (t) => {
  const dir = path.join(TMP, "sharded");
  fs.mkdirSync(dir);
  for (const f of fs.readdirSync(SHARDED)) fs.copyFileSync(path.join(SHARDED, f), path.join(dir, f));
  t.notThrows(() => Seq2SeqModel.load(dir));
  const shard = path.join(dir, "model-00002-of-00003.safetensors");
  const p = readParts(shard);
  writeParts(shard, { ...p, data: Buffer.concat([p.data, Buffer.alloc(4)]) });
  t.throws(() => Seq2SeqModel.load(dir), {
    message: new RegExp(`^safetensors: ${escape(shard)}: the data section holds \\d+ bytes .*4 bytes unaccounted for`),
  });
  const index = path.join(dir, "model.safetensors.index.json");
  const j = JSON.parse(fs.readFileSync(index, "utf8")) as { weight_map: Record<string, string> };
  const first = Object.keys(j.weight_map)[0]!;
  fs.writeFileSync(index, JSON.stringify({ weight_map: { ...j.weight_map, [first]: ".." } }));
  t.throws(() => Seq2SeqModel.load(dir), { message: /safetensors: .*\/\.\.: not found, or not a regular file/ });
});
