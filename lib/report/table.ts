// Plain-text tables for terminals and Markdown reports: one header row, aligned columns.
export type Align = "left" | "right";

export interface Column {
  header: string;
  align?: Align;
}

/** A Markdown table whose columns are also aligned for reading in a terminal. */
export function formatTable(columns: (Column | string)[], rows: string[][]): string {
  const cols = columns.map((c) =>
    typeof c === "string" ? { header: c, align: "right" as Align } : { align: "right" as Align, ...c },
  );
  const widths = cols.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? "").length), 3));
  const pad = (s: string, i: number) => (cols[i]!.align === "left" ? s.padEnd(widths[i]!) : s.padStart(widths[i]!));
  const line = (cells: string[]) => `| ${cells.map((c, i) => pad(c, i)).join(" | ")} |`;
  const rule = `|${cols.map((c, i) => (c.align === "left" ? ":" + "-".repeat(widths[i]! + 1) : "-".repeat(widths[i]! + 1) + ":")).join("|")}|`;
  return [line(cols.map((c) => c.header)), rule, ...rows.map(line)].join("\n");
}

/** A number with `digits` significant decimals, or "–" when missing. */
export function fmt(x: number | undefined, digits = 1): string {
  return x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits);
}
