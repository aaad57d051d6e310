// Reads the CUDA kernels' machine code without a GPU: compiles a .cu for one architecture with nvcc
// (`--resource-usage` for registers and spills), disassembles the cubin with nvdisasm, finds each kernel's
// innermost loops and checks what the fused kernel's memory plan promises (native/kernels/dpsm_cuda.cu's header):
// no spills, a register budget, 16-byte global loads and stores in the hot loops, and in the gradient loop the
// loads of a round issued before its stores. Used by test/cuda-sass.test.ts; as a script it prints the report of
// any kernel file: `node --import tsx dev/cuda-sass.ts [file.cu] [--arch 90]` (nonzero exit when a check fails).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The path native/setup-nvcc.sh prints on its last line (`--disasm`: nvdisasm), installing what it needs once. */
export function cudaTool(which: "nvcc" | "nvdisasm"): string {
  const args = [path.join(root, "native/setup-nvcc.sh"), ...(which === "nvdisasm" ? ["--disasm"] : [])];
  const r = spawnSync("bash", args, { encoding: "utf8" });
  if (r.status !== 0)
    throw new Error(`native/setup-nvcc.sh ${args.slice(1).join(" ")} failed:\n${r.stderr.slice(-2000)}`);
  return r.stdout.trim().split("\n").at(-1)!;
}

export interface Instruction {
  addr: number;
  op: string; // the opcode with its modifiers, e.g. LDG.E.128.CONSTANT (no predicate)
  text: string;
}

export interface Kernel {
  name: string; // mangled
  registers: number;
  spillStores: number; // bytes
  spillLoads: number;
  code: Instruction[];
  labels: Map<string, number>; // label → address
}

export interface Loop {
  start: number; // address of the branch target
  end: number; // address of the backward branch
  code: Instruction[];
}

/** ptxas' `--resource-usage` lines, per entry function. */
export function parseResourceUsage(
  log: string,
): Map<string, { registers: number; spillStores: number; spillLoads: number }> {
  const out = new Map<string, { registers: number; spillStores: number; spillLoads: number }>();
  let current: string | undefined;
  for (const line of log.split("\n")) {
    const entry = /Compiling entry function '([^']+)'/.exec(line);
    if (entry) {
      current = entry[1]!;
      out.set(current, { registers: -1, spillStores: -1, spillLoads: -1 });
      continue;
    }
    if (/Function properties for (?!_Z)/.test(line)) current = undefined; // a subroutine (e.g. trig slow path)
    const k = current && out.get(current);
    if (!k) continue;
    const spill = /(\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (spill && k.spillStores < 0) {
      k.spillStores = Number(spill[1]);
      k.spillLoads = Number(spill[2]);
    }
    const regs = /Used (\d+) registers/.exec(line);
    if (regs) k.registers = Number(regs[1]);
  }
  return out;
}

/** nvdisasm's listing split by function: instructions (predicates stripped from `op`) and label addresses. */
export function parseSass(text: string): Map<string, { code: Instruction[]; labels: Map<string, number> }> {
  const out = new Map<string, { code: Instruction[]; labels: Map<string, number> }>();
  let fn: { code: Instruction[]; labels: Map<string, number> } | undefined;
  let pendingLabels: string[] = [];
  for (const line of text.split("\n")) {
    const start = /^\.text\.(\S+):/.exec(line);
    if (start) {
      fn = { code: [], labels: new Map() };
      out.set(start[1]!, fn);
      pendingLabels = [];
      continue;
    }
    if (!fn) continue;
    const label = /^(\.L_x_\d+):/.exec(line);
    if (label) {
      pendingLabels.push(label[1]!);
      continue;
    }
    const ins = /^\s*\/\*([0-9a-f]+)\*\/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)\b(.*)$/.exec(line);
    if (!ins) continue;
    const addr = parseInt(ins[1]!, 16);
    for (const l of pendingLabels) fn.labels.set(l, addr);
    pendingLabels = [];
    fn.code.push({ addr, op: ins[2]!, text: `${ins[2]}${ins[3]}`.replace(/\s*;\s*$/, "") });
  }
  return out;
}

/** The loops of a function: each backward branch and its target; innermost ones (holding no other loop) only. */
export function innermostLoops(k: Pick<Kernel, "code" | "labels">): Loop[] {
  const loops: Loop[] = [];
  for (const ins of k.code) {
    if (!/^BRA\b/.test(ins.op)) continue;
    const target = /`\((\.L_x_\d+)\)/.exec(ins.text);
    const to = target && k.labels.get(target[1]!);
    if (to === undefined || to === null || to > ins.addr) continue;
    loops.push({ start: to, end: ins.addr, code: k.code.filter((c) => c.addr >= to && c.addr <= ins.addr) });
  }
  return loops.filter((l) => !loops.some((o) => o !== l && o.start >= l.start && o.end <= l.end));
}

// Global memory access of 16 bytes: LDG/STG with a .128 modifier (sm_80 and sm_90 spell cache hints between,
// e.g. LDG.E.EF.128, LDG.E.128.CONSTANT, STG.E.EF.128).
export const isLoad128 = (op: string) => /^LDG(\.\w+)*\.128(\.|$)/.test(op);
export const isStore128 = (op: string) => /^STG(\.\w+)*\.128(\.|$)/.test(op);
export const isGlobalLoad = (op: string) => /^LDG\b/.test(op);
export const isGlobalStore = (op: string) => /^STG\b/.test(op);
const isExp = (op: string) => /^MUFU\.EX2\b/.test(op);

export interface Compiled {
  arch: string;
  kernels: Kernel[];
  log: string;
}

/** Compiles `source` (its includes from native/kernels) for sm_<arch> and reads back every kernel. */
export function compileAndRead(source: string, arch: string, dir?: string): Compiled {
  const nvcc = cudaTool("nvcc");
  const nvdisasm = cudaTool("nvdisasm");
  const work = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "dpsm-sass-"));
  const cubin = path.join(work, `kernels_sm${arch}.cubin`);
  const c = spawnSync(
    nvcc,
    [
      "-std=c++17",
      "-O3",
      "-cubin",
      `-arch=sm_${arch}`,
      "--resource-usage",
      "-I",
      path.join(root, "native/kernels"),
      source,
      "-o",
      cubin,
    ],
    { encoding: "utf8", maxBuffer: 64 << 20 },
  );
  const log = `${c.stdout}${c.stderr}`;
  if (c.status !== 0) throw new Error(`nvcc failed for sm_${arch}:\n${log.slice(-4000)}`);
  const d = spawnSync(nvdisasm, ["-c", cubin], { encoding: "utf8", maxBuffer: 256 << 20 });
  if (d.status !== 0) throw new Error(`nvdisasm failed:\n${d.stderr.slice(-2000)}`);
  const usage = parseResourceUsage(log);
  const sass = parseSass(d.stdout);
  const kernels: Kernel[] = [];
  for (const [name, u] of usage) {
    const s = sass.get(name);
    if (!s) throw new Error(`no machine code for ${name} in nvdisasm's listing`);
    kernels.push({ name, ...u, ...s });
  }
  if (!dir) fs.rmSync(work, { recursive: true, force: true });
  return { arch, kernels, log };
}

export interface HotLoopReport {
  kernel: string;
  registers: number;
  spillBytes: number;
  // The innermost loops that compute exps and touch global memory, with their instruction counts.
  stateLoops: { instructions: number; loads128: number; loadsNarrow: number }[];
  gradientLoops: {
    instructions: number;
    loads128: number;
    stores128: number;
    loadsBeforeFirstStore: number;
    storesNarrow: number;
  }[];
}

/** What the checks look at in one kernel. */
export function hotLoops(k: Kernel): HotLoopReport {
  const r: HotLoopReport = {
    kernel: k.name,
    registers: k.registers,
    spillBytes: k.spillStores + k.spillLoads,
    stateLoops: [],
    gradientLoops: [],
  };
  for (const l of innermostLoops(k)) {
    const ops = l.code.map((c) => c.op);
    if (!ops.some(isExp) || !ops.some(isGlobalLoad)) continue;
    const loads128 = ops.filter(isLoad128).length;
    const loadsNarrow = ops.filter((o) => isGlobalLoad(o) && !isLoad128(o)).length;
    if (!ops.some(isGlobalStore)) {
      r.stateLoops.push({ instructions: ops.length, loads128, loadsNarrow });
      continue;
    }
    const firstStore = ops.findIndex(isGlobalStore);
    r.gradientLoops.push({
      instructions: ops.length,
      loads128,
      stores128: ops.filter(isStore128).length,
      loadsBeforeFirstStore: ops.slice(0, firstStore).filter(isGlobalLoad).length,
      storesNarrow: ops.filter((o) => isGlobalStore(o) && !isStore128(o)).length,
    });
  }
  return r;
}

export const REGISTER_BUDGET = { fused: 64, scale: 32 } as const;
// Instructions per element in the vector rounds, rarely taken branches (the target's vector, the smoothing sums)
// included: ~14 (state) and ~11 (gradient) now; an accurate expf or 64-bit index math per element exceeds them.
export const INSTRUCTION_BUDGET = { state: 18, gradient: 14 } as const;

/** Elements per 16-byte vector for the kernel's dtype (from its mangled name). */
export function elementsPerVector(name: string): number {
  return /I(13__nv_bfloat16|6__half)E/.test(name) ? 8 : 4;
}

/**
 * The fused kernel's promises, one failure message per broken one (empty: all kept): no spills; registers within
 * the budget; a state loop whose exps run on 16-byte loads only; a gradient loop of 16-byte loads and stores with
 * at least `batch` loads issued before its first store.
 */
export function checkKernel(k: Kernel, batch = 2): string[] {
  const fails: string[] = [];
  const r = hotLoops(k);
  const kind = k.name.includes("scale_kernel") ? "scale" : "fused";
  if (k.spillStores !== 0 || k.spillLoads !== 0)
    fails.push(`${k.name}: spills ${k.spillStores} bytes stored, ${k.spillLoads} loaded (expected none)`);
  if (k.registers < 0 || k.registers > REGISTER_BUDGET[kind])
    fails.push(`${k.name}: ${k.registers} registers (budget ${REGISTER_BUDGET[kind]})`);
  if (kind === "scale") return fails;
  const perElement = (l: { instructions: number; loads128: number }) =>
    l.instructions / (l.loads128 * elementsPerVector(k.name));
  if (!r.stateLoops.some((l) => l.loads128 >= batch && l.loadsNarrow === 0))
    fails.push(
      `${k.name}: no state loop whose exps run on ≥ ${batch} 16-byte loads per round (found ${JSON.stringify(r.stateLoops)})`,
    );
  if (
    !r.gradientLoops.some(
      (l) => l.loads128 >= batch && l.storesNarrow === 0 && l.stores128 >= batch && l.loadsBeforeFirstStore >= batch,
    )
  )
    fails.push(
      `${k.name}: no gradient loop of 16-byte loads and stores with ≥ ${batch} loads before its first store ` +
        `(found ${JSON.stringify(r.gradientLoops)})`,
    );
  for (const l of r.stateLoops.filter((l) => l.loads128 >= batch && perElement(l) > INSTRUCTION_BUDGET.state))
    fails.push(
      `${k.name}: state loop at ${perElement(l).toFixed(1)} instructions per element (budget ${INSTRUCTION_BUDGET.state})`,
    );
  for (const l of r.gradientLoops.filter((l) => l.loads128 >= batch && perElement(l) > INSTRUCTION_BUDGET.gradient))
    fails.push(
      `${k.name}: gradient loop at ${perElement(l).toFixed(1)} instructions per element (budget ${INSTRUCTION_BUDGET.gradient})`,
    );
  return fails;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const args = process.argv.slice(2);
  const archAt = args.indexOf("--arch");
  const archs = archAt >= 0 ? [args.splice(archAt, 2)[1] ?? "90"] : ["80", "90"];
  const source = path.resolve(args[0] ?? path.join(root, "native/kernels/dpsm_cuda.cu"));
  let failed = 0;
  for (const arch of archs) {
    const c = compileAndRead(source, arch);
    for (const k of c.kernels) {
      const r = hotLoops(k);
      console.log(`sm_${arch} ${k.name}: ${k.registers} registers, ${r.spillBytes} spill bytes`);
      const per = (l: { instructions: number; loads128: number }) =>
        l.loads128 ? ` (${(l.instructions / (l.loads128 * elementsPerVector(k.name))).toFixed(1)} per element)` : "";
      for (const l of r.stateLoops) console.log(`  state loop: ${JSON.stringify(l)}${per(l)}`);
      for (const l of r.gradientLoops) console.log(`  gradient loop: ${JSON.stringify(l)}${per(l)}`);
      for (const f of checkKernel(k)) {
        console.log(`  FAIL ${f}`);
        failed++;
      }
    }
  }
  console.log(failed ? `${failed} check(s) failed` : "all checks passed");
  process.exitCode = failed ? 1 : 0;
}
