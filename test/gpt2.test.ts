// GPT-2 against an independent implementation (test/fixtures/gpt2/make_fixture.py: float64 Python torch,
// written from the paper and Hugging Face's GPT2LMHeadModel), and the Hugging Face layout of what we save.
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { GPT2_PRESETS, GPT2Model, gpt2ParameterCount } from "../lib/index.ts";
import { readHeader, readTensor, renameTensors } from "./helpers/safetensors.ts";
import { tmpDir } from "./helpers/tmp.ts";

const FIXTURE = path.join(import.meta.dirname, "fixtures", "gpt2");

interface Expected {
  input_ids: number[][];
  columns: number[];
  outputs: {
    logits_at_columns: number[][];
    logsumexp: number[];
    logits_l2: number[];
    top5_ids: number[][];
    top5_logits: number[][];
  }[];
}
const expected = JSON.parse(fs.readFileSync(path.join(FIXTURE, "expected.json"), "utf8")) as Expected;

function compareWithFixture(model: GPT2Model): {
  maxLogitErr: number;
  maxLseErr: number;
  maxL2Rel: number;
  argmaxChecked: number;
} {
  const B = expected.input_ids.length;
  const T = expected.input_ids[0]!.length;
  const V = model.config.vocab_size;
  const logits = model.logits({ ids: Int32Array.from(expected.input_ids.flat()), batch: B, length: T });
  let maxLogitErr = 0;
  let maxLseErr = 0;
  let maxL2Rel = 0;
  let argmaxChecked = 0;
  for (let b = 0; b < B; b++) {
    const out = expected.outputs[b]!;
    for (let t = 0; t < T; t++) {
      const row = logits.subarray((b * T + t) * V, (b * T + t + 1) * V);
      expected.columns.forEach((c, j) => {
        maxLogitErr = Math.max(maxLogitErr, Math.abs(row[c]! - out.logits_at_columns[t]![j]!));
      });
      let m = -Infinity;
      let arg = 0;
      let sq = 0;
      for (let k = 0; k < V; k++) {
        if (row[k]! > m) {
          m = row[k]!;
          arg = k;
        }
        sq += row[k]! ** 2;
      }
      let s = 0;
      for (let k = 0; k < V; k++) s += Math.exp(row[k]! - m);
      maxLseErr = Math.max(maxLseErr, Math.abs(m + Math.log(s) - out.logsumexp[t]!));
      maxL2Rel = Math.max(maxL2Rel, Math.abs(Math.sqrt(sq) - out.logits_l2[t]!) / out.logits_l2[t]!);
      const [top1, top2] = out.top5_logits[t]!;
      if (top1! - top2! > 1e-3) {
        argmaxChecked++;
        if (arg !== out.top5_ids[t]![0]) maxLogitErr = Infinity;
      }
    }
  }
  return { maxLogitErr, maxLseErr, maxL2Rel, argmaxChecked };
}

test("logits equal the independent float64 GPT-2 on real WikiText-2 tokens (Hugging Face weights file)", (t) => {
  const model = GPT2Model.load(FIXTURE);
  t.deepEqual(
    { ...model.config },
    {
      model_type: "gpt2",
      vocab_size: 50257,
      n_positions: 64,
      n_embd: 16,
      n_layer: 2,
      n_head: 2,
      layer_norm_epsilon: 1e-5,
      // config.json's (the fixture keeps transformers' default)
      resid_pdrop: 0.1,
    },
  );
  const r = compareWithFixture(model);
  t.log(`max |logit error| ${r.maxLogitErr.toExponential(2)}, max |logsumexp error| ${r.maxLseErr.toExponential(2)}`);
  t.true(r.maxLogitErr < 1e-4, JSON.stringify(r));
  t.true(r.maxLseErr < 1e-4, JSON.stringify(r));
  t.true(r.maxL2Rel < 1e-5, JSON.stringify(r));
  t.true(r.argmaxChecked > 40, "too few positions with a clear argmax to check");
});

test("weights without the transformer. prefix (the original GPT-2 checkpoints) load the same", (t) => {
  const dir = tmpDir(t, "dpsm-gpt2-");
  fs.copyFileSync(path.join(FIXTURE, "config.json"), path.join(dir, "config.json"));
  renameTensors(path.join(FIXTURE, "model.safetensors"), path.join(dir, "model.safetensors"), (k) =>
    k.replace(/^transformer\./, ""),
  );
  const r = compareWithFixture(GPT2Model.load(dir));
  t.true(r.maxLogitErr < 1e-4);
});

test("save writes Hugging Face's GPT2LMHeadModel layout and config, and loads back bit for bit", (t) => {
  const dir = tmpDir(t, "dpsm-gpt2-");
  const model = GPT2Model.create({ vocab_size: 50257, n_positions: 64, n_embd: 16, n_layer: 2, n_head: 2, seed: 3 });
  model.save(dir);
  const ours = readHeader(path.join(dir, "model.safetensors")).header;
  const theirs = readHeader(path.join(FIXTURE, "model.safetensors")).header;
  t.deepEqual(Object.keys(ours).sort(), Object.keys(theirs).sort());
  for (const [k, v] of Object.entries(theirs)) t.deepEqual(ours[k]!.shape, v.shape, k);
  t.true(Object.values(ours).every((e) => e.dtype === "F32"));
  const config = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  t.like(config, {
    model_type: "gpt2",
    architectures: ["GPT2LMHeadModel"],
    n_embd: 16,
    n_layer: 2,
    n_head: 2,
    n_positions: 64,
    vocab_size: 50257,
    activation_function: "gelu_new",
    tie_word_embeddings: true,
  });
  const ids = Int32Array.from(expected.input_ids.flat());
  const a = model.logits({ ids, batch: 2, length: 40 });
  const b = GPT2Model.load(dir).logits({ ids, batch: 2, length: 40 });
  t.deepEqual(a, b);
});

test("createAsync, saveAsync and loadAsync run off the event loop and match the synchronous forms", async (t) => {
  const dir = tmpDir(t, "dpsm-gpt2-async-");
  const options = { vocab_size: 50257, n_positions: 64, n_embd: 16, n_layer: 2, n_head: 2, seed: 3 };
  const pending = GPT2Model.createAsync(options);
  t.true(pending instanceof Promise);
  const model = await pending;
  const ids = Int32Array.from(expected.input_ids.flat());
  t.deepEqual(
    model.logits({ ids, batch: 2, length: 40 }),
    GPT2Model.create(options).logits({ ids, batch: 2, length: 40 }),
  );
  await model.saveAsync(path.join(dir, "m"));
  t.deepEqual(
    (await GPT2Model.loadAsync(path.join(dir, "m"))).logits({ ids, batch: 2, length: 40 }),
    model.logits({ ids, batch: 2, length: 40 }),
  );
  await t.throwsAsync(GPT2Model.loadAsync(path.join(dir, "none")), {
    message: /GPT2Model\.loadAsync: .*config\.json not found/,
  });
  await t.throwsAsync(GPT2Model.createAsync({ n_embd: 100, n_head: 3 }), {
    message: /model\.n_embd: must be a multiple/,
  });
});

test("generate: maxNewTokens bounded by the model's positions, and the work runs off the event loop", async (t) => {
  const model = GPT2Model.load(FIXTURE); // 64 positions
  const prompt = Int32Array.from(expected.input_ids[0]!.slice(0, 4));
  const bound = {
    instanceOf: RangeError,
    message: /GPT2Model\.generate options\.maxNewTokens: must not exceed .*64 less .* 4 tokens \(60\), got 1000000000/,
  };
  // Refused before any work (an unbounded run of 1e9 tokens would never end).
  await t.throwsAsync(model.generate(prompt, { maxNewTokens: 1e9 }), bound);
  await t.throwsAsync(model.generate(Int32Array.from(Array(65).fill(1)), { maxNewTokens: 0 }), {
    message: /prompt: 65 tokens, more than the model's 64 positions/,
  });
  await t.throwsAsync(model.generate(null as unknown as Int32Array), { message: /prompt: expected an Int32Array/ });
  // The native side holds the same bound for any caller of the addon.
  const native = JSON.stringify({ maxNewTokens: 61, topK: 1, temperature: 1, seed: 0 });
  t.throws(() => model.native.generate({ ids: prompt, batch: 1, length: prompt.length }, native), {
    instanceOf: RangeError,
    message: /maxNewTokens: expected at most the model's 64 positions less the prompt's 4 tokens/,
  });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const pending = model.generate(prompt, { maxNewTokens: 60 });
  const out = await pending;
  clearInterval(timer);
  t.is(out.length, 60, "the whole room up to the positions");
  t.true(ticks > 0, "the event loop ran while generating");
});

test("GPT-2 initialisation: N(0, 0.02), residual projections at 0.02/√(2·n_layer), zero biases, unit LayerNorms", (t) => {
  const dir = tmpDir(t, "dpsm-gpt2-");
  GPT2Model.create({ size: "tiny", seed: 1 }).save(dir);
  const file = path.join(dir, "model.safetensors");
  const std = (name: string) => {
    const x = readTensor(file, name);
    const mean = x.reduce((a, b) => a + b, 0) / x.length;
    return Math.sqrt(x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length);
  };
  const close = (a: number, b: number) => Math.abs(a - b) / b < 0.03;
  t.true(close(std("transformer.wte.weight"), 0.02));
  t.true(close(std("transformer.h.0.attn.c_attn.weight"), 0.02));
  t.true(close(std("transformer.h.3.mlp.c_fc.weight"), 0.02));
  t.true(close(std("transformer.h.1.attn.c_proj.weight"), 0.02 / Math.sqrt(8)));
  t.true(close(std("transformer.h.2.mlp.c_proj.weight"), 0.02 / Math.sqrt(8)));
  t.true(readTensor(file, "transformer.h.0.attn.c_attn.bias").every((v) => v === 0));
  t.true(readTensor(file, "transformer.ln_f.weight").every((v) => v === 1));
});

test("attention is causal: later tokens never change earlier logits", (t) => {
  const model = GPT2Model.load(FIXTURE);
  const ids = Int32Array.from(expected.input_ids[0]!);
  const changed = Int32Array.from(ids);
  for (let i = 20; i < 40; i++) changed[i] = (changed[i]! * 7 + 13) % 50257;
  const V = model.config.vocab_size;
  const a = model.logits({ ids, batch: 1, length: 40 }).subarray(0, 20 * V);
  const b = model.logits({ ids: changed, batch: 1, length: 40 }).subarray(0, 20 * V);
  t.deepEqual(a, b);
});

test("model configs: presets and their sizes; bad sizes and shapes are named", (t) => {
  t.is(
    GPT2Model.create({ size: "tiny" }).parameterCount,
    50257 * 128 + 256 * 128 + 4 * (12 * 128 * 128 + 13 * 128) + 2 * 128,
  );
  t.throws(() => GPT2Model.create({ size: "huge" as "tiny" }), { message: /model\.size: .*got "huge"/ });
  t.throws(() => GPT2Model.create({ n_embd: 100, n_head: 3 }), {
    message: /model\.n_embd: must be a multiple of n_head/,
  });
  t.throws(() => GPT2Model.load("/nonexistent/folder"), { message: /config\.json not found/ });
  t.throws(() => GPT2Model.load(null as never), {
    message: /^GPT2Model\.load: dir: expected a checkpoint folder's path, got null/,
  });
  const dir = tmpDir(t, "dpsm-gpt2-");
  fs.writeFileSync(
    path.join(dir, "config.json"),
    JSON.stringify({ model_type: "gpt2", n_embd: 32, n_layer: 2, n_head: 2, n_positions: 64, vocab_size: 50257 }),
  );
  fs.copyFileSync(path.join(FIXTURE, "model.safetensors"), path.join(dir, "model.safetensors"));
  t.throws(() => GPT2Model.load(dir), { message: /mis-shaped \[transformer\.wte\.weight/ });
});

test("generation: greedy follows the argmax of the logits at each step; seeded top-k repeats itself", async (t) => {
  const model = GPT2Model.load(FIXTURE);
  const V = model.config.vocab_size;
  const prompt = Int32Array.from(expected.input_ids[1]!.slice(0, 6));
  const greedy = await model.generate(prompt, { maxNewTokens: 5 });
  t.is(greedy.length, 5);
  const ids = Array.from(prompt);
  for (const next of greedy) {
    const logits = model
      .logits({ ids: Int32Array.from(ids), batch: 1, length: ids.length })
      .subarray((ids.length - 1) * V);
    let arg = 0;
    for (let k = 1; k < V; k++) if (logits[k]! > logits[arg]!) arg = k;
    t.is(next, arg);
    ids.push(next);
  }
  const a = await model.generate(prompt, { maxNewTokens: 8, topK: 50, temperature: 1.2, seed: 7 });
  t.deepEqual(a, await model.generate(prompt, { maxNewTokens: 8, topK: 50, temperature: 1.2, seed: 7 }));
  await t.throwsAsync(model.generate(Int32Array.from([50257]), { maxNewTokens: 1 }), {
    message: /prompt: expected ids in \[0, 50257\)/,
  });
  await t.throwsAsync(model.generate(prompt, { topK: 0 }), { message: /topK/ });
});

test("config.json dimensions are bounded and the parameter count limited before anything is allocated", (t) => {
  const dir = tmpDir(t, "dpsm-gpt2-");
  fs.copyFileSync(path.join(FIXTURE, "model.safetensors"), path.join(dir, "model.safetensors"));
  const base = JSON.parse(fs.readFileSync(path.join(FIXTURE, "config.json"), "utf8")) as Record<string, unknown>;
  const file = path.join(dir, "config.json");
  const refused = (config: Record<string, unknown>, message: RegExp) => {
    fs.writeFileSync(file, JSON.stringify({ ...base, ...config }));
    const t0 = performance.now();
    const e = t.throws(() => GPT2Model.load(dir), { instanceOf: RangeError });
    const ms = performance.now() - t0;
    t.regex(e.message, message);
    t.true(ms < 1000, `refused after ${ms.toFixed(0)} ms`);
  };
  // The fuzz's n_layer 1e9 allocated 6.6 GB before std::bad_alloc (here it did not return in 5 minutes).
  refused({ n_layer: 1e9 }, new RegExp(`${file}\\.n_layer: Too big: expected number to be <=256, got 1000000000`));
  refused({ n_embd: 2 ** 20 }, /config\.json\.n_embd: Too big: expected number to be <=65536/);
  refused({ n_head: 2048 }, /config\.json\.n_head: Too big: expected number to be <=1024/);
  refused({ vocab_size: 2 ** 40 }, /config\.json\.vocab_size: Too big: expected number to be <=16777216/);
  refused({ n_positions: 1e12 }, /config\.json\.n_positions: Too big: expected number to be <=1048576/);
  // Every dimension within its bound, the whole too large: the message says how many bytes it would need.
  refused(
    { n_layer: 256, n_embd: 65536, n_head: 1024 },
    new RegExp(
      `${file}: a model of these dimensions has 13,197,655,605,248 parameters, which would need ` +
        `52,790,622,420,992 bytes \\(49,165.1 GiB\\) in fp32; the limit is 17,179,869,184 parameters \\(64 GiB\\)`,
    ),
  );
  t.throws(() => GPT2Model.create({ n_layer: 1e9 }), {
    message: /model\.n_layer: Too big: expected number to be <=256/,
  });
  t.throws(() => GPT2Model.create({ n_layer: 256, n_embd: 65536, n_head: 1024 }), {
    message: /^model: a model of these dimensions has 13,197,718,519,808 parameters/,
  });
});

test("gpt2ParameterCount is the model's count (the tiny preset, the fixture) and GPT-2 small's 124,439,808", (t) => {
  t.is(gpt2ParameterCount(GPT2_PRESETS.small), 124_439_808);
  t.is(gpt2ParameterCount(GPT2_PRESETS.tiny), GPT2Model.create({ size: "tiny" }).parameterCount);
  const fixture = GPT2Model.load(FIXTURE);
  t.is(gpt2ParameterCount(fixture.config), fixture.parameterCount);
});
