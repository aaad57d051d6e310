// The human study's statistics against the packages that define them (test/fixtures/human-eval/reference.json,
// made by dev/human-eval-reference.py): Krippendorff's α (nominal) on the worked example of Krippendorff (2011) and
// on A / tie / B choices with gaps, the Bradley–Terry MLE with ties as half-wins (choix), the exact sign test (scipy).
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { krippendorffAlphaNominal } from "../lib/human-eval/agreement.ts";
import { bradleyTerry } from "../lib/human-eval/bradley-terry.ts";
import { signTest } from "../lib/metrics/stats.ts";
import { packageRoot } from "../lib/native.ts";

interface Reference {
  krippendorffPaper: { data: (number | null)[][]; alpha: number };
  krippendorffRatings: { data: (number | null)[][]; alpha: number };
  bradleyTerry: { pairs: [number, number, number, number][]; strengths: number[] };
  signTest: { wins: number; losses: number; p: number }[];
}
const ref = JSON.parse(
  fs.readFileSync(path.join(packageRoot, "test", "fixtures", "human-eval", "reference.json"), "utf8"),
) as Reference;

test("Krippendorff's α (nominal): the paper's worked example (0.743) and the krippendorff package", (t) => {
  const paper = krippendorffAlphaNominal(ref.krippendorffPaper.data);
  t.is(paper.toFixed(3), "0.743", "Krippendorff (2011), section C");
  t.true(Math.abs(paper - ref.krippendorffPaper.alpha) < 1e-12, `${paper} vs ${ref.krippendorffPaper.alpha}`);
  const choices = krippendorffAlphaNominal(ref.krippendorffRatings.data);
  t.true(Math.abs(choices - ref.krippendorffRatings.alpha) < 1e-12, `${choices} vs ${ref.krippendorffRatings.alpha}`);
  // Labels are names, not numbers: the same choices as strings give the same α.
  const names = ["A", "tie", "B"];
  const asNames = ref.krippendorffRatings.data.map((r) => r.map((v) => (v === null ? null : names[v]!)));
  t.is(krippendorffAlphaNominal(asNames), choices);
  // Perfect agreement is 1; one value everywhere leaves α undefined; nothing pairable too.
  t.is(
    krippendorffAlphaNominal([
      ["A", "B", "tie"],
      ["A", "B", "tie"],
    ]),
    1,
  );
  t.true(
    Number.isNaN(
      krippendorffAlphaNominal([
        ["A", "A"],
        ["A", "A"],
      ]),
    ),
  );
  t.true(
    Number.isNaN(
      krippendorffAlphaNominal([
        ["A", null],
        [null, "B"],
      ]),
    ),
  );
});

test("Bradley–Terry (MM, ties as half-wins) equals choix's MLE; two systems give the win share", (t) => {
  // Each pair has two rows, (i, j) and (j, i), both listing the pair's ties: half of them in each.
  const outcomes = ref.bradleyTerry.pairs.map(([a, b, wins, ties]) => ({
    a,
    b,
    winsA: wins,
    winsB: 0,
    ties: ties / 2,
  }));
  const fit = bradleyTerry(3, outcomes);
  t.true(fit.converged);
  fit.strengths.forEach((s, i) => {
    t.true(
      Math.abs(s - ref.bradleyTerry.strengths[i]!) < 1e-7,
      `system ${i}: ${s} vs ${ref.bradleyTerry.strengths[i]}`,
    );
  });
  // With two systems the MLE is closed-form: π_a = (wins of a + ties / 2) / judgements.
  const two = bradleyTerry(2, [{ a: 0, b: 1, winsA: 13, winsB: 5, ties: 2 }]);
  t.true(Math.abs(two.strengths[0]! - 14 / 20) < 1e-10);
  t.throws(() => bradleyTerry(2, [{ a: 0, b: 2, winsA: 1, winsB: 1, ties: 0 }]), { message: /systems 0 and 2/ });
});

test("the sign test's two-sided p equals scipy.stats.binomtest", (t) => {
  for (const { wins, losses, p } of ref.signTest) {
    t.true(Math.abs(signTest(wins, losses) - p) < 1e-12, `${wins} vs ${losses}: ${signTest(wins, losses)} vs ${p}`);
  }
  t.true(Number.isNaN(signTest(0, 0)));
});
