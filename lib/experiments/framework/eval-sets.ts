// Which part of each evaluation set a report's numbers come from. Every profile evaluates whole sets by default
// (a cap of 0); a cap, a setting or its flag, evaluates the first sequences or examples only, for speed, and the
// report says which sets were capped and by how much, in its "What was run".

/** One evaluation set as a report states it. */
export interface EvaluationSet {
  /** e.g. "test", "validation (selection, temperature fit)", "OOD ptb" */
  name: string;
  /** sequences or examples in the whole set */
  total: number;
  /** the cap it was evaluated under: the first `cap` (0: none) */
  cap: number;
  /** the setting that caps it, e.g. "testMaxSequences" */
  setting: string;
  /** what `total` counts, e.g. "sequences" */
  unit: string;
  /** tokens in the first `n` sequences, where a token count says more than the sequences' */
  tokens?: (n: number) => number;
}

const count = (n: number) => n.toLocaleString("en-US");

/** How many of the set's sequences or examples were evaluated. */
export function evaluated(s: EvaluationSet): number {
  return s.cap > 0 ? Math.min(s.cap, s.total) : s.total;
}

/** Whether the set was evaluated in part. */
export function isCapped(s: EvaluationSet): boolean {
  return evaluated(s) < s.total;
}

function capped(s: EvaluationSet): string {
  const n = evaluated(s);
  const part = s.tokens ? s.tokens(n) / s.tokens(s.total) : n / s.total;
  const tokens = s.tokens ? `, ${count(s.tokens(n))} of ${count(s.tokens(s.total))} tokens` : "";
  const pct = 100 * part;
  const share = pct >= 10 ? pct.toFixed(0) : pct >= 1 ? pct.toFixed(1) : pct.toPrecision(1);
  return `${s.name}: the first ${count(n)} of ${count(s.total)} ${s.unit}${tokens} (${share} %; ${s.setting} ${s.cap})`;
}

function whole(s: EvaluationSet): string {
  return `${s.name} ${count(s.total)} ${s.unit}${s.tokens ? ` (${count(s.tokens(s.total))} tokens)` : ""}`;
}

/**
 * One line for a report's "What was run": the sets evaluated whole, and the capped ones in bold with how much of
 * each was evaluated and the setting that capped it.
 */
export function evaluationSetsLine(sets: readonly EvaluationSet[]): string {
  const part = sets.filter(isCapped);
  const all = sets.filter((s) => !isCapped(s));
  const wholeText = all.length ? `whole: ${all.map(whole).join("; ")}` : "";
  if (!part.length) return `Evaluation sets, all whole: ${all.map(whole).join("; ")}.`;
  return (
    `Evaluation sets — **capped for speed, a prefix evaluated** (0 for the setting, or its flag, evaluates the whole ` +
    `set): ${part.map(capped).join("; ")}${wholeText ? `. Evaluated ${wholeText}` : ""}.`
  );
}

/** Tokens in the first `n` rows of packed sequences (`lengths`: real tokens per row, as PackedTokens has them). */
export function packedTokens(lengths: ArrayLike<number>): (n: number) => number {
  const prefix = new Float64Array(lengths.length + 1);
  for (let i = 0; i < lengths.length; i++) prefix[i + 1] = prefix[i]! + lengths[i]!;
  return (n) => prefix[Math.min(n, lengths.length)]!;
}
