// Bounds on a model's dimensions, checked (with each family's parameter estimate, beside its schema) before
// anything is allocated: a config.json with n_layer 1e9 is refused in milliseconds instead of allocating
// gigabytes first. Generous: GPT-2 large is 36 layers × 1280 × 20 heads, 774M parameters.
import type { z } from "zod";

export const MODEL_LIMITS = {
  layers: 256,
  /** n_embd, d_model */
  width: 65_536,
  heads: 1_024,
  /** n_inner, encoder_ffn_dim, decoder_ffn_dim */
  ffn: 262_144,
  vocab: 2 ** 24,
  positions: 2 ** 20,
  /** 2^34 parameters: 64 GiB in fp32, before gradients and optimiser state */
  parameters: 2 ** 34,
} as const;

/**
 * Bounds on generation settings. Beam search holds numBeams hypotheses and numBeams × vocabulary scores per
 * example at every step, so numBeams 1e9 allocated without bound; summarisation checkpoints use 4 to 8.
 */
export const GENERATION_LIMITS = {
  beams: 64,
} as const;

const gib = (bytes: number) => `${(bytes / 2 ** 30).toLocaleString("en-US", { maximumFractionDigits: 1 })} GiB`;

/**
 * The message for a model of `count` parameters above {@link MODEL_LIMITS}.parameters (undefined when it is
 * within it, or not a number because a dimension was invalid and already reported).
 */
export function parameterLimitMessage(count: number): string | undefined {
  if (!Number.isFinite(count) || count <= MODEL_LIMITS.parameters) return undefined;
  return (
    `a model of these dimensions has ${count.toLocaleString("en-US")} parameters, which would need ` +
    `${(count * 4).toLocaleString("en-US")} bytes (${gib(count * 4)}) in fp32; the limit is ` +
    `${MODEL_LIMITS.parameters.toLocaleString("en-US")} parameters (${gib(MODEL_LIMITS.parameters * 4)})`
  );
}

/** Adds {@link parameterLimitMessage}'s issue to a zod refinement (at the config's root). */
export function checkParameterCount(count: number, ctx: z.RefinementCtx): void {
  const message = parameterLimitMessage(count);
  if (message !== undefined) ctx.addIssue({ code: "custom", path: [], message });
}
