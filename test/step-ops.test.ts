// The op-list guard (issue 30): one training step's ATen ops, recorded by the testing addon (libtorch's
// RecordFunction hooks, dev/step-ops.ts) while a real Trainer fits a small GPT-2 on WikiText-2, must hold no host
// synchronisation (item / _local_scalar_dense: on a GPU each one stalls the queue), and the step's reductions over
// all parameters (gradient norm, update-to-weight ratio; and AdamW where libtorch has the fused kernel) must cost
// the same number of ops whatever the number of parameter tensors: a per-tensor loop (~4,250 small launches per
// GPT-2 medium step on an H100, host-bound) fails it. The CUDA default (multi-tensor ops) is recorded on the CPU
// by DPSM_STEP_REDUCTIONS; the per-tensor reductions kept for the benchmark show that the guard does fail.
import test from "ava";

import { hostSyncs, recordSteps, type StepOp, topLevel, withReductions } from "../dev/step-ops.ts";
import { prepareLanguageModelData } from "../lib/data/prepare.ts";
import { Trainer } from "../lib/trainer.ts";

const data = {
  train: await prepareLanguageModelData({ source: "wikitext-2", split: "train", contextLength: 17 }),
  valid: await prepareLanguageModelData({ source: "wikitext-2", split: "valid", contextLength: 17 }),
};

/** The steps of a 3-step fit of a GPT-2 with `layers` blocks (4 + 12 × layers parameter tensors). */
async function steps(layers: number, reductions?: "multi-tensor" | "host" | "per-tensor"): Promise<StepOp[][]> {
  return withReductions(reductions, () =>
    recordSteps(() =>
      new Trainer({
        model: { vocab_size: 50257, n_positions: 32, n_embd: 16, n_layer: layers, n_head: 2 },
        loss: { kind: "dpsm", schedule: "linear", warmupSteps: 10 },
        data,
        maxSteps: 3,
        batchSize: 2,
        evalEvery: 3,
        evalMaxSequences: 2,
        progress: false,
      }).fit(),
    ),
  );
}

/** Top-level ops per part of the last step (steps after the first: nothing lazy left to set up). */
function parts(recorded: StepOp[][]) {
  const last = recorded.at(-1)!;
  const count = (scope?: string) => topLevel(last, scope).length;
  return {
    step: count(),
    optimizer: count("dpsm::optimizer"),
    gradientNorm: count("dpsm::gradient_norm"),
    // the update ratio's own ops (the update it measures runs inside its scope)
    updateRatio: topLevel(last, "dpsm::update_ratio").filter((o) => !o.scopes.includes("dpsm::adamw_update")).length,
    adamw: count("dpsm::adamw_update"),
    fused: last.some((o) => o.name === "aten::_fused_adamw_"),
  };
}

for (const reductions of ["host", "multi-tensor"] as const) {
  test.serial(`a step holds no host synchronisation and a constant optimiser part (${reductions})`, async (t) => {
    const small = await steps(1, reductions);
    const large = await steps(4, reductions);
    t.is(small.length, 3);
    t.is(large.length, 3);
    for (const step of [...small, ...large]) {
      // Two CPU kernels read host memory, with no device to wait for: the fused loss's target check
      // (native/core/loss/fused_loss.cpp's CPU branch; on CUDA the kernel flags bad targets on the device) and
      // libtorch 2.x's CPU _fused_adamw_ (its step count and gradient scale; the CUDA kernel reads them on the
      // device). Every other read counts.
      const exempt = ["dpsm::fused_loss", "aten::_fused_adamw_"];
      const syncs = hostSyncs(step).filter((o) => !o.within.some((w) => exempt.includes(w)));
      t.deepEqual(
        syncs.map((o) => `${o.name} in ${o.scopes.join(" > ")}`),
        [],
        "host synchronisations inside a step",
      );
    }
    const a = parts(small);
    const b = parts(large);
    t.log(`top-level ops per step, 16 → 52 parameter tensors: ${JSON.stringify(a)} → ${JSON.stringify(b)}`);
    // The step's ops per part, whatever the number of parameter tensors (16 against 52).
    t.is(b.gradientNorm, a.gradientNorm, "gradient norm: a per-tensor loop");
    t.is(b.updateRatio, a.updateRatio, "update ratio: a per-tensor loop");
    if (a.fused) t.is(b.optimizer, a.optimizer, "optimiser: a per-tensor loop");
    // and a budget: the optimiser part of a step in a few dozen ops (per tensor it was several hundred here).
    t.true(a.gradientNorm + a.updateRatio <= 40, `gradient norm + update ratio: ${a.gradientNorm + a.updateRatio} ops`);
  });
}

test.serial("the guard fails on per-tensor reductions (DPSM_STEP_REDUCTIONS=per-tensor)", async (t) => {
  const a = parts(await steps(1, "per-tensor"));
  const b = parts(await steps(4, "per-tensor"));
  t.log(`per-tensor reductions, 16 → 52 parameter tensors: ${JSON.stringify(a)} → ${JSON.stringify(b)}`);
  t.true(b.gradientNorm > a.gradientNorm && b.updateRatio > a.updateRatio, "the per-tensor loops were not seen");
});
