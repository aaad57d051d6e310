// bench:train-step's FLOP accounting (bench/flops.ts) against counts worked out by hand from the presets.
import test from "ava";

import { gpuBf16Peak, mfu, trainFlopsPerToken } from "../bench/flops.ts";
import { GPT2_PRESETS } from "../lib/models/gpt2.ts";

test("training FLOPs per token: 6·(P − position embeddings) + 12·L·T·E", (t) => {
  // tiny: P = (50257 + 256)·128 + 4·(12·128² + 13·128) + 2·128 = 7,259,008 (what PyTorch counts for the same
  // model), less 256·128 position weights = 7,226,240; attention at T = 128: 12·4·128·128 = 786,432.
  t.is(trainFlopsPerToken(GPT2_PRESETS.tiny, 128), 6 * 7_226_240 + 786_432);
  // small (124M): P = 124,439,808, less 1024·768 = 123,653,376; at T = 1024: 12·12·1024·768 = 113,246,208.
  t.is(trainFlopsPerToken(GPT2_PRESETS.small, 1024), 6 * 123_653_376 + 113_246_208);
});

test("MFU: model FLOP/s over the peak", (t) => {
  t.is(mfu(1e9, 50, 1e11), 0.5);
});

test("GPU peaks by the name CUDA reports; an unknown GPU has none", (t) => {
  t.is(gpuBf16Peak("NVIDIA H100 80GB HBM3")?.model, "H100 SXM");
  t.is(gpuBf16Peak("NVIDIA H100 PCIe")?.flops, 756e12);
  t.is(gpuBf16Peak("NVIDIA H200")?.flops, 989e12);
  t.is(gpuBf16Peak("NVIDIA A100-SXM4-80GB")?.model, "A100");
  t.is(gpuBf16Peak("NVIDIA L40S")?.model, "L40S");
  t.is(gpuBf16Peak("NVIDIA L4")?.model, "L4");
  t.is(gpuBf16Peak("Tesla T4"), undefined);
});
