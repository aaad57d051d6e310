// The Evaluator against a plain reference on the same probabilities: logits from the model, softmax and
// every metric recomputed in float64 here (ECE through lib/metrics/calibration.ts's definition).
import path from "node:path";

import test from "ava";

import { Evaluator, GPT2Model, prepareLanguageModelData, type PackedTokens } from "../lib/index.ts";
import { adaptiveCalibrationError, brierDecomposition, expectedCalibrationError } from "../lib/metrics/calibration.ts";
import type { BrierDecomposition, EvalMetrics } from "../lib/native.ts";
import { readParts, type TensorEntry, writeParts } from "./helpers/safetensors.ts";
import { tmpDir } from "./helpers/tmp.ts";
import { briefTrainedGpt2 } from "./helpers/trained-gpt2.ts";

interface Ref {
  nll: number;
  accuracy: number;
  brier: number;
  spherical: number;
  ece10: number;
  ece100: number;
  adaptiveEce10: number;
  brierDecomposition: BrierDecomposition;
  tokens: number;
}

function reference(model: GPT2Model, data: PackedTokens, sequences: number, temperature: number): Ref {
  const L = data.contextLength;
  const V = model.config.vocab_size;
  const conf: number[] = [];
  const hit: number[] = [];
  let nll = 0;
  let brier = 0;
  let spherical = 0;
  for (let s = 0; s < sequences; s++) {
    const seq = data.tokens.subarray(s * L, (s + 1) * L);
    const logits = model.logits({ ids: Int32Array.from(seq.subarray(0, L - 1)), batch: 1, length: L - 1 });
    for (let j = 0; j < L - 1; j++) {
      if (j + 1 >= data.lengths[s]!) continue;
      const y = seq[j + 1]!;
      const z = logits.subarray(j * V, (j + 1) * V);
      let m = -Infinity;
      let arg = 0;
      for (let k = 0; k < V; k++) {
        const v = z[k]! / temperature;
        if (v > m) {
          m = v;
          arg = k;
        }
      }
      let sum = 0;
      let sq = 0;
      for (let k = 0; k < V; k++) sum += Math.exp(z[k]! / temperature - m);
      for (let k = 0; k < V; k++) sq += (Math.exp(z[k]! / temperature - m) / sum) ** 2;
      const py = Math.exp(z[y]! / temperature - m) / sum;
      nll -= Math.log(py);
      brier += 1 - 2 * py + sq;
      spherical += py / Math.sqrt(sq);
      conf.push(1 / sum);
      hit.push(arg === y ? 1 : 0);
    }
  }
  const n = conf.length;
  return {
    tokens: n,
    nll: nll / n,
    accuracy: hit.reduce((a, b) => a + b, 0) / n,
    brier: brier / n,
    spherical: spherical / n,
    ece10: expectedCalibrationError(conf, hit, 10),
    ece100: expectedCalibrationError(conf, hit, 100),
    adaptiveEce10: adaptiveCalibrationError(conf, hit, 10),
    brierDecomposition: brierDecomposition(conf, hit, 10),
  };
}

/** Adaptive ECE and the top-1 Brier decomposition against the float64 reference's. */
function sameCalibration(m: EvalMetrics, ref: Ref): string[] {
  const wrong: string[] = [];
  if (Math.abs(m.adaptiveEce10 - ref.adaptiveEce10) > 1e-6) wrong.push(`adaptiveEce10 ${m.adaptiveEce10}`);
  for (const [k, v] of Object.entries(ref.brierDecomposition)) {
    const got = m.brierDecomposition[k as keyof BrierDecomposition];
    if (!(Math.abs(got - v) <= 1e-6)) wrong.push(`${k} ${got} vs ${v}`);
  }
  return wrong;
}

const relClose = (a: number, b: number, tol: number) => Math.abs(a - b) <= tol * Math.max(1e-3, Math.abs(b));

test("every metric equals the float64 reference at T = 1 and T = 1.7, from one pass", async (t) => {
  // A briefly initialised model is still far from uniform enough to make the metrics non-trivial.
  const model = GPT2Model.create({ vocab_size: 50257, n_positions: 64, n_embd: 32, n_layer: 2, n_head: 2, seed: 5 });
  const data = await prepareLanguageModelData({ source: "wikitext-2", split: "valid", contextLength: 33 });
  const ev = new Evaluator(model, { batchSize: 3, maxSequences: 5 });
  const [m1, m17] = await ev.evaluateAt(data, [1, 1.7]);
  for (const [m, T] of [
    [m1!, 1],
    [m17!, 1.7],
  ] as const) {
    const ref = reference(model, data, 5, T);
    t.is(m.tokens, ref.tokens);
    t.is(m.temperature, T);
    for (const key of ["nll", "accuracy", "brier", "spherical"] as const) {
      t.true(relClose(m[key], ref[key], 1e-5), `T=${T} ${key}: ${m[key]} vs ${ref[key]}`);
    }
    t.true(Math.abs(m.ece10 - ref.ece10) < 1e-6, `T=${T} ece10: ${m.ece10} vs ${ref.ece10}`);
    t.true(Math.abs(m.ece100 - ref.ece100) < 1e-6, `T=${T} ece100: ${m.ece100} vs ${ref.ece100}`);
    t.deepEqual(sameCalibration(m, ref), [], `T=${T}`);
    t.true(relClose(m.ppl, Math.exp(ref.nll), 1e-5));
    t.is(
      m.bins10.reduce((a, b) => a + b.count, 0),
      ref.tokens,
    );
    t.is(m.bins100.length, 100);
  }
  const single = await ev.evaluate(data);
  t.is(single.nll, m1!.nll);
});

test("temperature scaling: the fitted T minimises the reference NLL", async (t) => {
  // An untrained model's best temperature is infinite (uniform beats it); a few real training steps give
  // one with a finite optimum to find.
  const { model, valid: data } = await briefTrainedGpt2({ n_embd: 32, n_layer: 2, seed: 6, steps: 40 });
  const ev = new Evaluator(model, { batchSize: 4, maxSequences: 4 });
  const fit = await ev.fitTemperature(data, { min: 0.25, max: 4, points: 41 });
  t.is(fit.grid.length, 41);
  t.true(fit.temperature > 0.3 && fit.temperature < 3.5, `T* = ${fit.temperature} at the grid's edge`);
  t.log(`fitted T = ${fit.temperature.toFixed(3)}`);
  const at = (T: number) => reference(model, data, 4, T).nll;
  const best = at(fit.temperature);
  // No temperature near the fit does better (a float64 check around the optimum).
  for (const f of [0.97, 1.03]) t.true(best <= at(fit.temperature * f) + 1e-9, `T*=${fit.temperature} not a minimum`);
  t.true(best <= Math.min(...fit.grid.map((g) => g.nll)) + 1e-6);
  // The trained model's confidences spread over the bins: adaptive ECE and the Brier decomposition against the
  // float64 reference where they are not trivial (T = 0.1 spreads them over the bins).
  for (const T of [1, 0.1]) {
    const m = await ev.evaluate(data, { temperature: T });
    const ref = reference(model, data, 4, T);
    t.deepEqual(sameCalibration(m, ref), [], `T=${T}`);
    t.log(`T=${T}: bins ${m.bins10.map((b) => b.count).join(",")}`);
    if (T < 1) {
      t.true(m.bins10.filter((b) => b.count > 0).length >= 2, `T=${T}: confidences in one bin`);
      t.true(ref.brierDecomposition.withinVariance > 0 && ref.brierDecomposition.reliability > 0);
    }
  }
});

test("adaptive ECE with every max p tied: each bin counts the run's mean hit, natively as in the reference", async (t) => {
  // ln_f's weight 0 makes every position's logits wte·ln_f.bias, so every token gets the same fp32 max p, its
  // argmax " ," (id 837, made the argmax by lengthening its embedding) a hit on 10 of the 160 targets. One tied
  // run crosses every equal-mass cut: each bin's accuracy is the run's, so AdaECE-10 = |accuracy − max p| = ECE-10.
  // Binning the run misses first would give nine all-miss bins (about 0.17 here).
  const dir = tmpDir(t, "dpsm-eval-ties-");
  GPT2Model.create({ vocab_size: 50257, n_positions: 64, n_embd: 16, n_layer: 1, n_head: 2, seed: 7 }).save(dir);
  const file = path.join(dir, "model.safetensors");
  const parts = readParts(file);
  const f32 = (name: string) => {
    const [from, to] = (parts.header[name] as TensorEntry).data_offsets;
    return new Float32Array(parts.data.buffer, parts.data.byteOffset + from, (to - from) / 4);
  };
  const wte = f32("transformer.wte.weight").subarray(837 * 16, 838 * 16);
  const bias = f32("transformer.ln_f.bias");
  f32("transformer.ln_f.weight").fill(0);
  for (let i = 0; i < 16; i++) {
    wte[i]! *= 10;
    bias[i] = 12 * wte[i]!;
  }
  writeParts(file, parts);
  const model = GPT2Model.load(dir);
  const data = await prepareLanguageModelData({ source: "wikitext-2", split: "valid", contextLength: 33 });
  const m = await new Evaluator(model, { batchSize: 3, maxSequences: 5 }).evaluate(data);
  const ref = reference(model, data, 5, 1);
  t.is(m.tokens, 160);
  t.is(m.accuracy, 10 / 160);
  const full = m.bins10.filter((b) => b.count > 0);
  t.is(full.length, 1);
  const tied = Math.abs(m.accuracy - full[0]!.confidence);
  t.true(tied > 0.05 && tied < 0.1, `max p ${full[0]!.confidence}`);
  t.true(Math.abs(m.adaptiveEce10 - tied) < 1e-6, `native ${m.adaptiveEce10} vs ${tied}`);
  t.true(Math.abs(ref.adaptiveEce10 - tied) < 1e-6, `reference ${ref.adaptiveEce10} vs ${tied}`);
  t.deepEqual(sameCalibration(m, ref), []);
});

test("bad evaluator input is named", async (t) => {
  const model = GPT2Model.create({ vocab_size: 50257, n_positions: 64, n_embd: 16, n_layer: 1, n_head: 2 });
  const data = await prepareLanguageModelData({ source: "wikitext-2", split: "valid", contextLength: 33 });
  const ev = new Evaluator(model);
  await t.throwsAsync(ev.evaluate(data, { temperature: 0 }), { message: /temperature: Too small/ });
  await t.throwsAsync(ev.evaluateAt(data, []), { message: /temperatures/ });
  await t.throwsAsync(ev.fitTemperature(data, { min: 2, max: 1 }), { message: /grid\.max/ });
  t.throws(() => new Evaluator(model, { batchSize: 0 }), { message: /batchSize/ });
  const long = await prepareLanguageModelData({ source: "wikitext-2", split: "valid", contextLength: 80 });
  await t.throwsAsync(ev.evaluate(long), {
    message: /^data: sequences of up to 80 tokens exceed the model's 64 positions/,
  });
  await t.throwsAsync(ev.evaluate(null as never), {
    instanceOf: TypeError,
    message: /^data: expected packed sequences \(prepareLanguageModelData\) or encoder-decoder examples.*got null$/,
  });
  await t.throwsAsync(ev.fitTemperature({ ...data, lengths: [1, 2] } as never), {
    message: /^valid\.lengths: expected an Int32Array/,
  });
  await t.throwsAsync(ev.evaluate({ ...data, contextLength: "33" } as never), {
    message: /^data\.contextLength: expected an integer >= 2, got 33/,
  });
  const examples = {
    sourceTokens: new Int32Array(4),
    sourceLengths: new Int32Array([2, 2]),
    targetTokens: new Int32Array(4),
    targetLengths: new Int32Array([2, 2]),
    maxSource: 2,
    maxTarget: 2,
  };
  await t.throwsAsync(ev.evaluate(examples as never), {
    message: /^data: a GPT-2 takes packed sequences/,
  });
  const small = GPT2Model.create({ vocab_size: 1000, n_positions: 64, n_embd: 16, n_layer: 1, n_head: 2 });
  await t.throwsAsync(new Evaluator(small).evaluate(data), {
    message: /^data: sequence 0 holds id \d+ at position \d+, outside the model's vocabulary \[0, 1000\)/,
  });
  const cut = { ...data, lengths: data.lengths.map((n, i) => (i === 3 ? 40 : n)) };
  await t.throwsAsync(ev.evaluate(cut), { message: /^data: sequence 3 has length 40, outside \[0, 33\]/ });
});
