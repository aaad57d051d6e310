// The efficiency audit's statistics: the within-round ratio to the reference, its median over rounds and a
// bootstrap interval that behaves as one should (exact where the data leave no doubt, wider with noise).
import test from "ava";

import { summariseAudit } from "../lib/experiments/framework/efficiency-audit.ts";

test("a constant ratio gives that ratio and a point interval; the reference is 1 exactly", (t) => {
  // Rounds of very different speed (a busy machine): the within-round ratio removes the drift.
  const ms = [100, 150, 300, 120, 90, 210].map((base) => [base, 1.1 * base]);
  const [ce, brier] = summariseAudit(["ce", "brier"], ms, "ce");
  t.deepEqual(ce!.ratio, { median: 1, low: 1, high: 1 });
  t.true(Math.abs(brier!.ratio.median - 1.1) < 1e-12);
  t.true(Math.abs(brier!.ratio.low - 1.1) < 1e-12 && Math.abs(brier!.ratio.high - 1.1) < 1e-12);
  t.is(brier!.medianMs, 1.1 * 135);
});

test("with noise the interval holds the median, narrows with more rounds, and is reproducible", (t) => {
  // Deterministic noise around a true ratio of 1.05.
  let state = 7;
  const noise = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 0.2;
  const rounds = (n: number) => Array.from({ length: n }, () => [100, 105 * (1 + noise())]);
  const few = summariseAudit(["ce", "dpsm"], rounds(10), "ce")[1]!.ratio;
  const many = summariseAudit(["ce", "dpsm"], rounds(200), "ce")[1]!.ratio;
  for (const r of [few, many]) t.true(r.low <= r.median && r.median <= r.high, JSON.stringify(r));
  t.true(many.high - many.low < few.high - few.low, `${JSON.stringify(few)} vs ${JSON.stringify(many)}`);
  t.true(many.low < 1.05 && 1.05 < many.high, JSON.stringify(many));
  const again = rounds(10);
  t.deepEqual(summariseAudit(["ce", "dpsm"], again, "ce"), summariseAudit(["ce", "dpsm"], again, "ce"));
});

test("a reference that was not timed is named", (t) => {
  t.throws(() => summariseAudit(["brier"], [[1]], "ce"), { message: /audit reference: "ce" is not among brier/ });
});
