// The fused kernel against the float64 composite libtorch reference (the seed's formulation: log_softmax,
// exp, nll, one_hot, squared error; autograd for the gradient), on random logits of many shapes. Each
// check runs in C++ (the testing addon's checkAgainstReference) and reports ‖fused − ref‖/‖ref‖ for the loss, the
// kernel's gradient, the autograd op's gradient under a random incoming gradient, and the statistics.
import test, { type ExecutionContext } from "ava";

import {
  type Case,
  describeCase as describe,
  referenceFailures,
  SHAPES,
  SMOOTHED_SPECS,
  SPECS,
  STEP_SPECS,
  W,
} from "../dev/fused-loss-cases.ts";
import { probes, type ReferenceCheck } from "../dev/testing-addon.ts";
import { randInt, rng } from "../dev/random.ts";

async function expectClose(t: ExecutionContext, c: Case, tol: number): Promise<ReferenceCheck> {
  const r = await probes.checkAgainstReference(c);
  t.deepEqual(referenceFailures(c, r, tol), []);
  return r;
}

test.serial("fp32: every kind and schedule at several steps, on many shapes (rel err < 1e-5)", async (t) => {
  let i = 0;
  for (const spec of SPECS) {
    for (const [rows, vocab] of [SHAPES[i % SHAPES.length]!, SHAPES[(i + 3) % SHAPES.length]!]) {
      await expectClose(t, { ...spec, rows, vocab, seed: 1000 + i, ignoreFraction: 0.1 }, 1e-5);
    }
    i++;
  }
});

test.serial("random shapes: N in [1, 4096], V in [2, 50257]", async (t) => {
  const rand = rng(7);
  for (let i = 0; i < 10; i++) {
    const vocab = i === 0 ? 2 : i === 1 ? 50257 : randInt(rand, 2, 50257);
    const rows = Math.max(1, Math.min(randInt(rand, 1, 4096), Math.floor(3_000_000 / vocab)));
    const spec = SPECS[randInt(rand, 0, SPECS.length - 1)]!;
    await expectClose(t, { ...spec, rows, vocab, seed: 2000 + i, ignoreFraction: rand() * 0.5 }, 1e-5);
  }
});

test.serial("bf16 and fp16 logits accumulate in fp32 (rel err < 2e-2)", async (t) => {
  for (const dtype of ["bfloat16", "float16"] as const) {
    let i = 0;
    for (const spec of SPECS) {
      const [rows, vocab] = SHAPES[i % SHAPES.length]!;
      const r = await expectClose(t, { ...spec, rows, vocab, dtype, seed: 3000 + i }, 2e-2);
      // The loss itself is accumulated in fp32 from the rounded logits: far tighter than the bound.
      t.true(r.lossRelErr < 1e-5, `${describe({ ...spec, rows, vocab, dtype })}: loss rel err ${r.lossRelErr}`);
      i++;
    }
  }
});

test.serial("reductions mean, sum and none; the autograd op scales by its incoming gradient", async (t) => {
  for (const reduction of ["mean", "sum", "none"] as const) {
    for (const spec of [SPECS[1]!, SPECS[2]!, SPECS[5]!, SPECS[10]!]) {
      await expectClose(t, { ...spec, rows: 200, vocab: 3001, reduction, ignoreFraction: 0.25, seed: 4000 }, 1e-5);
    }
  }
});

test.serial("ignore_index: none ignored, some ignored, all ignored (loss 0, zero gradient)", async (t) => {
  const dpsm = SPECS[5]!;
  const none = await expectClose(t, { ...dpsm, rows: 300, vocab: 999, ignoreFraction: 0, seed: 5000 }, 1e-5);
  t.is(none.count, 300);
  const some = await expectClose(
    t,
    { ...dpsm, rows: 300, vocab: 999, ignoreFraction: 0.5, seed: 5001, ignoreIndex: -1 },
    1e-5,
  );
  t.true(some.count > 50 && some.count < 250, `count ${some.count}`);
  for (const reduction of ["mean", "sum", "none"] as const) {
    const all = await probes.checkAgainstReference({
      ...dpsm,
      rows: 64,
      vocab: 500,
      ignoreFraction: 1,
      reduction,
      seed: 5002,
    });
    t.is(all.count, 0);
    t.true(all.finite);
    // The reference is exactly 0 here, so the errors are absolute: the fused values must be exactly 0 too.
    t.is(all.lossAbsErr, 0, `all ignored (${reduction}): loss not 0`);
    t.is(all.gradAbsErr, 0, `all ignored (${reduction}): gradient not 0`);
  }
});

test.serial("extreme logits (|z| up to 1e4) and V up to 262,144 stay finite and exact", async (t) => {
  for (const spec of [SPECS[0]!, SPECS[1]!, SPECS[2]!, SPECS[5]!, SPECS[11]!]) {
    await expectClose(t, { ...spec, rows: 64, vocab: 4099, extreme: true, seed: 6000 }, 1e-5);
    await expectClose(t, { ...spec, rows: 5, vocab: 262144, extreme: true, seed: 6001 }, 1e-5);
    await expectClose(t, { ...spec, rows: 5, vocab: 262144, scale: 8, seed: 6002 }, 1e-5);
  }
});

test.serial("gradient in place over the logits", async (t) => {
  for (const spec of [SPECS[0]!, SPECS[5]!, SPECS[2]!]) {
    await expectClose(t, { ...spec, rows: 100, vocab: 5003, inPlace: true, ignoreFraction: 0.2, seed: 7000 }, 1e-5);
    await expectClose(t, { ...spec, rows: 100, vocab: 5003, inPlace: true, dtype: "bfloat16", seed: 7001 }, 2e-2);
  }
});

test.serial("every CPU vector ISA variant this machine has matches the reference", async (t) => {
  const isas = (["baseline", "avx2", "avx512"] as const).filter((isa) => probes.useCpuIsa(isa));
  t.true(isas.includes("baseline"));
  try {
    for (const isa of isas) {
      probes.useCpuIsa(isa);
      t.is(probes.cpuIsa(), isa);
      for (const dtype of ["float32", "bfloat16", "float16"] as const) {
        for (const [rows, vocab] of [
          [31, 1],
          [31, 3],
          [40, 67],
          [9, 50257],
        ] as [number, number][]) {
          const tol = dtype === "float32" ? 1e-5 : 2e-2;
          await expectClose(t, { ...SPECS[5]!, rows, vocab, dtype, seed: 8000 + vocab, ignoreFraction: 0.1 }, tol);
        }
      }
    }
  } finally {
    probes.useCpuIsa("auto");
  }
  t.log(`ISA variants checked: ${isas.join(", ")}`);
});

// Score smoothing: the kernel's closed forms (dpsm_math.h) against the composite's expected scores under the dense
// smoothed target q = (1 − ε)·onehot(y) + ε/V in float64 (CE −Σ q log p, Brier ‖p − q‖² + 1 − ‖q‖²); the step
// schedule at W − 1, W and W + 1. referenceFailures also holds the kernel to the ε asked for.
const SMOOTHED_AND_STEP = [...SMOOTHED_SPECS, ...STEP_SPECS];

test.serial(
  "score smoothing and the step schedule: every smoothed kind on many shapes, V = 1 and 2 (rel err < 1e-5)",
  async (t) => {
    let i = 0;
    for (const spec of SMOOTHED_AND_STEP) {
      const shapes: [number, number][] = [
        SHAPES[i % SHAPES.length]!,
        SHAPES[(i + 3) % SHAPES.length]!,
        [31, 1],
        [64, 2],
      ];
      for (const [rows, vocab] of shapes) {
        const r = await expectClose(t, { ...spec, rows, vocab, seed: 10_000 + i, ignoreFraction: 0.1 }, 1e-5);
        if (spec.schedule === "step") t.is(r.alphaKernel, spec.step! >= W ? 1 : 0, describe({ ...spec, rows, vocab }));
      }
      i++;
    }
  },
);

test.serial("score smoothing: reductions mean, sum and none, ignored targets (all ignored: exact zeros)", async (t) => {
  for (const reduction of ["mean", "sum", "none"] as const) {
    for (const spec of SMOOTHED_SPECS.slice(0, 5)) {
      await expectClose(t, { ...spec, rows: 200, vocab: 3001, reduction, ignoreFraction: 0.25, seed: 11_000 }, 1e-5);
      const all = await probes.checkAgainstReference({
        ...spec,
        rows: 64,
        vocab: 500,
        ignoreFraction: 1,
        reduction,
        seed: 11_001,
      });
      t.is(all.count, 0);
      t.true(all.finite);
      t.is(all.lossAbsErr, 0, `${describe(spec)} all ignored (${reduction}): loss not 0`);
      t.is(all.gradAbsErr, 0, `${describe(spec)} all ignored (${reduction}): gradient not 0`);
    }
  }
  const some = await expectClose(
    t,
    { ...SMOOTHED_SPECS[2]!, rows: 300, vocab: 999, ignoreFraction: 0.5, ignoreIndex: -1, seed: 11_002 },
    1e-5,
  );
  t.true(some.count > 50 && some.count < 250, `count ${some.count}`);
});

test.serial("score smoothing: confident rows and extreme logits (|z| up to 1e4), V up to 262,144", async (t) => {
  for (const spec of SMOOTHED_SPECS.slice(0, 5)) {
    await expectClose(t, { ...spec, rows: 64, vocab: 4099, extreme: true, seed: 12_000 }, 1e-5);
    await expectClose(t, { ...spec, rows: 5, vocab: 262144, extreme: true, seed: 12_001 }, 1e-5);
    await expectClose(t, { ...spec, rows: 5, vocab: 262144, scale: 8, seed: 12_002 }, 1e-5);
  }
});

test.serial("score smoothing: bf16 and fp16 logits, the gradient in place, every CPU ISA variant", async (t) => {
  let i = 0;
  for (const spec of SMOOTHED_SPECS.slice(0, 5)) {
    for (const dtype of ["bfloat16", "float16"] as const) {
      const r = await expectClose(t, { ...spec, rows: 333, vocab: 1003, dtype, seed: 13_000 + i }, 2e-2);
      t.true(r.lossRelErr < 1e-5, `${describe({ ...spec, dtype })}: loss rel err ${r.lossRelErr}`);
    }
    await expectClose(
      t,
      { ...spec, rows: 100, vocab: 5003, inPlace: true, ignoreFraction: 0.2, seed: 13_100 + i },
      1e-5,
    );
    await expectClose(t, { ...spec, rows: 100, vocab: 5003, inPlace: true, dtype: "bfloat16", seed: 13_200 + i }, 2e-2);
    i++;
  }
  const isas = (["baseline", "avx2", "avx512"] as const).filter((isa) => probes.useCpuIsa(isa));
  try {
    for (const isa of isas) {
      probes.useCpuIsa(isa);
      for (const spec of [SMOOTHED_SPECS[0]!, SMOOTHED_SPECS[1]!, SMOOTHED_SPECS[3]!]) {
        for (const dtype of ["float32", "bfloat16"] as const) {
          for (const [rows, vocab] of [
            [31, 1],
            [31, 3],
            [40, 67],
            [9, 50257],
          ] as [number, number][]) {
            const tol = dtype === "float32" ? 1e-5 : 2e-2;
            await expectClose(t, { ...spec, rows, vocab, dtype, seed: 14_000 + vocab, ignoreFraction: 0.1 }, tol);
          }
        }
      }
    }
  } finally {
    probes.useCpuIsa("auto");
  }
  t.log(`ISA variants checked: ${isas.join(", ")}`);
});
