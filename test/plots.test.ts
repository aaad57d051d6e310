// Charts: each function writes a complete SVG (titles and names in it) and a PNG twice its size that is
// a real picture — decoded back with resvg and checked for many distinct colours, not one flat fill.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { Resvg } from "@resvg/resvg-js";
import test from "ava";

import { barChart, type ChartFiles, lineChart, reliabilityDiagram, type ReliabilityBin } from "../lib/report/plots.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dpsm-plots-"));
test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }));

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
