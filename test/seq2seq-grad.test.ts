// BART and PEGASUS training gradients against Hugging Face transformers: test/fixtures/seq2seq/make_grad_fixture.py
// recorded the float64 cross-entropy loss and gradients transformers gives for the committed fixture models on a
// padded batch of real CNN/DailyMail text (the batch of seq2seq-model.test.ts). Our trainer's own step (forward,
// loss, backward: Trainer::gradients through the testing addon, with the product's default trainer document)
// must give the same loss, the same gradient norm for every trained parameter, and the same whole gradient for
// the parameters on the source's path (shared embedding, encoder attention and LayerNorms, cross-attention).
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { probes } from "../dev/testing-addon.ts";
import type { SummarizationArrays } from "../lib/data/summarization.ts";
import { toNativeData } from "../lib/data/model-data.ts";
import { Seq2SeqModel } from "../lib/models/bart.ts";
import { Trainer } from "../lib/trainer.ts";
import { trainerDocument } from "../lib/trainer-options.ts";
import { readHeader, readTensor } from "./helpers/safetensors.ts";

const FIXTURES = path.join(import.meta.dirname, "fixtures", "seq2seq");

interface Expected {
  input_ids: number[][];
  attention_mask: number[][];
}
interface GradFixture {
  transformers: string;
  labels: number[][];
  loss: number;
  gradNorms: Record<string, number>;
  noGrad: string[];
  frozen: string[];
}

// The fixture batch as the Trainer takes data: sources (mask sums as lengths) and the labels as targets.
function examples(e: Expected, g: GradFixture): SummarizationArrays {
  const S = e.input_ids[0]!.length;
  const T = g.labels[0]!.length;
  return {
    ids: e.input_ids.map((_, i) => `fixture-${i}`),
    sourceTokens: Int32Array.from(e.input_ids.flat()),
    sourceLengths: Int32Array.from(e.attention_mask, (m) => m.reduce((a, b) => a + b, 0)),
    // Past a row's length the id is never read (the batch masks it); 0 keeps it inside the vocabulary.
    targetTokens: Int32Array.from(g.labels.flat(), (id) => Math.max(id, 0)),
    targetLengths: Int32Array.from(g.labels, (row) => row.filter((id) => id >= 0).length),
    maxSource: S,
    maxTarget: T,
  };
}

function relErr(ours: Float32Array, ref: Float64Array): { rel: number; abs: number } {
  let num = 0;
  let den = 0;
  let abs = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = ours[i]! - ref[i]!;
    num += d * d;
    den += ref[i]! * ref[i]!;
    abs = Math.max(abs, Math.abs(d));
  }
  return { rel: Math.sqrt(num / den), abs };
}

const norm = (g: Float32Array) => Math.sqrt(g.reduce((a, x) => a + x * x, 0));

for (const family of ["bart", "pegasus"] as const) {
  const dir = path.join(FIXTURES, family);
  const expected = JSON.parse(fs.readFileSync(path.join(dir, "expected.json"), "utf8")) as Expected;
  const fixture = JSON.parse(fs.readFileSync(path.join(dir, "grad.json"), "utf8")) as GradFixture;
  const gradFile = path.join(dir, "grad.safetensors");

  for (const fusedHead of ["auto", false] as const) {
    test(`${family}: the trainer's CE loss and gradients equal transformers' (fusedHead ${fusedHead}, fp32)`, async (t) => {
      const data = examples(expected, fixture);
      const model = Seq2SeqModel.load(dir);
      const trainer = new Trainer({
        model,
        loss: { kind: "ce" },
        data: { train: data, valid: data },
        batchSize: data.ids.length,
        maxSteps: 1,
        fusedHead,
        progress: false,
        log: false,
      });
      const document = trainerDocument(trainer.options, trainer.loss, trainer.distributed);
      const r = await probes.trainingGradients(
        { config: model.config, weights: path.join(dir, "model.safetensors") },
        document,
        toNativeData(data),
      );
      model.dispose();

      const lossErr = Math.abs(r.loss - fixture.loss) / fixture.loss;
      t.true(lossErr <= 1e-6, `loss ${r.loss} vs transformers ${fixture.loss}`);

      // Every parameter transformers trains has a gradient of the same norm here, and nothing else does.
      const ours = Object.keys(r.grads).sort();
      t.deepEqual(ours, Object.keys(fixture.gradNorms).sort());
      t.deepEqual(fixture.noGrad, []);
      // Relative to the norm, or to the largest norm where the exact gradient is 0 (a key projection's bias: adding
      // a constant to every key's score changes no softmax), so both sides hold rounding noise only.
      const floor = 1e-3 * Math.max(...Object.values(fixture.gradNorms));
      let worstNorm = 0;
      let worstName = "";
      for (const [name, refNorm] of Object.entries(fixture.gradNorms)) {
        const e = Math.abs(norm(r.grads[name]!) - refNorm) / Math.max(refNorm, floor);
        if (e > worstNorm) [worstNorm, worstName] = [e, name];
      }
      t.true(worstNorm <= 1e-4, `gradient norm of ${worstName}: relative error ${worstNorm}`);

      // The source's path, entry by entry.
      const names = Object.keys(readHeader(gradFile).header);
      let worst = { rel: 0, name: "" };
      for (const name of names) {
        const { rel, abs } = relErr(r.grads[name]!, readTensor(gradFile, name));
        if (rel > worst.rel) worst = { rel, name };
        t.true(rel <= 1e-5, `${name}: relative error ${rel} (max abs ${abs})`);
      }
      t.log(
        `${family} (transformers ${fixture.transformers}): loss rel ${lossErr.toExponential(1)}; ` +
          `${Object.keys(fixture.gradNorms).length} gradient norms, worst rel ${worstNorm.toExponential(1)} ` +
          `(${worstName}); ${names.length} whole gradients, worst rel ${worst.rel.toExponential(1)} (${worst.name})`,
      );
    });
  }
}
