// Charts for the experiment reports: a Vega-Lite spec, compiled to Vega, rendered to SVG in Node (no
// canvas; Vega estimates text widths), then rasterised with resvg to a PNG at twice the size.
// Every chart writes `${outBase}.svg` and `${outBase}.png`, each atomically. The chart stack (Vega, Vega-Lite,
// resvg: ~60 packages, ~2 s) is loaded on the first chart, not when the package or a report module is imported.
import fs from "node:fs";
import path from "node:path";

import type { ResvgRenderOptions } from "@resvg/resvg-js";
import type * as vl from "vega-lite";

import { writeFileAtomic } from "../io/atomic.ts";
import type { ReliabilityBin } from "../metrics/calibration.ts";

export type { ReliabilityBin } from "../metrics/calibration.ts";

export interface Series {
  name: string;
  points: { x: number; y: number }[];
}

/** Absolute paths of the files written. */
export interface ChartFiles {
  svg: string;
  png: string;
}

export interface LineChartSpec {
  title: string;
  xTitle: string;
  yTitle: string;
  series: Series[];
  /** logarithmic y axis (points with y ≤ 0 are left out) */
  logY?: boolean;
  /** plot area in px (default 640 × 360); titles, axes and the legend come on top */
  width?: number;
  height?: number;
}

export interface ReliabilityPanel {
  name: string;
  bins: ReliabilityBin[];
  /** expected calibration error, shown in the panel's title */
  ece?: number;
}

export interface ReliabilitySpec {
  title: string;
  panels: ReliabilityPanel[];
}

export interface Bar {
  category: string;
  value: number;
  /** half-length of the error bar (value ± error) */
  error?: number;
  /** bars of the same category are grouped side by side, one colour per group */
  group?: string;
}

export interface BarChartSpec {
  title: string;
  yTitle: string;
  bars: Bar[];
}

export interface ScatterPoint {
  x: number;
  y: number;
  /** text drawn beside the point */
  label: string;
  /** points of the same group share a colour, named in the legend */
  group?: string;
}

export interface ScatterChartSpec {
  title: string;
  xTitle: string;
  yTitle: string;
  points: ScatterPoint[];
  /** plot area in px (default 640 × 400) */
  width?: number;
  height?: number;
}

export interface HeatmapCell {
  x: string;
  y: string;
  value: number;
}

export interface HeatmapChartSpec {
  title: string;
  xTitle: string;
  yTitle: string;
  /** one cell per (x, y); columns and rows keep the order in which their names first appear */
  cells: HeatmapCell[];
  /** title of the colour legend */
  valueTitle: string;
  /** decimals of the value printed in each cell (default 3) */
  digits?: number;
  /** default true; when false the colour scale is reversed, so better cells always get the same colour */
  higherIsBetter?: boolean;
  /** plot area in px (default 72 px per column and 44 px per row, at least 240 × 160) */
  width?: number;
  height?: number;
}

// ---------------------------------------------------------------------------------------------------
// Rendering

const FONT = "DejaVu Sans";
const FONT_FILES = [
  "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
  "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
];
const PNG_SCALE = 2;

// Tableau 10: distinct, colour-blind tolerable, and what readers know from matplotlib.
const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];

const CONFIG = {
  font: FONT,
  background: "white",
  padding: 16,
  view: { stroke: "#d0d0d0" },
  title: { fontSize: 17, fontWeight: "bold", anchor: "start", offset: 14, color: "#222" },
  axis: {
    labelFontSize: 12,
    titleFontSize: 13,
    titleFontWeight: "normal",
    titleColor: "#333",
    labelColor: "#444",
    gridColor: "#e6e6e6",
    domainColor: "#888",
    tickColor: "#888",
    titlePadding: 10,
  },
  legend: { labelFontSize: 12, titleFontSize: 12, titleFontWeight: "bold", symbolSize: 120, labelLimit: 320 },
  header: { labelFontSize: 13, titleFontSize: 13 },
  concat: { spacing: 28 },
  range: { category: PALETTE },
  line: { strokeWidth: 2 },
} as const;

// Vega lays out titles, legends and axis labels with text widths; without a canvas in Node it guesses
// 0.8 em per character, which leaves wide gaps. DejaVu Sans's own advance widths (ASCII 32–126, in em,
// read from DejaVuSans.ttf / DejaVuSans-Bold.ttf 2.37) measure as resvg will draw; other characters count
// 0.84 em (the widest common symbols: ±, −, ×). Installed on Vega's shared textMetrics — this module is
// what uses Vega in this process.
// prettier-ignore
const DEJAVU_SANS = [
  0.318,0.401,0.46,0.838,0.636,0.95,0.78,0.275,0.39,0.39,0.5,0.838,0.318,0.361,0.318,0.337,0.636,0.636,0.636,0.636,
  0.636,0.636,0.636,0.636,0.636,0.636,0.337,0.337,0.838,0.838,0.838,0.531,1.0,0.684,0.686,0.698,0.77,0.632,0.575,0.775,
  0.752,0.295,0.295,0.656,0.557,0.863,0.748,0.787,0.603,0.787,0.695,0.635,0.611,0.732,0.684,0.989,0.685,0.611,0.685,0.39,
  0.337,0.39,0.838,0.5,0.5,0.613,0.635,0.55,0.635,0.615,0.352,0.635,0.634,0.278,0.278,0.579,0.278,0.974,0.634,0.612,
  0.635,0.635,0.411,0.521,0.392,0.634,0.592,0.818,0.592,0.592,0.525,0.636,0.337,0.636,0.838,
];
// prettier-ignore
const DEJAVU_SANS_BOLD = [
  0.348,0.456,0.521,0.838,0.696,1.002,0.872,0.306,0.457,0.457,0.523,0.838,0.38,0.415,0.38,0.365,0.696,0.696,0.696,0.696,
  0.696,0.696,0.696,0.696,0.696,0.696,0.4,0.4,0.838,0.838,0.838,0.58,1.0,0.774,0.762,0.734,0.83,0.683,0.683,0.821,
  0.837,0.372,0.372,0.775,0.637,0.995,0.837,0.85,0.733,0.85,0.77,0.72,0.682,0.812,0.774,1.103,0.771,0.724,0.725,0.457,
  0.365,0.457,0.838,0.5,0.5,0.675,0.716,0.593,0.716,0.678,0.435,0.716,0.712,0.343,0.343,0.665,0.343,1.042,0.712,0.687,
  0.716,0.716,0.493,0.595,0.478,0.712,0.652,0.924,0.645,0.652,0.582,0.712,0.365,0.712,0.838,
];

interface TextItem {
  fontSize?: number | string;
  fontWeight?: number | string;
  limit?: number;
}

function textWidth(item: TextItem, text: unknown): number {
  const size = item.fontSize != null ? Number(item.fontSize) || 0 : 11;
  const s = text == null ? "" : String(text).trim();
  const bold = item.fontWeight === "bold" || item.fontWeight === "bolder" || Number(item.fontWeight) >= 600;
  const table = bold ? DEJAVU_SANS_BOLD : DEJAVU_SANS;
  let em = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    em += c >= 32 && c <= 126 ? table[c - 32]! : 0.84;
  }
  const w = em * size;
  // Vega asks for the width of the text as drawn, i.e. after truncation to the item's limit.
  return item.limit && item.limit > 0 ? Math.min(w, item.limit) : w;
}

let chartStack:
  Promise<[typeof import("vega"), typeof import("vega-lite"), typeof import("@resvg/resvg-js")]> | undefined;

/** Vega (its text measure set to textWidth, once), Vega-Lite and resvg, loaded on first use. */
function loadChartStack() {
  chartStack ??= Promise.all([import("vega"), import("vega-lite"), import("@resvg/resvg-js")]).then((stack) => {
    (stack[0] as unknown as { textMetrics: { width: (item: TextItem, text: unknown) => number } }).textMetrics.width =
      textWidth;
    return stack;
  });
  return chartStack;
}

function fontOptions(): NonNullable<ResvgRenderOptions["font"]> {
  const files = FONT_FILES.filter((f) => fs.existsSync(f));
  return { loadSystemFonts: true, defaultFontFamily: FONT, ...(files.length ? { fontFiles: files } : {}) };
}

/**
 * A Vega-Lite spec compiled, rendered to SVG and rasterised to PNG, in memory. resvg parses and rasterises on
 * libuv's pool: tens of milliseconds per chart that a training run's event loop (lib/tensorboard-log.ts) keeps.
 */
async function rasterise(spec: vl.TopLevelSpec): Promise<{ svg: string; png: Uint8Array }> {
  const [vega, vl, { renderAsync }] = await loadChartStack();
  const { spec: vgSpec } = vl.compile({ ...spec, config: { ...CONFIG, ...(spec.config ?? {}) } } as vl.TopLevelSpec);
  const view = new vega.View(vega.parse(vgSpec), { renderer: "none" });
  let svg: string;
  try {
    svg = await view.toSVG();
  } finally {
    view.finalize();
  }
  const image = await renderAsync(svg, {
    font: fontOptions(),
    fitTo: { mode: "width", value: Math.round(svgWidth(svg) * PNG_SCALE) },
    background: "white",
    shapeRendering: 2,
    textRendering: 1,
  });
  return { svg, png: image.asPng() };
}

/** Compiles a Vega-Lite spec, renders it to SVG and PNG, and writes `${outBase}.svg` / `.png`. */
async function render(spec: vl.TopLevelSpec, outBase: string): Promise<ChartFiles> {
  const { svg, png } = await rasterise(spec);
  const base = path.resolve(outBase);
  const files = { svg: `${base}.svg`, png: `${base}.png` };
  writeFileAtomic(files.svg, svg);
  writeFileAtomic(files.png, png);
  return files;
}

const finite = (x: number) => Number.isFinite(x);

/** The width attribute of the root <svg> element (Vega writes it in px). */
function svgWidth(svg: string): number {
  const m = /<svg\b[^>]*?\swidth="([\d.]+)"/.exec(svg);
  const w = m ? Number(m[1]) : NaN;
  if (!(w > 0)) throw new Error("plots: Vega produced an SVG without a width");
  return w;
}

// ---------------------------------------------------------------------------------------------------
// Charts

/** One line per series, coloured, with a legend; optional log y axis. */
export async function lineChart(spec: LineChartSpec, outBase: string): Promise<ChartFiles> {
  const chart = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: spec.title,
    ...linePanel(
      spec,
      spec.series.map((s) => s.name),
    ),
  } as vl.TopLevelSpec;
  return render(chart, outBase);
}

export interface PanelChartSpec {
  title: string;
  xTitle: string;
  /** stacked top to bottom, each with its own y axis, over one x axis title; series of one name share a colour */
  panels: { yTitle: string; series: Series[]; logY?: boolean }[];
  /** each panel's plot area in px (default 640 × 150) */
  width?: number;
  height?: number;
}

/** Panels of lines stacked over the same x quantity (e.g. diagnostics over steps), one colour legend. */
export async function panelChart(spec: PanelChartSpec, outBase: string): Promise<ChartFiles> {
  const names = [...new Set(spec.panels.flatMap((p) => p.series.map((s) => s.name)))];
  const chart = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: spec.title,
    // The x axis's title under the last panel only: the panels share it.
    vconcat: spec.panels.map((p, i) =>
      linePanel(
        {
          ...p,
          xTitle: i === spec.panels.length - 1 ? spec.xTitle : "",
          width: spec.width ?? 640,
          height: spec.height ?? 150,
        },
        names,
      ),
    ),
    resolve: { scale: { color: "shared" } },
  } as vl.TopLevelSpec;
  return render(chart, outBase);
}

// A line chart's body (data, mark, encoding) without its title: one chart or one panel of several.
function linePanel(spec: Omit<LineChartSpec, "title">, names: string[]) {
  const values = spec.series.flatMap((s) =>
    s.points
      .filter((p) => finite(p.x) && finite(p.y) && (!spec.logY || p.y > 0))
      .map((p) => ({ series: s.name, x: p.x, y: p.y })),
  );
  // Markers only where a line has few points (evaluations every so often); dense curves stay clean.
  const maxPoints = Math.max(0, ...spec.series.map((s) => s.points.length));
  return {
    width: spec.width ?? 640,
    height: spec.height ?? 360,
    data: { values },
    mark: { type: "line", point: maxPoints <= 40 ? { size: 36, filled: true } : false, interpolate: "linear" },
    encoding: {
      x: {
        field: "x",
        type: "quantitative",
        title: spec.xTitle || null,
        scale: { nice: true, zero: false },
        axis: { format: ",~r", grid: true, tickCount: 8 },
      },
      y: {
        field: "y",
        type: "quantitative",
        title: spec.yTitle,
        scale: spec.logY ? { type: "log", nice: false } : { zero: false, nice: true },
        axis: { format: ",~r", grid: true },
      },
      color: {
        field: "series",
        type: "nominal",
        title: null,
        scale: { domain: names },
        legend: { orient: "right", symbolType: "stroke", symbolStrokeWidth: 3 },
      },
      tooltip: [
        { field: "series", type: "nominal" },
        { field: "x", type: "quantitative", title: spec.xTitle },
        { field: "y", type: "quantitative", title: spec.yTitle, format: ".4~g" },
      ],
    },
  };
}

const REL_LEGEND = { title: null, orient: "bottom", direction: "horizontal", labelFontSize: 12 };
// Two legends side by side under the panels: a filled square for the bars, lines for the two rules.
const REL_FILL = {
  scale: { domain: ["Accuracy"], range: ["#4e79a7"] },
  legend: { ...REL_LEGEND, symbolType: "square" },
};
const REL_LINES = ["Mean confidence", "Perfect calibration (y = x)"];
const REL_STROKE = {
  scale: { domain: REL_LINES, range: ["#e15759", "#7f7f7f"] },
  legend: { ...REL_LEGEND, symbolType: "stroke", symbolStrokeWidth: 2.5 },
};
const REL_DASH = {
  scale: {
    domain: REL_LINES,
    range: [
      [1, 0],
      [5, 4],
    ],
  },
  legend: { ...REL_LEGEND, symbolType: "stroke", symbolStrokeWidth: 2.5 },
};

/**
 * Reliability diagrams side by side, one panel per model: a bar per non-empty confidence bin (spanning the
 * bin) up to its accuracy, a red tick at the bin's mean confidence, the diagonal y = x dashed, and under
 * each panel a small histogram of the share of tokens per bin.
 */
export async function reliabilityDiagram(spec: ReliabilitySpec, outBase: string): Promise<ChartFiles> {
  return render(reliabilityChart(spec), outBase);
}

/** The reliability diagram as PNG bytes, written nowhere (for TensorBoard: lib/tensorboard-log.ts). */
export async function reliabilityDiagramPng(spec: ReliabilitySpec): Promise<Uint8Array> {
  return (await rasterise(reliabilityChart(spec))).png;
}

function reliabilityChart(spec: ReliabilitySpec): vl.TopLevelSpec {
  const size = 260;
  // Up to three panels in a row; four as 2 × 2; more in rows of three.
  const n = spec.panels.length;
  const columns = n <= 3 ? Math.max(1, n) : n === 4 ? 2 : 3;
  const xAxis = (labels: boolean) => ({
    scale: { domain: [0, 1] },
    axis: labels
      ? { title: "Confidence (top-1 probability)", format: ".1f", tickCount: 5 }
      : { title: null, labels: false, ticks: false, tickCount: 5 },
  });

  const panels = spec.panels.map((panel, i) => {
    const bins = panel.bins.filter((b) => b.count > 0 && finite(b.accuracy) && finite(b.confidence));
    const total = bins.reduce((s, b) => s + b.count, 0);
    const pad = (b: ReliabilityBin) => Math.min(0.004, (b.upper - b.lower) / 10);
    const values = bins.map((b) => ({
      lo: b.lower + pad(b),
      hi: b.upper - pad(b),
      mid: (b.lower + b.upper) / 2,
      accuracy: b.accuracy,
      confidence: b.confidence,
      count: b.count,
      share: total > 0 ? b.count / total : 0,
    }));
    const title =
      panel.ece === undefined || !finite(panel.ece) ? panel.name : `${panel.name}  (ECE ${panel.ece.toFixed(4)})`;
    const yAxisTitle = i % columns === 0;
    return {
      vconcat: [
        {
          title: { text: title, fontSize: 14, fontWeight: "bold", anchor: "middle", offset: 8 },
          width: size,
          height: size,
          data: { values },
          layer: [
            {
              mark: { type: "rect", opacity: 0.85 },
              encoding: {
                x: { field: "lo", type: "quantitative", ...xAxis(false) },
                x2: { field: "hi" },
                y: {
                  field: "accuracy",
                  type: "quantitative",
                  scale: { domain: [0, 1] },
                  axis: { title: yAxisTitle ? "Accuracy" : null, format: ".1f", tickCount: 5 },
                },
                y2: { datum: 0 },
                fill: { datum: "Accuracy", ...REL_FILL },
                tooltip: [
                  { field: "mid", type: "quantitative", title: "bin centre", format: ".3f" },
                  { field: "accuracy", type: "quantitative", format: ".4f" },
                  { field: "confidence", type: "quantitative", title: "mean confidence", format: ".4f" },
                  { field: "count", type: "quantitative", format: "," },
                ],
              },
            },
            {
              data: { values: [{ a: 0, b: 1 }] },
              mark: { type: "rule", strokeDash: [5, 4], strokeWidth: 1.5 },
              encoding: {
                x: { field: "a", type: "quantitative", ...xAxis(false) },
                y: { field: "a", type: "quantitative" },
                x2: { field: "b" },
                y2: { field: "b" },
                stroke: { datum: REL_LINES[1], ...REL_STROKE },
                strokeDash: { datum: REL_LINES[1], ...REL_DASH },
              },
            },
            {
              mark: { type: "rule", strokeWidth: 2.5 },
              encoding: {
                x: { field: "lo", type: "quantitative" },
                x2: { field: "hi" },
                y: { field: "confidence", type: "quantitative" },
                stroke: { datum: REL_LINES[0], ...REL_STROKE },
                strokeDash: { datum: REL_LINES[0], ...REL_DASH },
              },
            },
          ],
        },
        {
          width: size,
          height: 72,
          data: { values },
          mark: { type: "rect", color: "#9db4cf" },
          encoding: {
            x: { field: "lo", type: "quantitative", ...xAxis(true) },
            x2: { field: "hi" },
            y: {
              field: "share",
              type: "quantitative",
              scale: { domain: [0, Math.max(1e-9, ...values.map((v) => v.share))], nice: false },
              axis: { title: yAxisTitle ? "Tokens" : null, format: ".0%", tickCount: 2 },
            },
            y2: { datum: 0 },
            tooltip: [
              { field: "count", type: "quantitative", format: "," },
              { field: "share", type: "quantitative", format: ".2%" },
            ],
          },
        },
      ],
      spacing: 6,
    };
  });

  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: spec.title,
    concat: panels,
    columns,
    spacing: { column: 28, row: 36 },
    resolve: { scale: { fill: "shared", stroke: "shared", strokeDash: "shared" } },
  } as unknown as vl.TopLevelSpec;
}

/** Bars per category (grouped side by side when bars carry a group), with optional ± error bars. */
export async function barChart(spec: BarChartSpec, outBase: string): Promise<ChartFiles> {
  const categories = [...new Set(spec.bars.map((b) => b.category))];
  const groups = [...new Set(spec.bars.flatMap((b) => (b.group === undefined ? [] : [b.group])))];
  const grouped = groups.length > 0;
  const values = spec.bars
    .filter((b) => finite(b.value))
    .map((b) => {
      const e = b.error !== undefined && finite(b.error) ? Math.abs(b.error) : undefined;
      return {
        category: b.category,
        group: b.group ?? "",
        value: b.value,
        ...(e !== undefined ? { lo: b.value - e, hi: b.value + e, error: e } : {}),
      };
    });
  const longest = Math.max(0, ...categories.map((c) => c.length));
  const slanted = longest * categories.length * 7.5 > 600;
  const x = {
    field: "category",
    type: "nominal",
    title: null,
    sort: categories,
    scale: { paddingInner: 0.25, paddingOuter: 0.15 },
    axis: { labelAngle: slanted ? -30 : 0, labelLimit: 220, labelFontSize: 12, ticks: false, domainColor: "#888" },
  };
  const offset = grouped
    ? { xOffset: { field: "group", type: "nominal", sort: groups, scale: { paddingInner: 0.08 } } }
    : {};
  const colour = grouped
    ? {
        color: {
          field: "group",
          type: "nominal",
          title: null,
          sort: groups,
          scale: { domain: groups },
          legend: { orient: "right" },
        },
      }
    : {};
  const tooltip = [
    { field: "category", type: "nominal" },
    ...(grouped ? [{ field: "group", type: "nominal" }] : []),
    { field: "value", type: "quantitative", format: ".4~g" },
    { field: "error", type: "quantitative", title: "±", format: ".3~g" },
  ];
  const hasErrors = values.some((v) => "lo" in v);
  // Value labels above each bar (or its error bar) when all bars are ≥ 0 and every label fits within its
  // bar's width; the y axis then gets 8 % headroom for them.
  const barWidth = (640 / Math.max(1, categories.length)) * 0.75 * (grouped ? 0.92 / groups.length : 1);
  const labelled =
    values.length > 0 &&
    values.every(
      (v) =>
        v.value >= 0 &&
        (v.lo ?? 0) >= 0 &&
        textWidth({ fontSize: 11 }, String(Number(v.value.toPrecision(4)))) <= barWidth + 4,
    );
  const yScale = labelled ? { domainMax: Math.max(...values.map((v) => v.hi ?? v.value)) * 1.08 } : {};
  const chart = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: spec.title,
    width: 640,
    height: 360,
    data: { values },
    encoding: { x, ...offset },
    layer: [
      {
        mark: { type: "bar", color: PALETTE[0], cornerRadiusTopLeft: 2, cornerRadiusTopRight: 2 },
        encoding: {
          y: {
            field: "value",
            type: "quantitative",
            title: spec.yTitle,
            scale: { nice: true, ...yScale },
            axis: { format: "~g", grid: true },
          },
          ...colour,
          tooltip,
        },
      },
      ...(hasErrors
        ? [
            {
              transform: [{ filter: "isValid(datum.lo)" }],
              mark: { type: "errorbar", ticks: { width: 8, color: "#222" }, rule: { color: "#222", strokeWidth: 1.5 } },
              encoding: { y: { field: "lo", type: "quantitative", title: spec.yTitle }, y2: { field: "hi" } },
            },
          ]
        : []),
      ...(labelled
        ? [
            {
              transform: [{ calculate: "isValid(datum.hi) ? max(datum.hi, datum.value) : datum.value", as: "top" }],
              mark: { type: "text", baseline: "bottom", dy: -4, fontSize: 11, color: "#333" },
              encoding: {
                y: { field: "top", type: "quantitative" },
                text: { field: "value", type: "quantitative", format: ".4~r" },
              },
            },
          ]
        : []),
    ],
  } as unknown as vl.TopLevelSpec;
  return render(chart, outBase);
}

/** Throws unless `xs` is a non-empty array; `what` names the argument ("scatterChart: spec.points"). */
function requireNonEmpty(xs: readonly unknown[] | undefined, what: string): void {
  if (!Array.isArray(xs) || xs.length === 0) throw new Error(`${what} must be a non-empty array`);
}

/** Throws unless `x` is a finite number; `what` names it ("heatmapChart: spec.cells[3].value"). */
function requireFinite(x: unknown, what: string): void {
  if (typeof x !== "number" || !Number.isFinite(x))
    throw new Error(`${what} must be a finite number, got ${String(x)}`);
}

/**
 * One point per item at (x, y), its label written beside it; coloured by group with a legend when the
 * points carry groups. Throws on an empty list or a non-finite coordinate.
 */
export async function scatterChart(spec: ScatterChartSpec, outBase: string): Promise<ChartFiles> {
  requireNonEmpty(spec.points, "scatterChart: spec.points");
  spec.points.forEach((p, i) => {
    requireFinite(p.x, `scatterChart: spec.points[${i}].x`);
    requireFinite(p.y, `scatterChart: spec.points[${i}].y`);
  });
  const groups = [...new Set(spec.points.flatMap((p) => (p.group === undefined ? [] : [p.group])))];
  const grouped = groups.length > 0;
  const NO_GROUP = "(no group)";
  if (grouped && spec.points.some((p) => p.group === undefined)) groups.push(NO_GROUP);
  const values = spec.points.map((p) => ({ x: p.x, y: p.y, label: p.label, group: p.group ?? NO_GROUP }));
  const colour = grouped
    ? {
        color: {
          field: "group",
          type: "nominal",
          title: null,
          sort: groups,
          scale: { domain: groups },
          legend: { orient: "right", symbolType: "circle" },
        },
      }
    : { color: { value: PALETTE[0] } };
  const chart = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: spec.title,
    width: spec.width ?? 640,
    height: spec.height ?? 400,
    data: { values },
    encoding: {
      x: {
        field: "x",
        type: "quantitative",
        title: spec.xTitle,
        scale: { zero: false, nice: true, padding: 16 },
        axis: { format: "~g", grid: true, tickCount: 8 },
      },
      y: {
        field: "y",
        type: "quantitative",
        title: spec.yTitle,
        scale: { zero: false, nice: true, padding: 16 },
        axis: { format: "~g", grid: true },
      },
    },
    layer: [
      {
        mark: { type: "point", filled: true, size: 90, opacity: 0.9, stroke: "white", strokeWidth: 0.8 },
        encoding: {
          ...colour,
          tooltip: [
            { field: "label", type: "nominal" },
            ...(grouped ? [{ field: "group", type: "nominal" }] : []),
            { field: "x", type: "quantitative", title: spec.xTitle, format: ".4~g" },
            { field: "y", type: "quantitative", title: spec.yTitle, format: ".4~g" },
          ],
        },
      },
      {
        mark: { type: "text", align: "left", baseline: "middle", dx: 8, fontSize: 11, color: "#333", limit: 240 },
        encoding: { text: { field: "label", type: "nominal" } },
      },
    ],
  } as unknown as vl.TopLevelSpec;
  return render(chart, outBase);
}

/**
 * A grid of cells (x columns × y rows) filled on a sequential colour scale, each with its value printed in
 * a colour readable on the fill. With `higherIsBetter: false` the scale is reversed, so the better end is
 * always the same colour. Throws on an empty list, a non-finite value or a repeated (x, y).
 */
export async function heatmapChart(spec: HeatmapChartSpec, outBase: string): Promise<ChartFiles> {
  requireNonEmpty(spec.cells, "heatmapChart: spec.cells");
  const seen = new Set<string>();
  spec.cells.forEach((c, i) => {
    requireFinite(c.value, `heatmapChart: spec.cells[${i}].value`);
    const key = JSON.stringify([c.x, c.y]);
    if (seen.has(key)) throw new Error(`heatmapChart: spec.cells[${i}] repeats the cell x=${c.x}, y=${c.y}`);
    seen.add(key);
  });
  const digits = spec.digits ?? 3;
  if (!Number.isInteger(digits) || digits < 0 || digits > 20) {
    throw new Error(`heatmapChart: spec.digits must be an integer in 0..20, got ${String(spec.digits)}`);
  }
  const higherIsBetter = spec.higherIsBetter ?? true;
  const xs = [...new Set(spec.cells.map((c) => c.x))];
  const ys = [...new Set(spec.cells.map((c) => c.y))];
  const lo = Math.min(...spec.cells.map((c) => c.value));
  const hi = Math.max(...spec.cells.map((c) => c.value));
  // Viridis runs from dark purple (low) to yellow (high); reversed when lower is better, so the better
  // end is yellow either way. Text is white on the darker half of the scale (`light`), near-black on the
  // lighter half.
  const values = spec.cells.map((c) => {
    const t = hi > lo ? (c.value - lo) / (hi - lo) : 0.5;
    const position = higherIsBetter ? t : 1 - t;
    return { x: c.x, y: c.y, value: c.value, text: c.value.toFixed(digits), light: position < 0.55 };
  });
  const chart = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: spec.title,
    width: spec.width ?? Math.max(240, 72 * xs.length),
    height: spec.height ?? Math.max(160, 44 * ys.length),
    data: { values },
    encoding: {
      x: {
        field: "x",
        type: "ordinal",
        title: spec.xTitle,
        sort: xs,
        scale: { domain: xs },
        axis: { labelAngle: 0, ticks: false, domain: false },
      },
      y: {
        field: "y",
        type: "ordinal",
        title: spec.yTitle,
        sort: ys,
        scale: { domain: ys },
        axis: { ticks: false, domain: false },
      },
    },
    layer: [
      {
        mark: { type: "rect", stroke: "white", strokeWidth: 1.5 },
        encoding: {
          color: {
            field: "value",
            type: "quantitative",
            title: spec.valueTitle,
            scale: { scheme: "viridis", reverse: !higherIsBetter, ...(hi > lo ? {} : { domain: [lo - 1, hi + 1] }) },
            legend: { orient: "right", format: "~g", gradientLength: 160 },
          },
          tooltip: [
            { field: "x", type: "ordinal", title: spec.xTitle },
            { field: "y", type: "ordinal", title: spec.yTitle },
            { field: "value", type: "quantitative", title: spec.valueTitle, format: ".4~g" },
          ],
        },
      },
      {
        mark: { type: "text", baseline: "middle", fontSize: 12 },
        encoding: {
          text: { field: "text", type: "nominal" },
          color: { condition: { test: "datum.light", value: "white" }, value: "#1a1a1a" },
        },
      },
    ],
    config: { view: { stroke: null } },
  } as unknown as vl.TopLevelSpec;
  return render(chart, outBase);
}
