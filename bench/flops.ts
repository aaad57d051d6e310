// The model FLOPs that `npm run bench:train-step` divides by: PaLM's accounting (Chowdhery et al. 2022, app. B),
// the one nanoGPT's estimate_mfu uses, so the utilisation reads the same as theirs.
import { gpt2ParameterCount, type GPT2Config } from "../lib/index.ts";

/**
 * Training FLOPs per token of a GPT-2 step (forward + backward) over rows of `tokens` positions:
 * 6·P + 12·L·T·E, where P counts the parameters that take part in matmuls (all but the position embeddings;
 * the token embedding once, as the tied LM head), and 12·L·T·E is attention's two T × T products (scores,
 * weighted values), forward and backward, counted over the full T × T as PaLM does (not the causal half).
 * LayerNorm, GELU, softmax, the loss and the optimiser are left out.
 */
export function trainFlopsPerToken(
  c: Pick<GPT2Config, "vocab_size" | "n_positions" | "n_embd" | "n_layer">,
  tokens: number,
) {
  const matmulParameters = gpt2ParameterCount(c) - c.n_positions * c.n_embd;
  return 6 * matmulParameters + 12 * c.n_layer * tokens * c.n_embd;
}

/** Model FLOPs utilisation: the model FLOPs a rate of tokens/s does, over the device's peak FLOP/s. */
export function mfu(flopsPerToken: number, tokensPerSecond: number, peakFlops: number): number {
  return (flopsPerToken * tokensPerSecond) / peakFlops;
}

// Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's data sheets, by the name CUDA reports; the first
// match wins, so the H100's PCIe and NVL forms come before the SXM one.
const BF16_PEAKS: [RegExp, string, number][] = [
  [/H100.*PCIe/i, "H100 PCIe", 756e12],
  [/H100 NVL/i, "H100 NVL", 835e12],
  [/H100/i, "H100 SXM", 989e12],
  [/H200/i, "H200", 989e12],
  [/A100/i, "A100", 312e12],
  [/L40S/i, "L40S", 362e12],
  [/\bL4\b/i, "L4", 121e12],
];

/** The data-sheet bf16 peak of a GPU by its CUDA name, or undefined for one not in the table. */
export function gpuBf16Peak(name: string): { model: string; flops: number } | undefined {
  const hit = BF16_PEAKS.find(([re]) => re.test(name));
  return hit && { model: hit[1], flops: hit[2] };
}
