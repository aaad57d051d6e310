// Charts: each function writes a complete SVG (titles and names in it) and a PNG twice its size that is
// a real picture — decoded back with resvg and checked for many distinct colours, not one flat fill.
import fs from "node:fs";
import path from "node:path";

import { Resvg } from "@resvg/resvg-js";
import test from "ava";

import {
  barChart,
  type ChartFiles,
  heatmapChart,
  lineChart,
  panelChart,
  reliabilityDiagram,
  type ReliabilityBin,
  scatterChart,
} from "../lib/report/plots.ts";
import { sharedTmpDir } from "./helpers/tmp.ts";

const dir = sharedTmpDir("dpsm-plots-");

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

interface Checked {
  svg: string;
  width: number;
  height: number;
}

/** Decodes a PNG by drawing it inside an SVG with resvg; returns the number of distinct RGBA values. */
function distinctPixels(png: Buffer, width: number, height: number): number {
  const wrapper =
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${height}">` +
    `<image width="${width}" height="${height}" xlink:href="data:image/png;base64,${png.toString("base64")}"/></svg>`;
  const img = new Resvg(wrapper, { font: { loadSystemFonts: false } }).render();
  const px = img.pixels;
  const seen = new Set<number>();
  for (let i = 0; i + 3 < px.length; i += 4) seen.add(px.readUInt32BE(i));
  return seen.size;
}

function checkFiles(t: import("ava").ExecutionContext, files: ChartFiles, outBase: string, texts: string[]): Checked {
  t.is(files.svg, path.resolve(`${outBase}.svg`));
  t.is(files.png, path.resolve(`${outBase}.png`));
  t.true(path.isAbsolute(files.svg) && path.isAbsolute(files.png));

  const svg = fs.readFileSync(files.svg, "utf8");
  t.true(svg.startsWith("<svg"), "SVG starts with <svg");
  t.true(svg.trimEnd().endsWith("</svg>"), "SVG is complete");
  for (const s of texts) t.true(svg.includes(s), `SVG contains ${JSON.stringify(s)}`);
  t.true(svg.includes('font-family="DejaVu Sans"'));
  const svgW = Number(/<svg\b[^>]*?\swidth="([\d.]+)"/.exec(svg)?.[1]);
  const svgH = Number(/<svg\b[^>]*?\sheight="([\d.]+)"/.exec(svg)?.[1]);

  const png = fs.readFileSync(files.png);
  t.deepEqual(png.subarray(0, 8), PNG_SIGNATURE, "PNG signature");
  t.is(png.subarray(12, 16).toString("latin1"), "IHDR");
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  t.true(width > 0 && height > 0);
  // Rendered at twice the SVG's size.
  t.is(width, Math.round(svgW * 2));
  t.true(Math.abs(height - svgH * 2) <= 2, `PNG height ${height} vs 2 × ${svgH}`);
  t.true(png.length > 8000, `PNG of ${png.length} bytes`);
  // Lines, fills and anti-aliased text: far more than a handful of colours.
  t.true(distinctPixels(png, width, height) > 50);

  // Written through a temporary name: nothing else is left in the folder.
  t.deepEqual(
    fs.readdirSync(path.dirname(files.svg)).filter((f) => f.endsWith(".tmp")),
    [],
  );
  return { svg, width, height };
}

test("lineChart writes an SVG with the title, axis titles and series names, and a PNG", async (t) => {
  const steps = [0, 100, 200, 300, 400, 500, 600];
  const series = [
    { name: "cross-entropy", points: steps.map((x, i) => ({ x, y: 900 / (1 + i) + 30 })) },
    { name: "brier", points: steps.map((x, i) => ({ x, y: 1200 / (1 + 0.5 * i) + 40 })) },
    { name: "dpsm-linear", points: steps.map((x, i) => ({ x, y: 950 / (1 + i) + 31 })) },
  ];
  const outBase = path.join(dir, "nested", "folder", "ppl");
  const files = await lineChart(
    { title: "Validation perplexity", xTitle: "Optimiser step", yTitle: "Perplexity", series, logY: true },
    outBase,
  );
  const { width } = checkFiles(t, files, outBase, [
    "Validation perplexity",
    "Optimiser step",
    "Perplexity",
    ...series.map((s) => s.name),
  ]);
  // 640 px of plot, axes and a legend beside it, at 2×.
  t.true(width > 2 * 640);
  // Points a log axis cannot show (y ≤ 0, non-finite) are left out instead of breaking the chart.
  const files2 = await lineChart(
    {
      title: "Loss",
      xTitle: "Step",
      yTitle: "Loss",
      logY: true,
      width: 320,
      height: 200,
      series: [
        {
          name: "s",
          points: [
            { x: 0, y: 0 },
            { x: 1, y: NaN },
            { x: 2, y: 2 },
            { x: 3, y: 1 },
          ],
        },
      ],
    },
    path.join(dir, "loss"),
  );
  checkFiles(t, files2, path.join(dir, "loss"), ["Loss", "Step"]);
});

test("panelChart: stacked panels over one x axis, each with its y title, one legend for all", async (t) => {
  const steps = Array.from({ length: 60 }, (_, i) => i + 1);
  const panel = (yTitle: string, f: (x: number, k: number) => number, logY = false) => ({
    yTitle,
    logY,
    series: ["ce", "brier"].map((name, k) => ({ name, points: steps.map((x) => ({ x, y: f(x, k) })) })),
  });
  const outBase = path.join(dir, "panels");
  const files = await panelChart(
    {
      title: "Diagnostics",
      xTitle: "optimiser step",
      panels: [
        panel("alpha", (x, k) => k * Math.min(1, x / 10)),
        panel("gradient norm", (x, k) => 10 ** (-4 * k) / Math.sqrt(x), true),
        panel("update ratio", (x, k) => 0.01 / (1 + k + x / 30), true),
      ],
    },
    outBase,
  );
  const { svg, height } = checkFiles(t, files, outBase, [
    "Diagnostics",
    "alpha",
    "gradient norm",
    "update ratio",
    "ce",
    "brier",
  ]);
  // The shared x title once, under the last panel; three panels of 150 px stacked, at 2×.
  t.is(svg.split(">optimiser step</text>").length - 1, 1);
  t.true(height > 2 * 3 * 150);
});

test("reliabilityDiagram: one panel per model with its ECE, empty bins skipped", async (t) => {
  const bins = (shift: number): ReliabilityBin[] =>
    Array.from({ length: 10 }, (_, i) => ({
      lower: i / 10,
      upper: (i + 1) / 10,
      count: i === 7 ? 0 : 1000 >> i,
      confidence: i === 7 ? NaN : i / 10 + 0.05,
      accuracy: i === 7 ? NaN : Math.min(1, Math.max(0, i / 10 + 0.05 + shift)),
    }));
  const outBase = path.join(dir, "reliability");
  const files = await reliabilityDiagram(
    {
      title: "Reliability of top-1 predictions",
      panels: [
        { name: "ce", bins: bins(-0.08), ece: 0.0312 },
        { name: "brier", bins: bins(0.01), ece: 0.0061 },
      ],
    },
    outBase,
  );
  const { svg } = checkFiles(t, files, outBase, [
    "Reliability of top-1 predictions",
    "ce",
    "brier",
    "ECE 0.0312",
    "ECE 0.0061",
    "Accuracy",
    "Mean confidence",
    "Confidence",
  ]);
  // One accuracy bar (described with its bin centre) per non-empty bin, per panel: 9 × 2.
  t.is(svg.match(/bin centre: /g)?.length, 18);
  t.false(svg.includes("bin centre: 0.750"));
});

test("barChart: grouped bars with error bars and a legend; plain bars without groups", async (t) => {
  const outBase = path.join(dir, "bars");
  const bars = ["WikiText-103", "LAMBADA"].flatMap((category, i) =>
    ["ce", "brier", "dpsm-linear"].map((group, j) => ({ category, group, value: 0.01 * (1 + i + j), error: 0.002 })),
  );
  const files = await barChart({ title: "ECE by loss", yTitle: "ECE-10", bars }, outBase);
  checkFiles(t, files, outBase, ["ECE by loss", "ECE-10", "WikiText-103", "LAMBADA", "ce", "brier", "dpsm-linear"]);

  const plainBase = path.join(dir, "bars-plain");
  const plain = await barChart(
    {
      title: "Final perplexity",
      yTitle: "Perplexity",
      bars: [
        { category: "ce", value: 30.2, error: 0.3 },
        { category: "brier", value: 44.9 },
        { category: "dpsm", value: 31 },
      ],
    },
    plainBase,
  );
  const { svg } = checkFiles(t, plain, plainBase, ["Final perplexity", "Perplexity", "ce", "brier", "dpsm", ">44.9<"]);
  t.true(svg.includes(">30.2<"), "value labels above the bars");
});

test("scatterChart: one labelled point per item, coloured by group with a legend", async (t) => {
  const outBase = path.join(dir, "scatter");
  const points = ["ce", "brier", "dpsm-linear"].flatMap((loss, i) =>
    ["1e-4", "3e-4"].map((lr, j) => ({
      x: 0.21 + 0.01 * i + 0.004 * j,
      y: 0.04 - 0.008 * i + 0.005 * j,
      label: `${loss} @ ${lr}`,
      group: `lr ${lr}`,
    })),
  );
  const files = await scatterChart(
    { title: "ROUGE-L vs ECE-10", xTitle: "ROUGE-L", yTitle: "ECE-10", points },
    outBase,
  );
  const { svg, width } = checkFiles(t, files, outBase, [
    "ROUGE-L vs ECE-10",
    "ROUGE-L",
    "ECE-10",
    "lr 1e-4",
    "lr 3e-4",
    ...points.map((p) => `>${p.label}<`),
  ]);
  t.true(width > 2 * 640);
  // One point symbol per item (each with a tooltip naming its label).
  for (const p of points) t.true(svg.includes(`label: ${p.label}`), `tooltip of ${p.label}`);

  // Without groups: one colour and no legend; a custom plot size.
  const plainBase = path.join(dir, "scatter-plain");
  const plain = await scatterChart(
    {
      title: "Plain",
      xTitle: "x axis",
      yTitle: "y axis",
      width: 300,
      height: 200,
      points: [
        { x: 1, y: 2, label: "first" },
        { x: 2, y: 1, label: "second" },
        { x: 3, y: 3, label: "third" },
      ],
    },
    plainBase,
  );
  checkFiles(t, plain, plainBase, ["Plain", "x axis", "y axis", ">first<", ">second<", ">third<"]);
});

test("scatterChart: empty points and non-finite coordinates throw, naming the argument", async (t) => {
  const base = { title: "T", xTitle: "X", yTitle: "Y" };
  const out = path.join(dir, "scatter-bad");
  await t.throwsAsync(scatterChart({ ...base, points: [] }, out), {
    message: /scatterChart: spec\.points .*non-empty/,
  });
  await t.throwsAsync(
    scatterChart(
      {
        ...base,
        points: [
          { x: 1, y: 1, label: "a" },
          { x: NaN, y: 1, label: "b" },
        ],
      },
      out,
    ),
    { message: /scatterChart: spec\.points\[1\]\.x .*finite/ },
  );
  await t.throwsAsync(scatterChart({ ...base, points: [{ x: 1, y: Infinity, label: "a" }] }, out), {
    message: /scatterChart: spec\.points\[0\]\.y .*finite/,
  });
  t.false(fs.existsSync(`${out}.svg`) || fs.existsSync(`${out}.png`), "nothing written");
});

test("heatmapChart: a cell per (x, y) with its value printed, colour legend titled", async (t) => {
  const lrs = ["1e-5", "3e-5", "1e-4"];
  const smoothing = ["0", "0.05", "0.1"];
  const cells = lrs.flatMap((x, i) => smoothing.map((y, j) => ({ x, y, value: 0.2 + 0.01 * i + 0.0031 * j })));
  const outBase = path.join(dir, "heatmap");
  const files = await heatmapChart(
    {
      title: "ROUGE-L over lr × label smoothing",
      xTitle: "Learning rate",
      yTitle: "Label smoothing",
      cells,
      valueTitle: "ROUGE-L (F1)",
    },
    outBase,
  );
  const { svg } = checkFiles(t, files, outBase, [
    "ROUGE-L over lr × label smoothing",
    "Learning rate",
    "Label smoothing",
    "ROUGE-L (F1)",
    ...lrs.map((s) => `>${s}<`),
    ...smoothing.map((s) => `>${s}<`),
    // Three decimals by default.
    ...cells.map((c) => `>${c.value.toFixed(3)}<`),
  ]);
  // Text on the darkest cell is white, on the lightest near-black.
  const ink = (text: string) => new RegExp(`fill="([^"]+)"[^>]*>${text.replace(".", "\\.")}<`).exec(svg)?.[1];
  t.is(ink("0.200"), "white");
  t.is(ink("0.226"), "#1a1a1a");

  // Lower is better: the colour scale is reversed (the best cell is light, its text dark); digits honoured.
  const revBase = path.join(dir, "heatmap-lower");
  const rev = await heatmapChart(
    {
      title: "ECE-10 over lr × label smoothing",
      xTitle: "Learning rate",
      yTitle: "Label smoothing",
      cells,
      valueTitle: "ECE-10",
      higherIsBetter: false,
      digits: 4,
    },
    revBase,
  );
  const { svg: revSvg } = checkFiles(t, rev, revBase, ["ECE-10 over lr × label smoothing", ">0.2000<", ">0.2262<"]);
  const revInk = (text: string) => new RegExp(`fill="([^"]+)"[^>]*>${text.replace(".", "\\.")}<`).exec(revSvg)?.[1];
  t.is(revInk("0.2000"), "#1a1a1a");
  t.is(revInk("0.2262"), "white");

  // All cells equal: still a chart (no zero-width colour domain).
  const flatBase = path.join(dir, "heatmap-flat");
  const flat = await heatmapChart(
    {
      title: "Flat",
      xTitle: "a",
      yTitle: "b",
      valueTitle: "v",
      cells: [
        { x: "p", y: "q", value: 1 },
        { x: "r", y: "q", value: 1 },
      ],
    },
    flatBase,
  );
  checkFiles(t, flat, flatBase, ["Flat", ">1.000<"]);
});

test("heatmapChart: empty cells, non-finite values, repeated cells and bad digits throw, naming the argument", async (t) => {
  const base = { title: "T", xTitle: "X", yTitle: "Y", valueTitle: "V" };
  const out = path.join(dir, "heatmap-bad");
  await t.throwsAsync(heatmapChart({ ...base, cells: [] }, out), { message: /heatmapChart: spec\.cells .*non-empty/ });
  await t.throwsAsync(
    heatmapChart(
      {
        ...base,
        cells: [
          { x: "a", y: "b", value: 1 },
          { x: "a", y: "c", value: NaN },
        ],
      },
      out,
    ),
    { message: /heatmapChart: spec\.cells\[1\]\.value .*finite/ },
  );
  await t.throwsAsync(
    heatmapChart(
      {
        ...base,
        cells: [
          { x: "a", y: "b", value: 1 },
          { x: "a", y: "b", value: 2 },
        ],
      },
      out,
    ),
    { message: /heatmapChart: spec\.cells\[1\] repeats/ },
  );
  await t.throwsAsync(heatmapChart({ ...base, digits: -1, cells: [{ x: "a", y: "b", value: 1 }] }, out), {
    message: /heatmapChart: spec\.digits/,
  });
  t.false(fs.existsSync(`${out}.svg`) || fs.existsSync(`${out}.png`), "nothing written");
});
