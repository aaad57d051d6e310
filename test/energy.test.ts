// Energy meters (lib/energy.ts): the counter arithmetic with constructed readings, RAPL's sysfs layout read from
// a folder laid out as Linux's powercap (this VM has no /sys/class/powercap), and what this machine's real meters
// say: NVML absent and RAPL unreadable here must read as "not measured" with the reason, not as 0 J.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import test from "ava";

import {
  counterAdvance,
  cpuEnergySource,
  type EnergySource,
  gpuEnergySource,
  raplZones,
  runEnergy,
  StepEnergyMeter,
} from "../lib/energy.ts";
import { buildInfo } from "../lib/native.ts";
import type { StepRecord } from "../lib/runlog.ts";
import { stepScalars } from "../lib/tensorboard-log.ts";

test("counterAdvance: the plain difference, and across one wrap of max_energy_range_uj", (t) => {
  t.is(counterAdvance(100, 350, 1000), 250);
  t.is(counterAdvance(900, 50, 1000), 150);
  t.is(counterAdvance(262143328850 - 10, 5, 262143328850), 15);
  t.throws(() => counterAdvance(-1, 5, 10), { instanceOf: RangeError });
  t.throws(() => counterAdvance(1, 5, 0), { instanceOf: RangeError });
});

function powercap(zones: Record<string, { uj: number; max: number }>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "powercap-"));
  for (const [name, z] of Object.entries(zones)) {
    fs.mkdirSync(path.join(root, name));
    fs.writeFileSync(path.join(root, name, "energy_uj"), `${z.uj}\n`);
    fs.writeFileSync(path.join(root, name, "max_energy_range_uj"), `${z.max}\n`);
  }
  return root;
}

test("RAPL: package zones summed in joules, subzones left out, a wrap counted once", (t) => {
  const root = powercap({
    "intel-rapl:0": { uj: 1_000_000, max: 10_000_000 },
    "intel-rapl:1": { uj: 9_500_000, max: 10_000_000 },
    "intel-rapl:0:0": { uj: 123, max: 10_000_000 },
  });
  try {
    const zones = raplZones(root);
    t.true(Array.isArray(zones));
    t.deepEqual(
      (zones as { name: string }[]).map((z) => z.name),
      ["intel-rapl:0", "intel-rapl:1"],
    );
    const src = cpuEnergySource(root);
    t.false("unavailable" in src);
    fs.writeFileSync(path.join(root, "intel-rapl:0", "energy_uj"), "3500000\n"); // +2.5 J
    fs.writeFileSync(path.join(root, "intel-rapl:1", "energy_uj"), "500000\n"); // wrapped: +1 J
    t.is((src as { read(): number }).read(), 3.5);
    fs.writeFileSync(path.join(root, "intel-rapl:0", "energy_uj"), "4000000\n"); // +0.5 J
    t.is((src as { read(): number }).read(), 4);
  } finally {
    fs.rmSync(root, { recursive: true });
  }
});

test("RAPL absent or unreadable: the reason, not a number", (t) => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), "powercap-"));
  try {
    t.regex((raplZones(empty) as { unavailable: string }).unavailable, /no intel-rapl zone/);
    t.regex((raplZones(path.join(empty, "none")) as { unavailable: string }).unavailable, /does not exist/);
    fs.mkdirSync(path.join(empty, "intel-rapl:0"));
    t.regex((raplZones(empty) as { unavailable: string }).unavailable, /energy_uj cannot be read \(ENOENT\)/);
  } finally {
    fs.rmSync(empty, { recursive: true });
  }
});

test("StepEnergyMeter: joules per step between records, nothing at the first step or after an evaluation", (t) => {
  const readings = [10, 40, 100, 500, 530, 590];
  let i = 0;
  const source: EnergySource = { kind: "gpu", read: () => readings[i++]! };
  const m = new StepEnergyMeter("cuda", source);
  t.deepEqual(m.sample(1), {}); // 10: the counter starts here
  t.deepEqual(m.sample(2), { gpuJoulesPerStep: 30 }); // 40
  t.deepEqual(m.sample(4), { gpuJoulesPerStep: 30 }); // 100, over 2 steps
  m.rebase(); // 500: an evaluation's energy
  t.deepEqual(m.sample(5), { gpuJoulesPerStep: 30 }); // 530
  t.is(m.total(), 590);
  t.is(m.unavailable, undefined);
  const failing = new StepEnergyMeter("cuda", {
    kind: "gpu",
    read: () => {
      throw new Error("driver gone");
    },
  });
  t.deepEqual(failing.sample(1), {});
  t.is(failing.unavailable, "driver gone");
  const none = new StepEnergyMeter("cpu", { kind: "cpu", unavailable: "no RAPL" });
  t.deepEqual(none.sample(3), {});
  t.is(none.total(), undefined);
  t.is(none.unavailable, "no RAPL");
});

test("runEnergy: each record's joules per step over the steps since the previous record", (t) => {
  const steps = [
    { step: 1 },
    { step: 2, gpuJoulesPerStep: 30 },
    { step: 4, gpuJoulesPerStep: 20 },
    { step: 5 },
    { step: 6, gpuJoulesPerStep: 10 },
  ];
  t.deepEqual(runEnergy(steps, "gpuJoulesPerStep"), { joules: 30 + 40 + 10, joulesPerStep: 80 / 4 });
  t.is(runEnergy(steps, "cpuJoulesPerStep"), undefined);
});

test("a step record's energy becomes a TensorBoard scalar beside the others", (t) => {
  const record = {
    type: "step",
    step: 7,
    loss: 1,
    stepMs: 5,
    noisy: false,
    gpuJoulesPerStep: 41.5,
  } as unknown as StepRecord;
  const scalars = stepScalars(record);
  t.is(scalars["train/gpuJoulesPerStep"], 41.5);
  t.is(scalars["train/loss"], 1);
});

test("this machine's meters: NVML and RAPL either read or say why", (t) => {
  const cpu = cpuEnergySource();
  if ("unavailable" in cpu) t.log(`RAPL: not measured (${cpu.unavailable})`);
  else t.true(cpu.read() >= 0);
  const gpu = gpuEnergySource(0);
  if ("unavailable" in gpu) {
    t.log(`NVML: not measured (${gpu.unavailable})`);
    t.regex(gpu.unavailable, /libnvidia-ml|NVML|nvml/);
    // With a CUDA device the driver's NVML is there: only the device's own support may be missing.
    if (buildInfo().cudaDeviceCount > 0) t.notRegex(gpu.unavailable, /could not be loaded/);
  } else {
    t.true(gpu.read() >= 0);
  }
});
