// Generation for BART and PEGASUS against Hugging Face transformers' own `generate`:
// test/fixtures/seq2seq/make_generate_fixture.py ran it on the committed fixture models (greedy and beam search
// with length penalty, min/max length, no-repeat n-grams, early stopping true and false, a forced BOS, and a
// frequent token declared EOS so hypotheses finish part-way) over a padded batch of real CNN/DailyMail
// articles. Ours must return the same ids.
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { GPT2Model } from "../lib/index.ts";
import { Seq2SeqModel, type Seq2SeqGenerateOptions } from "../lib/models/bart.ts";
import { tmpDir } from "./helpers/tmp.ts";

const FIXTURES = path.join(import.meta.dirname, "fixtures", "seq2seq");

interface Fixture {
  input_ids: number[][];
  attention_mask: number[][];
  settings: Record<string, { options: Record<string, unknown>; sequences: number[][] }>;
}

// transformers' keyword arguments under the options' names.
const NAMES: Record<string, keyof Seq2SeqGenerateOptions> = {
  num_beams: "numBeams",
  max_length: "maxLength",
  min_length: "minLength",
  length_penalty: "lengthPenalty",
  no_repeat_ngram_size: "noRepeatNgramSize",
  early_stopping: "earlyStopping",
  eos_token_id: "eosTokenId",
  forced_bos_token_id: "forcedBosTokenId",
};

function options(hf: Record<string, unknown>): Seq2SeqGenerateOptions {
  return Object.fromEntries(
    Object.entries(hf).map(([k, v]) => {
      if (!(k in NAMES)) throw new Error(`no option for transformers' ${k}`);
      return [NAMES[k], v];
    }),
  ) as Seq2SeqGenerateOptions;
}

function source(f: Fixture): { ids: Int32Array; mask: Int32Array; length: number } {
  return {
    ids: Int32Array.from(f.input_ids.flat()),
    mask: Int32Array.from(f.attention_mask.flat()),
    length: f.input_ids[0]!.length,
  };
}

for (const family of ["bart", "pegasus"]) {
  test(`${family}: generate gives transformers' ids for every setting`, async (t) => {
    const dir = path.join(FIXTURES, family);
    const f = JSON.parse(fs.readFileSync(path.join(dir, "generate.json"), "utf8")) as Fixture;
    const model = Seq2SeqModel.load(dir);
    let examples = 0;
    for (const [name, s] of Object.entries(f.settings)) {
      const got = await model.generate(source(f), options(s.options));
      t.deepEqual(
        got.map((r) => Array.from(r)),
        s.sequences,
        `${family} ${name}`,
      );
      examples += s.sequences.length;
      // One example per native call, with progress after each: the same ids.
      const progress: number[] = [];
      const chunked = await model.generate(source(f), options(s.options), {
        batchSize: 1,
        onProgress: (done, total) => progress.push(done / total),
      });
      t.deepEqual(chunked, got, `${family} ${name}, one example per call`);
      t.deepEqual(
        progress,
        s.sequences.map((_, i) => (i + 1) / s.sequences.length),
      );
    }
    t.true(examples >= 20);
  });
}

test("generate: bad options are named errors", async (t) => {
  const dir = path.join(FIXTURES, "bart");
  const f = JSON.parse(fs.readFileSync(path.join(dir, "generate.json"), "utf8")) as Fixture;
  const model = Seq2SeqModel.load(dir);
  const src = source(f);
  await t.throwsAsync(model.generate(src, { numBeams: 0 }), {
    instanceOf: RangeError,
    message: /options\.numBeams/,
  });
  await t.throwsAsync(model.generate(src, { minLength: 12, maxLength: 10 }), {
    instanceOf: RangeError,
    message: /options\.minLength: must not exceed maxLength/,
  });
  await t.throwsAsync(model.generate(src, { maxLength: 129 }), {
    instanceOf: RangeError,
    message: /options\.maxLength: must not exceed max_position_embeddings 128/,
  });
  await t.throwsAsync(model.generate(src, { eosTokenId: 264 }), {
    instanceOf: RangeError,
    message: /options\.eosTokenId: must be below vocab_size 264/,
  });
  await t.throwsAsync(model.generate(src, { numBeams: 2, topK: 3 } as Seq2SeqGenerateOptions), {
    instanceOf: RangeError,
    message: /unknown option\(s\) "topK"/,
  });
  await t.throwsAsync(model.generate({ ...src, length: 7 }), { instanceOf: RangeError, message: /batch × length/ });
  // Issue 29: numBeams 1e9 allocated without bound; generate(null) was a bare TypeError.
  await t.throwsAsync(model.generate(src, { numBeams: 1e9 }), {
    instanceOf: RangeError,
    message: /^Seq2SeqModel\.generate options\.numBeams: .*64/,
  });
  await t.throwsAsync(model.generate(null as unknown as typeof src), {
    instanceOf: TypeError,
    message: /^Seq2SeqModel\.generate source: /,
  });
  await t.throwsAsync(model.generate({ ...src, mask: [1, 2] } as unknown as typeof src), {
    instanceOf: TypeError,
    message: /^Seq2SeqModel\.generate source\.mask: expected an Int32Array/,
  });
});

test("a checkpoint's generation_config.json with num_beams or max_length out of bounds is refused at load", (t) => {
  const tmp = tmpDir(t, "dpsm-generate-config-");
  for (const [field, value, message] of [
    ["num_beams", 1e9, /generation_config\.json\.num_beams: .*64/],
    ["max_length", 100_000, /generation_config\.json\.max_length: must not exceed max_position_embeddings 128/],
  ] as const) {
    const dir = path.join(tmp, field);
    fs.cpSync(path.join(FIXTURES, "bart"), dir, { recursive: true });
    const file = path.join(dir, "generation_config.json");
    fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, "utf8")), [field]: value }));
    const e = t.throws(() => Seq2SeqModel.load(dir), { instanceOf: RangeError });
    t.true(e.message.startsWith(file), e.message);
    t.regex(e.message, message);
  }
});

test("the addon's one generate: an encoder-decoder needs its source mask, a GPT-2 reads none", async (t) => {
  const ids = new Int32Array([1, 2, 3]);
  const bart = Seq2SeqModel.load(path.join(import.meta.dirname, "fixtures", "seq2seq", "bart"));
  t.throws(() => bart.native.generate({ ids, batch: 1, length: 3 }, "{}"), {
    message: /^mask: expected an Int32Array \(an encoder-decoder's source mask\)/,
  });
  const gpt2 = GPT2Model.load(path.join(import.meta.dirname, "fixtures", "gpt2"));
  const json = JSON.stringify({ maxNewTokens: 2, topK: 1, temperature: 1, seed: 0 });
  const rows = await gpt2.native.generate({ ids: Int32Array.from([1, 2, 3, 4, 5, 6]), batch: 2, length: 3 }, json);
  t.deepEqual(rows, [
    await gpt2.generate(Int32Array.from([1, 2, 3]), { maxNewTokens: 2 }),
    await gpt2.generate(Int32Array.from([4, 5, 6]), { maxNewTokens: 2 }),
  ]);
});
