// Energy of a training run where the machine has a meter: on CUDA the GPU's own counter through NVML (the
// driver's libnvidia-ml, loaded by the addon at run time: native/addon/energy_binding.cpp), on the CPU the
// package counters of Intel's RAPL as Linux exposes them (/sys/class/powercap/intel-rapl:N/energy_uj, readable
// by root only on recent kernels). Where neither can be read, the reason is kept and reports say "not measured".
// Counters are read at each logged step: energy per step is the counter's advance over the steps since the last
// read, so the record covers what the process and anything else on the device or package drew meanwhile.
import fs from "node:fs";
import path from "node:path";

import { native } from "./native.ts";

/** One reading of a meter: joules since it started, or why it cannot be read. */
export type EnergySource = { kind: "gpu" | "cpu"; read(): number } | { kind: "gpu" | "cpu"; unavailable: string };

/**
 * The advance of a counter that wraps to 0 after `max` (RAPL's max_energy_range_uj): `after − before`, or, when it
 * went down, the distance to the wrap plus `after`. Reads must come often enough that it wraps at most once
 * between them (RAPL's package counter wraps after ~2^32 µJ: minutes at full load).
 */
export function counterAdvance(before: number, after: number, max: number): number {
  if (!(before >= 0 && after >= 0 && max > 0)) {
    throw new RangeError(`counterAdvance: expected counters >= 0 and a range > 0, got ${before}, ${after}, ${max}`);
  }
  return after >= before ? after - before : max - before + after;
}

/** A RAPL zone: its energy_uj counter and its wrap-around range. */
interface RaplZone {
  name: string;
  file: string;
  max: number;
}

/**
 * The CPU packages' RAPL zones under `root` (intel-rapl:N only, not their core/uncore/dram subzones, which the
 * package counts already), or why none can be read.
 */
export function raplZones(root = "/sys/class/powercap"): RaplZone[] | { unavailable: string } {
  let names: string[];
  try {
    names = fs.readdirSync(root).filter((n) => /^intel-rapl:\d+$/.test(n));
  } catch {
    return { unavailable: `${root} does not exist (no powercap driver)` };
  }
  if (names.length === 0) return { unavailable: `${root} has no intel-rapl zone (no RAPL on this CPU or VM)` };
  const zones: RaplZone[] = [];
  for (const n of names.sort()) {
    const dir = path.join(root, n);
    try {
      const file = path.join(dir, "energy_uj");
      fs.readFileSync(file, "utf8");
      const max = Number(fs.readFileSync(path.join(dir, "max_energy_range_uj"), "utf8").trim());
      if (!(max > 0)) return { unavailable: `${dir}/max_energy_range_uj is not a positive number` };
      zones.push({ name: n, file, max });
    } catch (e) {
      return { unavailable: `${dir}/energy_uj cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})` };
    }
  }
  return zones;
}

/** The CPU packages' energy in joules since this call, summed over the RAPL zones of `root`. */
export function cpuEnergySource(root?: string): EnergySource {
  const zones = raplZones(root);
  if (!Array.isArray(zones)) return { kind: "cpu", unavailable: zones.unavailable };
  const readUj = (z: RaplZone) => Number(fs.readFileSync(z.file, "utf8").trim());
  const last = zones.map(readUj);
  let joules = 0;
  return {
    kind: "cpu",
    read() {
      zones.forEach((z, i) => {
        const now = readUj(z);
        joules += counterAdvance(last[i]!, now, z.max) / 1e6;
        last[i] = now;
      });
      return joules;
    },
  };
}

/** CUDA device `index`'s energy in joules since this call, from NVML's counter (millijoules since driver load). */
export function gpuEnergySource(index: number): EnergySource {
  const first = native().gpuEnergy(index);
  if (first.millijoules === undefined) return { kind: "gpu", unavailable: first.error ?? "NVML gave no reading" };
  const start = first.millijoules;
  return {
    kind: "gpu",
    read() {
      const r = native().gpuEnergy(index);
      if (r.millijoules === undefined) throw new Error(`gpuEnergy: ${r.error ?? "no reading"}`);
      return (r.millijoules - start) / 1000;
    },
  };
}

/** The meter for a device string ("cpu", "cuda", "cuda:N"): NVML on CUDA, RAPL on the CPU. */
export function energySourceFor(device: string): EnergySource {
  if (device.startsWith("cuda")) return gpuEnergySource(Number(device.split(":")[1] ?? 0));
  return cpuEnergySource();
}

/** The energy fields of a step record: joules per step over the steps since the last record. */
export interface StepEnergy {
  gpuJoulesPerStep?: number;
  cpuJoulesPerStep?: number;
}

/**
 * Per-step energy of a training session, read each time a step record arrives. The first step's record has none
 * (the counter starts there, after the session's setup), and the step after an evaluation or checkpoint leaves
 * them out (rebase() is called on their records), so the figure is the training step's alone; total() is all of
 * it since the first step, evaluations included.
 */
export class StepEnergyMeter {
  readonly source: EnergySource;
  #lastJoules: number | undefined;
  #lastStep = 0;
  #failed: string | undefined;

  constructor(device: string, source: EnergySource = energySourceFor(device)) {
    this.source = source;
  }

  /** Why this session's energy is not measured, or undefined while it is. */
  get unavailable(): string | undefined {
    return "unavailable" in this.source ? this.source.unavailable : this.#failed;
  }

  #read(): number | undefined {
    if ("unavailable" in this.source || this.#failed !== undefined) return undefined;
    try {
      return this.source.read();
    } catch (e) {
      // A meter that stops answering mid-run (a driver reset) ends the measurement, not the run.
      this.#failed = (e as Error).message;
      return undefined;
    }
  }

  /** The fields to add to the record of `step`: energy since the last record over the steps since it. */
  sample(step: number): StepEnergy {
    const joules = this.#read();
    if (joules === undefined) return {};
    const last = this.#lastJoules;
    const steps = step - this.#lastStep;
    this.#lastJoules = joules;
    this.#lastStep = step;
    if (last === undefined || steps <= 0) return {};
    const perStep = (joules - last) / steps;
    return this.source.kind === "gpu" ? { gpuJoulesPerStep: perStep } : { cpuJoulesPerStep: perStep };
  }

  /** After a record that is not a training step (evaluation, checkpoint): the next step counts from here. */
  rebase(): void {
    if (this.#lastJoules === undefined) return;
    const joules = this.#read();
    if (joules !== undefined) this.#lastJoules = joules;
  }

  /** Joules since the meter was made, or undefined where it cannot be read. */
  total(): number | undefined {
    return this.#read();
  }
}

/**
 * A run's energy from its step records (every session's): the sum of each record's joules per step over the steps
 * it covers (from the previous record's step), and the mean per step. Undefined where no record has the field.
 */
export function runEnergy(
  steps: readonly ({ step: number } & StepEnergy)[],
  field: keyof StepEnergy,
): { joules: number; joulesPerStep: number } | undefined {
  const sorted = [...steps].sort((a, b) => a.step - b.step);
  let joules = 0;
  let covered = 0;
  let previous = 0;
  for (const s of sorted) {
    const v = s[field];
    if (typeof v === "number" && Number.isFinite(v)) {
      joules += v * (s.step - previous);
      covered += s.step - previous;
    }
    previous = s.step;
  }
  return covered > 0 ? { joules, joulesPerStep: joules / covered } : undefined;
}
