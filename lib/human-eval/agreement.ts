// Krippendorff's α for nominal data: how far raters agree beyond what their pooled choices would give by chance.
// Written out (no maintained JavaScript package computes it): the coincidence-matrix form of Krippendorff (2011),
// "Computing Krippendorff's Alpha-Reliability", checked against that paper's worked example and the `krippendorff`
// Python package in test/human-eval-stats.test.ts (dev/human-eval-reference.py made the figures).

/** One rater's values per unit; null (or undefined) where that rater gave none. */
export type RatingRow = readonly (string | number | null | undefined)[];

/**
 * Krippendorff's α (nominal) of `rows` (one row per rater, one column per unit). Units with fewer than two values
 * are not pairable and are left out. NaN when nothing is pairable or every pairable value is the same (the
 * expected disagreement is 0: α is undefined).
 */
export function krippendorffAlphaNominal(rows: readonly RatingRow[]): number {
  const units = Math.max(0, ...rows.map((r) => r.length));
  // o[c][k]: the coincidences of values c and k, each unit's ordered pairs of values from different raters
  // weighted 1 / (m_u − 1).
  const o = new Map<string, Map<string, number>>();
  const add = (c: string, k: string, w: number) => {
    const row = o.get(c) ?? new Map<string, number>();
    row.set(k, (row.get(k) ?? 0) + w);
    o.set(c, row);
  };
  for (let u = 0; u < units; u++) {
    const values = rows
      .map((r) => r[u])
      .filter((v) => v !== null && v !== undefined)
      .map(String);
    const m = values.length;
    if (m < 2) continue;
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) if (i !== j) add(values[i]!, values[j]!, 1 / (m - 1));
  }
  const totals = new Map([...o].map(([c, row]) => [c, [...row.values()].reduce((s, x) => s + x, 0)]));
  const n = [...totals.values()].reduce((s, x) => s + x, 0);
  let observed = 0;
  for (const [c, row] of o) for (const [k, x] of row) if (c !== k) observed += x;
  let expected = 0;
  for (const [c, nc] of totals) for (const [k, nk] of totals) if (c !== k) expected += nc * nk;
  if (n === 0 || expected === 0) return NaN;
  return 1 - ((n - 1) * observed) / expected;
}
