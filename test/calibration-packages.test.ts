// lib/metrics/calibration.ts against the PyPI packages that define its metrics: ECE and adaptive (equal-mass) ECE
// against uncertainty-calibration 0.1.4, the top-1 Brier decomposition against verif 1.4.0, and the reliability
// bins and Brier score against scikit-learn 1.9.1 (with numpy's histogram for the bin counts). The fixtures come
// from test/fixtures/calibration/make_fixture.py: seeded random confidences and hits, and each package's value.
// A check whose conventions differ from ours on a case ("matches": false, docs/metrics.md says how) must differ
// here too, so the documented difference stays real.
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import {
  adaptiveCalibrationError,
  brierDecomposition,
  expectedCalibrationError,
  reliabilityBins,
  type BrierDecomposition,
  type ReliabilityBin,
} from "../lib/metrics/calibration.ts";
import { packageRoot } from "../lib/native.ts";

const FIXTURES = path.join(packageRoot, "test", "fixtures", "calibration");
const REL_TOL = 1e-12;
const ABS_TOL = 1e-15; // for values that are themselves near 0

type Ours = "ece" | "adaptiveEce" | "top1" | "reliability+withinVariance" | "resolution" | "uncertainty" | "bins";
interface PackageBins {
  accuracy: number[];
  confidence: number[];
  count: number[];
}
interface Check {
  package: string;
  call: string;
  ours: Ours;
  value: number | PackageBins;
  matches: boolean;
  why?: string;
}
interface Fixture {
  versions: Record<string, string>;
  case: string;
  description: string;
  bins: number;
  confidence: number[];
  hit: number[];
  checks: Check[];
}

const fixtures = fs
  .readdirSync(FIXTURES)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((f) => JSON.parse(fs.readFileSync(path.join(FIXTURES, f), "utf8")) as Fixture);

const close = (a: number, b: number, rel = REL_TOL) =>
  Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b)) + ABS_TOL;

interface Computed {
  ece: number;
  adaptiveEce: number;
  brier: BrierDecomposition;
  bins: ReliabilityBin[];
}

function ours(f: Fixture): Computed {
  return {
    ece: expectedCalibrationError(f.confidence, f.hit, f.bins),
    adaptiveEce: adaptiveCalibrationError(f.confidence, f.hit, f.bins),
    brier: brierDecomposition(f.confidence, f.hit, f.bins),
    bins: reliabilityBins(f.confidence, f.hit, f.bins),
  };
}

function scalar(c: Computed, what: Exclude<Ours, "bins">): number {
  switch (what) {
    case "ece":
      return c.ece;
    case "adaptiveEce":
      return c.adaptiveEce;
    case "top1":
      return c.brier.top1;
    case "reliability+withinVariance":
      return c.brier.reliability + c.brier.withinVariance;
    case "resolution":
      return c.brier.resolution;
    case "uncertainty":
      return c.brier.uncertainty;
  }
}

// calibration_curve lists the non-empty bins only; numpy's histogram counts every bin.
function binsAgree(mine: ReliabilityBin[], pkg: PackageBins): boolean {
  const full = mine.filter((b) => b.count > 0);
  return (
    mine.length === pkg.count.length &&
    mine.every((b, i) => b.count === pkg.count[i]) &&
    full.length === pkg.accuracy.length &&
    full.every((b, i) => close(b.accuracy, pkg.accuracy[i]!) && close(b.confidence, pkg.confidence[i]!))
  );
}

test("the fixtures cover what the packages are checked on", (t) => {
  t.is(fixtures.length, 7);
  t.deepEqual(
    [...new Set(fixtures.map((f) => f.bins))].sort((a, b) => a - b),
    [10, 15, 100],
  );
  t.true(fixtures.some((f) => f.confidence.length % f.bins !== 0));
  t.true(fixtures.some((f) => new Set(f.confidence).size < f.confidence.length));
  for (const what of ["ece", "adaptiveEce", "top1", "reliability+withinVariance", "resolution", "uncertainty"]) {
    t.true(
      fixtures.some((f) => f.checks.some((c) => c.ours === what && c.matches)),
      `${what} is compared somewhere`,
    );
  }
  for (const f of fixtures) {
    t.is(f.confidence.length, f.hit.length);
    t.true(f.confidence.every((c) => c > 0 && c <= 1));
    t.deepEqual(f.versions, {
      "uncertainty-calibration": "0.1.4",
      verif: "1.4.0",
      "scikit-learn": "1.9.1",
      numpy: "2.4.6",
    });
  }
});

for (const f of fixtures) {
  test(`${f.case} (N = ${f.confidence.length}, B = ${f.bins}): ${f.description}`, (t) => {
    const c = ours(f);
    for (const check of f.checks) {
      const label = `${check.package}: ${check.call}`;
      if (check.ours === "bins") {
        const agree = binsAgree(c.bins, check.value as PackageBins);
        if (check.matches) t.true(agree, label);
        else t.false(agree, `${label} should differ (${check.why})`);
        continue;
      }
      const mine = scalar(c, check.ours);
      const theirs = check.value as number;
      if (check.matches) t.true(close(mine, theirs), `${label}: ours ${mine}, package ${theirs}`);
      else t.false(close(mine, theirs), `${label} should differ (${check.why}): ours ${mine}, package ${theirs}`);
    }
  });

  test(`${f.case}: every Brier term from the packages' outputs`, (t) => {
    const c = ours(f);
    const n = f.confidence.length;
    const value = (pkg: string, call: string) => f.checks.find((x) => x.package === pkg && x.call.startsWith(call))!;
    const bs = value("verif", "verif.metric.Bs(").value as number;
    const rel = value("verif", "verif.metric.BsRel(").value as number;
    const res = value("verif", "verif.metric.BsRes(").value as number;
    const unc = value("verif", "verif.metric.BsUnc(").value as number;
    // verif's terms add up to Bs but for the covariance: Bs = BsRel − BsRes + BsUnc − 2·WBC.
    const wbc = (rel - res + unc - bs) / 2;
    t.true(close(c.brier.withinCovariance, wbc, 1e-10), `WBC: ours ${c.brier.withinCovariance}, verif ${wbc}`);
    t.true(Math.abs(c.brier.withinCovariance - wbc) < 1e-15);

    // Murphy's REL and RES, the ECE and the accuracy from calibration_curve's bin means and numpy's counts.
    const bins = value("scikit-learn+numpy", "sklearn.calibration.calibration_curve");
    if (!bins.matches) return;
    const b = bins.value as PackageBins;
    const counts = b.count.filter((x) => x > 0);
    const acc = counts.reduce((s, k, i) => s + k * b.accuracy[i]!, 0) / n;
    let murphyRel = 0;
    let murphyRes = 0;
    let ece = 0;
    counts.forEach((k, i) => {
      murphyRel += (k / n) * (b.confidence[i]! - b.accuracy[i]!) ** 2;
      murphyRes += (k / n) * (b.accuracy[i]! - acc) ** 2;
      ece += (k / n) * Math.abs(b.confidence[i]! - b.accuracy[i]!);
    });
    t.true(close(c.brier.reliability, murphyRel), `REL: ours ${c.brier.reliability}, packages ${murphyRel}`);
    t.true(close(c.brier.resolution, murphyRes), `RES: ours ${c.brier.resolution}, packages ${murphyRes}`);
    t.true(close(c.ece, ece), `ECE: ours ${c.ece}, packages ${ece}`);
    const wbv = rel - murphyRel; // verif's generalised reliability less Murphy's
    t.true(close(c.brier.withinVariance, wbv, 1e-10), `WBV: ours ${c.brier.withinVariance}, packages ${wbv}`);
    t.true(Math.abs(c.brier.withinVariance - wbv) < 1e-15);
  });
}
