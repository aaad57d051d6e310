// The stages of `npm run gpu:verify` in the order they run, with what each is expected to take on an H100 and the
// most it may take, and the rule that decides, from the time left of the call's budget, whether a stage starts.
// The most important first: a call cut short keeps what mattered most. Estimates are the 2026-11-23 H100 call's
// measured times where that call ran the stage (bench/gpu-verify/results/2026-11-23-h100/), else reasoned ones
// (README.md beside this file says which).

export type Need = "addon" | "probe" | "sanitizer" | "runtime" | "python";

export interface StageSpec {
  name: string;
  /** what it checks or measures, one line */
  title: string;
  /** seconds it is expected to take */
  estimateS: number;
  /** the least time worth starting it with: with less left it is skipped, and the summary says so */
  minS: number;
  /** the most it may take (its time box); 0: whatever is left of the budget */
  boxS: number;
  needs: Need[];
}

export const STAGES: readonly StageSpec[] = [
  {
    name: "exp2",
    title: "the kernel's e^x (ex2.approx) against double exp, at the fp32 reference tolerance",
    estimateS: 5,
    minS: 5,
    boxS: 30,
    needs: ["probe"],
  },
  {
    name: "fused-loss",
    title: "the CUDA reference cases (smoothing and the step schedule included) against float64",
    estimateS: 45,
    minS: 20,
    boxS: 90,
    needs: ["addon"],
  },
  {
    name: "gpt2",
    title: "GPT-2 on CUDA against the CPU, the float64 fixture and transformers",
    estimateS: 27,
    minS: 27, // no box inside it: started only with its whole estimate left
    boxS: 60,
    needs: ["addon"],
  },
  {
    name: "sanitizer",
    // started by run.sh beside the build (CPU-bound instrumentation, tiny shapes), collected here, before the
    // timed stages: minS 0, since it costs only what it still needs
    title: "compute-sanitizer memcheck, racecheck, initcheck, synccheck on the kernel at tiny shapes",
    estimateS: 40,
    minS: 0,
    boxS: 90,
    needs: ["probe", "sanitizer"],
  },
  {
    name: "floor",
    title: "the kernel alone and the autograd op against the memory floor, 8,192 × {50,257, 50,304}, fp32 and bf16",
    estimateS: 25,
    minS: 15,
    boxS: 75,
    needs: ["addon"],
  },
  {
    name: "step",
    title: "the training step beside PyTorch eager and torch.compile, GPT-2 medium then small, bf16",
    estimateS: 140,
    minS: 60,
    boxS: 170,
    needs: ["addon", "runtime", "python"],
  },
  {
    name: "wt2-small",
    title: "100 steps of experiment 1's wt2-small on the GPU (ce, dpsm-linear, then the other variations)",
    estimateS: 90,
    minS: 45,
    boxS: 120,
    needs: ["addon", "runtime"],
  },
  {
    name: "train",
    title: "bf16 training killed with SIGKILL after a checkpoint and resumed",
    estimateS: 71,
    minS: 71, // no box inside it: started only with its whole estimate left
    boxS: 90,
    needs: ["addon"],
  },
  {
    name: "anchors",
    title: "Liger-Kernel and cut-cross-entropy (and eager, torch.compile) beside the fused loss, with the time left",
    estimateS: 60,
    minS: 30,
    boxS: 0,
    needs: ["addon", "python"],
  },
];

/**
 * Seconds of the call before the first stage: unpacking node and host.json (23 s on the 2026-11-23 H100, four
 * imports of torch then, one now), the build (56 s there), the anchors' wheels.
 */
export const PRELUDE_ESTIMATE_S = 80;

export type Decision = { run: true; boxS: number } | { run: false; reason: string };

const NEED_TEXT: Record<Need, string> = {
  addon: "the addons did not build (build.log)",
  probe: "the kernel probe did not compile (no nvcc, or see run.log)",
  sanitizer:
    "no compute-sanitizer: not on PATH, not in the CUDA toolkit (/usr/local/cuda/bin), not in the Python's nvidia wheels " +
    "(pip install nvidia-cuda-sanitizer-api for CUDA 13, nvidia-cuda-sanitizer-api-cu12 for 12)",
  runtime: "no runtime.tar.xz in the package (npm run gpu:pack -- --runtime)",
  python: "no Python with torch on the host",
};

/**
 * Whether `stage` starts with `leftS` seconds of the budget left and `have` at hand (`why`: the reason a need is
 * missing, where the caller knows it better), and its time box: its own, cut to what is left. A stage whose least useful time (minS) is more than what is left is skipped, not started to be
 * killed half-way.
 */
export function decide(
  stage: StageSpec,
  leftS: number,
  have: ReadonlySet<Need>,
  why: Partial<Record<Need, string>> = {},
): Decision {
  const missing = stage.needs.filter((n) => !have.has(n));
  if (missing.length)
    return { run: false, reason: [...new Set(missing.map((n) => why[n] ?? NEED_TEXT[n]))].join("; ") };
  if (leftS < stage.minS) {
    return {
      run: false,
      reason: `the budget ran out: ${Math.max(0, Math.round(leftS))} s left, the stage needs at least ${stage.minS} s (about ${stage.estimateS} s expected)`,
    };
  }
  return { run: true, boxS: Math.floor(stage.boxS === 0 ? leftS : Math.min(stage.boxS, leftS)) };
}

/** Stages run beside the build (run.sh's kernel probe): their time hides in the prelude's. */
export const BESIDE_BUILD: readonly string[] = ["exp2", "sanitizer"];

/** The plan as a table: each stage's expected start and end if every one before took its estimate. */
export function expectedTimeline(budgetS: number): { name: string; startS: number; endS: number; fits: boolean }[] {
  let t = PRELUDE_ESTIMATE_S;
  return STAGES.map((s) => {
    if (BESIDE_BUILD.includes(s.name)) return { name: s.name, startS: 0, endS: t, fits: true };
    const startS = t;
    t += s.estimateS;
    return { name: s.name, startS, endS: t, fits: budgetS - startS >= s.minS };
  });
}

export function stage(name: string): StageSpec {
  const s = STAGES.find((x) => x.name === name);
  if (!s) throw new Error(`no gpu:verify stage named ${name}`);
  return s;
}
