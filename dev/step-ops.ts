// One training step's ATen op list, as the op-list guard (test/step-ops.test.ts) and the roofline benchmark
// (bench/step-roofline.ts) read it: the testing addon records every op (libtorch's RecordFunction hooks) while a
// Trainer fits, and the trainer's user scopes ("dpsm::step" around each step's queued work, "dpsm::optimizer",
// "dpsm::gradient_norm", "dpsm::update_ratio", "dpsm::adamw_update" inside it; native/core/train/) cut it into
// steps and parts.
import { probes, type RecordedEvent, type RecordedTensor } from "./testing-addon.ts";

/** Ops that copy a device's value to the host and so wait for the device (host synchronisations). */
export const HOST_SYNC_OPS = ["aten::item", "aten::_local_scalar_dense"] as const;

export interface StepOp {
  name: string;
  /** enclosing ops (0: called by the trainer's code) */
  depth: number;
  /** the user scopes around it, outermost first ("dpsm::step", ...) */
  scopes: string[];
  /** the ops it runs inside, outermost first */
  within: string[];
  inputs: RecordedTensor[];
  outputs: RecordedTensor[];
}

/** The ops of each "dpsm::step" scope, in order, each with the user scopes around it. */
export function stepsOf(events: readonly RecordedEvent[]): StepOp[][] {
  const steps: StepOp[][] = [];
  const scopes = new Map<number, string[]>(); // per thread
  let current: StepOp[] | undefined;
  let stepThread = -1;
  const opStack: string[] = []; // the step thread's ops by depth
  for (const e of events) {
    const open = scopes.get(e.thread) ?? [];
    scopes.set(e.thread, open);
    if (e.kind === "begin") {
      open.push(e.name);
      if (e.name === "dpsm::step") {
        current = [];
        stepThread = e.thread;
      }
    } else if (e.kind === "end") {
      const at = open.lastIndexOf(e.name);
      if (at >= 0) open.splice(at, 1);
      if (e.name === "dpsm::step" && current && e.thread === stepThread) {
        steps.push(current);
        current = undefined;
      }
    } else if (current && e.thread === stepThread) {
      const depth = e.depth ?? 0;
      opStack.length = depth;
      opStack.push(e.name);
      current.push({
        name: e.name,
        depth,
        scopes: [...open],
        within: opStack.slice(0, depth),
        inputs: e.inputs ?? [],
        outputs: e.outputs ?? [],
      });
    }
  }
  return steps;
}

/** Records the ops while `work` runs; returns its steps (stepsOf). */
export async function recordSteps(work: () => Promise<unknown>): Promise<StepOp[][]> {
  probes.startOpRecording();
  let events: RecordedEvent[];
  try {
    await work();
  } finally {
    events = probes.stopOpRecording();
  }
  return stepsOf(events);
}

/** Ops called by the trainer's code (depth 0) inside the user scope `scope` of one step. */
export function topLevel(step: readonly StepOp[], scope?: string): StepOp[] {
  return step.filter((o) => o.depth === 0 && (scope === undefined || o.scopes.includes(scope)));
}

/** The step's host synchronisations, at any depth. */
export function hostSyncs(step: readonly StepOp[]): StepOp[] {
  return step.filter((o) => (HOST_SYNC_OPS as readonly string[]).includes(o.name));
}

/** Runs `work` with DPSM_STEP_REDUCTIONS set to `how` (native/core/train/optim.h), restoring it afterwards. */
export async function withReductions<T>(
  how: "multi-tensor" | "host" | "per-tensor" | undefined,
  work: () => Promise<T>,
): Promise<T> {
  const before = process.env.DPSM_STEP_REDUCTIONS;
  if (how === undefined) delete process.env.DPSM_STEP_REDUCTIONS;
  else process.env.DPSM_STEP_REDUCTIONS = how;
  try {
    return await work();
  } finally {
    if (before === undefined) delete process.env.DPSM_STEP_REDUCTIONS;
    else process.env.DPSM_STEP_REDUCTIONS = before;
  }
}
