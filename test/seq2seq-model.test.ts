// BART and PEGASUS against Hugging Face transformers itself: test/fixtures/seq2seq/make_fixture.py made a
// random-initialised model of each family with transformers, saved it with save_pretrained, and recorded
// the float64 logits BartForConditionalGeneration / PegasusForConditionalGeneration give on real CNN/DailyMail
// text (a padded batch). Our core loads each folder and must give the same logits.
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { GPT2Model } from "../lib/index.ts";
import { SEQ2SEQ_PRESETS, Seq2SeqModel, seq2seqParameterCount } from "../lib/models/bart.ts";
import { readHeader, readParts, repack, type TensorEntry, writeParts } from "./helpers/safetensors.ts";
import { tmpDir } from "./helpers/tmp.ts";

const FIXTURES = path.join(import.meta.dirname, "fixtures", "seq2seq");

interface Expected {
  transformers: string;
  input_ids: number[][];
  attention_mask: number[][];
  decoder_input_ids: number[][];
  decoder_lengths: number[];
  logits: number[][][];
}

function run(model: Seq2SeqModel, e: Expected): { logits: Float32Array; B: number; T: number; V: number } {
  const B = e.input_ids.length;
  const S = e.input_ids[0]!.length;
  const T = e.decoder_input_ids[0]!.length;
  const logits = model.logits({
    ids: Int32Array.from(e.input_ids.flat()),
    mask: Int32Array.from(e.attention_mask.flat()),
    length: S,
    decoderIds: Int32Array.from(e.decoder_input_ids.flat()),
    batch: B,
    decoderLength: T,
  });
  return { logits, B, T, V: model.config.vocab_size };
}

// ‖ours − ref‖ / ‖ref‖ over every real decoder position, and the largest absolute difference.
function compare(e: Expected, r: ReturnType<typeof run>): { rel: number; abs: number; argmaxAgree: number } {
  let num = 0;
  let den = 0;
  let abs = 0;
  let agree = 0;
  let positions = 0;
  e.logits.forEach((rows, b) =>
    rows.forEach((ref, t) => {
      const off = (b * r.T + t) * r.V;
      let best = 0;
      for (let v = 0; v < r.V; v++) {
        const d = r.logits[off + v]! - ref[v]!;
        num += d * d;
        den += ref[v]! * ref[v]!;
        abs = Math.max(abs, Math.abs(d));
        if (r.logits[off + v]! > r.logits[off + best]!) best = v;
      }
      agree += Number(ref[best] === Math.max(...ref));
      positions++;
    }),
  );
  return { rel: Math.sqrt(num / den), abs, argmaxAgree: agree / positions };
}

for (const family of ["bart", "pegasus"] as const) {
  const dir = path.join(FIXTURES, family);
  const expected = JSON.parse(fs.readFileSync(path.join(dir, "expected.json"), "utf8")) as Expected;

  test(`${family}: logits equal transformers' on a padded batch of real text (fp32, rel err ≤ 1e-5)`, (t) => {
    const model = Seq2SeqModel.load(dir);
    t.is(model.config.model_type, family);
    const c = compare(expected, run(model, expected));
    t.log(
      `${family} (transformers ${expected.transformers}): rel ${c.rel.toExponential(2)}, max abs ${c.abs.toExponential(2)}`,
    );
    t.true(c.rel <= 1e-5, `relative error ${c.rel}`);
    t.is(c.argmaxAgree, 1);
  });

  test(`${family}: save writes Hugging Face's names; the saved folder loads and gives the same logits`, (t) => {
    const out = tmpDir(t, `dpsm-${family}-`);
    const model = Seq2SeqModel.load(dir);
    model.save(out);
    const theirs = Object.keys(readHeader(path.join(dir, "model.safetensors")).header);
    const ours = Object.keys(readHeader(path.join(out, "model.safetensors")).header);
    t.deepEqual(ours.sort(), theirs.sort());
    const again = Seq2SeqModel.load(out);
    t.deepEqual(run(again, expected).logits, run(model, expected).logits);
    t.is(JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8")).model_type, family);
  });
}

test("bad checkpoints and inputs are named errors", (t) => {
  const tmp = tmpDir(t, "dpsm-s2s-bad-");
  const bart = path.join(FIXTURES, "bart");
  const copy = (config: object) => {
    fs.copyFileSync(path.join(bart, "model.safetensors"), path.join(tmp, "model.safetensors"));
    fs.writeFileSync(path.join(tmp, "config.json"), JSON.stringify(config));
  };
  const base = JSON.parse(fs.readFileSync(path.join(bart, "config.json"), "utf8")) as Record<string, unknown>;
  t.throws(() => Seq2SeqModel.load("/nonexistent/folder"), { message: /config\.json not found/ });
  t.throws(() => Seq2SeqModel.load(undefined as never), {
    message: /^Seq2SeqModel\.load: dir: expected a checkpoint folder's path, got undefined/,
  });
  copy({ ...base, model_type: "t5" });
  t.throws(() => Seq2SeqModel.load(tmp), { message: /model_type/ });
  copy({ ...base, d_model: 30 });
  t.throws(() => Seq2SeqModel.load(tmp), { message: /d_model: must be a multiple of encoder_attention_heads/ });
  copy({ ...base, d_model: 64 });
  t.throws(() => Seq2SeqModel.load(tmp), {
    message: /mis-shaped \[model\.decoder\.embed_positions\.weight \(file \[130, 32\], model \[130, 64\]\)/,
  });
  copy(base);
  const file = path.join(tmp, "model.safetensors");
  fs.truncateSync(file, fs.statSync(file).size - 1000);
  t.throws(() => Seq2SeqModel.load(tmp), {
    message:
      /safetensors: .*model\.safetensors: tensor 'model\.shared\.weight': data_offsets end at byte \d+, past the data section's/,
  });
  copy({ ...base, encoder_layers: 3 });
  t.throws(() => Seq2SeqModel.load(tmp), { message: /missing \[model\.encoder\.layers\.2\./ });
  const model = Seq2SeqModel.load(bart);
  t.throws(
    () =>
      model.logits({
        ids: new Int32Array(4),
        mask: new Int32Array(4),
        length: 2,
        decoderIds: new Int32Array(3),
        batch: 2,
        decoderLength: 2,
      }),
    {
      message: /batch × decoderLength/,
    },
  );
  t.throws(
    () =>
      model.logits({
        ids: new Int32Array([0, 9999]),
        mask: new Int32Array(2),
        length: 2,
        decoderIds: new Int32Array(2),
        batch: 1,
        decoderLength: 2,
      }),
    {
      message: /ids: expected values in \[0, 264\)/,
    },
  );
  t.throws(() => model.native.logits({ ids: new Int32Array(2), batch: 1, length: 2 }), {
    message: /^mask: expected an Int32Array/,
  });
});

test("create: a preset's shape with Hugging Face's initialisation; its count of parameters; save and load", (t) => {
  const m = Seq2SeqModel.create({ preset: "tiny", seed: 3 });
  const c = SEQ2SEQ_PRESETS.tiny;
  const d = c.d_model;
  const attention = 4 * (d * d + d);
  const ffn = 2 * d * c.encoder_ffn_dim + c.encoder_ffn_dim + d;
  const norm = 2 * d;
  const encoderLayer = attention + ffn + 2 * norm;
  const decoderLayer = 2 * attention + ffn + 3 * norm;
  const positions = (c.max_position_embeddings + 2) * d;
  const expected =
    c.vocab_size * d + 2 * (positions + norm) + c.encoder_layers * encoderLayer + c.decoder_layers * decoderLayer;
  t.is(m.parameterCount, expected);
  const dir = tmpDir(t, "dpsm-s2s-create-");
  m.save(dir);
  const config = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  t.is(config.model_type, "bart");
  t.is(config.pad_token_id, 50257);
  const again = Seq2SeqModel.load(dir);
  const src = { ids: Int32Array.from([50256, 464, 3290, 50256]), mask: new Int32Array(4).fill(1), length: 4 };
  t.deepEqual(
    again.logits({ ...src, decoderIds: Int32Array.from([50256, 464]), batch: 1, decoderLength: 2 }),
    m.logits({ ...src, decoderIds: Int32Array.from([50256, 464]), batch: 1, decoderLength: 2 }),
  );
  // The same seed, the same weights; another seed, others.
  const same = Seq2SeqModel.create({ preset: "tiny", seed: 3 }).logits({
    ...src,
    decoderIds: Int32Array.from([50256, 464]),
    batch: 1,
    decoderLength: 2,
  });
  const other = Seq2SeqModel.create({ preset: "tiny", seed: 4 }).logits({
    ...src,
    decoderIds: Int32Array.from([50256, 464]),
    batch: 1,
    decoderLength: 2,
  });
  t.deepEqual(same, m.logits({ ...src, decoderIds: Int32Array.from([50256, 464]), batch: 1, decoderLength: 2 }));
  t.notDeepEqual(other, same);
  t.throws(() => Seq2SeqModel.create({ preset: "bart-huge" as "tiny" }), { message: /preset/ });
  t.throws(() => Seq2SeqModel.create({ preset: "tiny", config: { d_model: 130 } }), {
    message: /d_model: must be a multiple of encoder_attention_heads/,
  });
});

test("sharded weights (model.safetensors.index.json, as save_pretrained writes them) load like one file", (t) => {
  const e = JSON.parse(fs.readFileSync(path.join(FIXTURES, "bart", "expected.json"), "utf8")) as Expected;
  const sharded = path.join(FIXTURES, "bart-sharded");
  t.deepEqual(run(Seq2SeqModel.load(sharded), e).logits, run(Seq2SeqModel.load(path.join(FIXTURES, "bart")), e).logits);
  const tmp = tmpDir(t, "dpsm-s2s-shards-");
  for (const f of fs.readdirSync(sharded)) fs.copyFileSync(path.join(sharded, f), path.join(tmp, f));
  const index = JSON.parse(fs.readFileSync(path.join(tmp, "model.safetensors.index.json"), "utf8")) as {
    weight_map: Record<string, string>;
  };
  const write = (weightMap: Record<string, string>) =>
    fs.writeFileSync(path.join(tmp, "model.safetensors.index.json"), JSON.stringify({ weight_map: weightMap }));
  write({ ...index.weight_map, "model.extra.weight": index.weight_map["model.shared.weight"]! });
  t.throws(() => Seq2SeqModel.load(tmp), { message: /lacks 'model\.extra\.weight', which the index places there/ });
  const { ["model.shared.weight"]: _dropped, ...rest } = index.weight_map;
  write(rest);
  t.throws(() => Seq2SeqModel.load(tmp), { message: /holds tensors the index does not list/ });
});

test("save past maxShardBytes writes transformers' sharded layout; saving again in one file removes the shards", (t) => {
  const e = JSON.parse(fs.readFileSync(path.join(FIXTURES, "bart", "expected.json"), "utf8")) as Expected;
  const model = Seq2SeqModel.load(path.join(FIXTURES, "bart"));
  const dir = tmpDir(t, "dpsm-s2s-save-shards-");
  model.save(dir, { maxShardBytes: 100_000 });
  const files = fs.readdirSync(dir).sort();
  t.deepEqual(files, [
    "config.json",
    "model-00001-of-00003.safetensors",
    "model-00002-of-00003.safetensors",
    "model-00003-of-00003.safetensors",
    "model.safetensors.index.json",
  ]);
  const index = JSON.parse(fs.readFileSync(path.join(dir, "model.safetensors.index.json"), "utf8")) as {
    metadata: { total_size: number };
    weight_map: Record<string, string>;
  };
  const theirs = JSON.parse(
    fs.readFileSync(path.join(FIXTURES, "bart-sharded", "model.safetensors.index.json"), "utf8"),
  ) as typeof index;
  t.is(index.metadata.total_size, theirs.metadata.total_size);
  t.deepEqual(Object.keys(index.weight_map).sort(), Object.keys(theirs.weight_map).sort());
  t.deepEqual(run(Seq2SeqModel.load(dir), e).logits, run(model, e).logits);
  model.save(dir);
  t.deepEqual(fs.readdirSync(dir).sort(), ["config.json", "model.safetensors"]);
  t.deepEqual(run(Seq2SeqModel.load(dir), e).logits, run(model, e).logits);
  t.throws(() => model.save(dir, { maxShardBytes: 0 }), { message: /maxShardBytes/ });
});

test("config.json dimensions are bounded and the parameter count limited before anything is allocated", (t) => {
  const dir = tmpDir(t, "dpsm-s2s-bounds-");
  const bart = path.join(FIXTURES, "bart");
  fs.copyFileSync(path.join(bart, "model.safetensors"), path.join(dir, "model.safetensors"));
  const base = JSON.parse(fs.readFileSync(path.join(bart, "config.json"), "utf8")) as Record<string, unknown>;
  const file = path.join(dir, "config.json");
  const refused = (config: Record<string, unknown>, message: RegExp) => {
    fs.writeFileSync(file, JSON.stringify({ ...base, ...config }));
    const t0 = performance.now();
    const e = t.throws(() => Seq2SeqModel.load(dir), { instanceOf: RangeError });
    const ms = performance.now() - t0;
    t.regex(e.message, message);
    t.true(ms < 1000, `refused after ${ms.toFixed(0)} ms`);
  };
  refused(
    { encoder_layers: 1e9 },
    new RegExp(`${file}\\.encoder_layers: Too big: expected number to be <=256, got 1000000000`),
  );
  refused({ decoder_layers: 257 }, /config\.json\.decoder_layers: Too big: expected number to be <=256, got 257/);
  refused({ d_model: 2 ** 20 }, /config\.json\.d_model: Too big: expected number to be <=65536/);
  refused({ encoder_attention_heads: 2048 }, /config\.json\.encoder_attention_heads: Too big/);
  refused({ decoder_ffn_dim: 2 ** 30 }, /config\.json\.decoder_ffn_dim: Too big: expected number to be <=262144/);
  refused({ vocab_size: 2 ** 40 }, /config\.json\.vocab_size: Too big: expected number to be <=16777216/);
  refused({ max_position_embeddings: 1e12 }, /config\.json\.max_position_embeddings: Too big/);
  refused(
    { encoder_layers: 256, decoder_layers: 256, d_model: 8192, encoder_ffn_dim: 262144, decoder_ffn_dim: 262144 },
    new RegExp(
      `${file}: a model of these dimensions has [\\d,]+ parameters, which would need [\\d,]+ bytes .* in fp32`,
    ),
  );
  t.throws(() => Seq2SeqModel.create({ preset: "tiny", config: { encoder_layers: 1e9 } }), {
    message: /Seq2SeqModel\.create options\.config\.encoder_layers: Too big/,
  });
});

// Issue 29: a config.json claiming a 2^24 vocabulary beside a tiny file built and initialised 537 M parameters
// (seconds, gigabytes) before the native loader compared shapes.
test("a config.json larger than its weights is refused before the model is built (one file, shards; BART, GPT-2)", (t) => {
  const dir = tmpDir(t, "dpsm-s2s-mismatch-");
  const cases: [string, string, Record<string, unknown>, (d: string) => unknown][] = [
    [path.join(FIXTURES, "bart"), "model.safetensors", { vocab_size: 2 ** 24 }, (d) => Seq2SeqModel.load(d)],
    [path.join(FIXTURES, "pegasus"), "model.safetensors", { d_model: 4096 }, (d) => Seq2SeqModel.load(d)],
    [
      path.join(FIXTURES, "bart-sharded"),
      "model.safetensors.index.json",
      { vocab_size: 2 ** 20 },
      (d) => Seq2SeqModel.load(d),
    ],
    [
      path.join(import.meta.dirname, "fixtures", "gpt2"),
      "model.safetensors",
      { vocab_size: 2 ** 24 },
      (d) => GPT2Model.load(d),
    ],
  ];
  for (const [i, [from, weights, edit, load]] of cases.entries()) {
    const to = path.join(dir, String(i));
    fs.cpSync(from, to, { recursive: true });
    const config = path.join(to, "config.json");
    fs.writeFileSync(config, JSON.stringify({ ...JSON.parse(fs.readFileSync(config, "utf8")), ...edit }));
    const t0 = performance.now();
    const e = t.throws(() => load(to));
    const ms = performance.now() - t0;
    t.regex(
      e?.message ?? "",
      new RegExp(
        `${config.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} describes a model of at least [\\d,]+ values, more than twice the [\\d,]+ that .*${weights.replace(/\./g, "\\.")} holds: the config does not belong to these weights`,
      ),
    );
    t.true(ms < 1000, `refused after ${ms.toFixed(0)} ms`);
  }
});

test("seq2seqParameterCount is the model's count (BART, PEGASUS, the tiny preset)", (t) => {
  for (const family of ["bart", "pegasus"]) {
    const m = Seq2SeqModel.load(path.join(FIXTURES, family));
    t.is(seq2seqParameterCount(m.config), m.parameterCount, family);
  }
  const tiny = Seq2SeqModel.create({ preset: "tiny" });
  t.is(seq2seqParameterCount(tiny.config), tiny.parameterCount);
});

test("weights: exact shapes only, tied copies of the shared embedding must equal it", (t) => {
  const bart = path.join(FIXTURES, "bart");
  const e = JSON.parse(fs.readFileSync(path.join(bart, "expected.json"), "utf8")) as Expected;
  const reference = run(Seq2SeqModel.load(bart), e).logits;
  const dir = tmpDir(t, "dpsm-s2s-weights-");
  fs.copyFileSync(path.join(bart, "config.json"), path.join(dir, "config.json"));
  const file = path.join(dir, "model.safetensors");
  const parts = readParts(path.join(bart, "model.safetensors"));
  const shared = parts.header["model.shared.weight"] as TensorEntry;
  const sharedBytes = parts.data.subarray(shared.data_offsets[0], shared.data_offsets[1]);
  const withHead = (bytes: Buffer) => {
    const header = { ...parts.header, "lm_head.weight": { ...shared } };
    writeParts(
      file,
      repack({ header, data: parts.data }, (k, x) => (k === "lm_head.weight" ? { ...x, bytes } : x)),
    );
  };
  // transformers' layout with the head stored: it equals the shared embedding, and loads the same.
  withHead(sharedBytes);
  t.deepEqual(run(Seq2SeqModel.load(dir), e).logits, reference);
  const changed = Buffer.from(sharedBytes);
  changed[5] = changed[5]! ^ 1;
  withHead(changed);
  t.throws(() => Seq2SeqModel.load(dir), {
    message: new RegExp(
      `^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} does not match the bart config: mis-shaped \\[lm_head\\.weight ` +
        `\\(differs from model\\.shared\\.weight, which it is tied to`,
    ),
  });
  const ln = "model.encoder.layernorm_embedding.weight";
  writeParts(
    file,
    repack(parts, (k, x) => (k === ln ? { ...x, shape: [1], bytes: x.bytes.subarray(0, 4) } : x)),
  );
  t.throws(() => Seq2SeqModel.load(dir), {
    message: /mis-shaped \[model\.encoder\.layernorm_embedding\.weight \(file \[1\], model \[32\]\)\]/,
  });
  writeParts(file, { ...parts, data: Buffer.concat([Buffer.alloc(4), parts.data]) });
  t.throws(() => Seq2SeqModel.load(dir), { message: /^safetensors: .*model\.safetensors: .*4 bytes unaccounted for/ });
});
