// The human preference study end to end, in a real browser: a real exp2 run folder (a small BART of BART's
// tokenizer fine-tuned with CE and DPSM on DialogSum, as test/exp2.test.ts makes one), a study prepared from it,
// each rater's page opened from its file in Debian's Chromium (driven by playwright-core) and rated as a person
// would — clicking the choices, typing a comment, keyboard shortcuts, a reload half-way that must keep the
// progress — the ratings downloaded through the page's own button, and the analysis reading them back with the
// counts the raters' choices imply. Also: the page's layout at a laptop's 1366 × 768 (summaries side by side,
// the source scrolling in its own box, everything on one screen), the bad arguments named, and exp-2's report
// linking the study. HUMAN_EVAL_SCREENSHOT=<file.png> keeps the screenshot.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

import test from "ava";
import { chromium, type Page } from "playwright-core";

import { exp2 } from "../lib/experiments/exp2-summarization/index.ts";
import { resolveConfig, runExperiment, writeReport } from "../lib/experiments/framework/index.ts";
import { analyzeStudy } from "../lib/human-eval/analyze.ts";
import { krippendorffAlphaNominal } from "../lib/human-eval/agreement.ts";
import type { StudyKey } from "../lib/human-eval/files.ts";
import { prepareStudy } from "../lib/human-eval/study.ts";
import { runHumanEvalCli } from "../lib/human-eval/cli.ts";
import { buildInfo } from "../lib/index.ts";
import { EXP2_SMALL } from "./helpers/experiments.ts";
import { saveTinyBart } from "./helpers/tiny-bart.ts";
import { sharedTmpDir } from "./helpers/tmp.ts";

const root = sharedTmpDir("dpsm-human-eval-");
const REFERENCE = "ce";
const COMPARED = "dpsm-warm10";

/** Debian's Chromium (native/setup.sh installs it); the test fails, saying so, where it is missing. */
function chromiumPath(): string {
  try {
    return execFileSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).trim();
  } catch {
    throw new Error("chromium not found: `npm run setup` installs Debian's chromium (apt-get install chromium)");
  }
}

/** An exp2 run folder: CE and DPSM fine-tuned from a small BART with BART's tokenizer on DialogSum (8 test examples). */
async function exp2Run() {
  // The tokenizer fixture's 4,000 tokens, so every generated id decodes to text.
  saveTinyBart(path.join(root, "checkpoints", "bart-mini"), { vocab_size: 4000 });
  const config = resolveConfig(exp2, "quick", {
    ...EXP2_SMALL,
    models: ["bart-mini"],
    checkpointDir: path.join(root, "checkpoints"),
    pretrain: false,
    variations: [REFERENCE, COMPARED],
    baselines: [],
    summarySwap: false,
    transfer: [],
    testMaxExamples: 8,
    generation: { minLength: 12, maxLength: 30, noRepeatNgramSize: 3 },
  });
  const out = path.join(root, "run");
  const run = await runExperiment(exp2, config, out, { say: () => {}, progress: false });
  return { out, config, run };
}

/** The choices of a scripted rater, in unblinded terms: which system they prefer (or a tie) on this article. */
type Policy = (criterion: "fluency" | "informativeness", article: string) => string;
const even = (article: string) => Number(article.split("_").at(-1)) % 2 === 0;
const POLICIES: Record<string, Policy> = {
  // Prefers DPSM's fluency on even-numbered articles (a tie otherwise), CE's informativeness always.
  "rater-1": (c, a) => (c === "fluency" ? (even(a) ? COMPARED : "tie") : REFERENCE),
  // Prefers DPSM's fluency always, CE's informativeness on even-numbered articles (a tie otherwise).
  "rater-2": (c, a) => (c === "fluency" ? COMPARED : even(a) ? REFERENCE : "tie"),
};
const KEYS = { fluency: { A: "1", tie: "2", B: "3" }, informativeness: { A: "4", tie: "5", B: "6" } } as const;

/** The A / B / tie a rater with `policy` picks on `item` of their page; rater-2 answers attention checks with "A". */
function pick(key: StudyKey, rater: string, position: number, criterion: "fluency" | "informativeness") {
  const k = key.raters[rater]![position]!;
  if (rater === "rater-2" && k.duplicateOf !== undefined) return "A" as const;
  const want = POLICIES[rater]!(criterion, k.article);
  return want === "tie" ? ("tie" as const) : k.A === want ? ("A" as const) : ("B" as const);
}

const positionOf = async (page: Page) => Number((await page.textContent("#position"))!.match(/Item (\d+) of/)![1]) - 1;

test.serial(
  "a study rated in Chromium as people would, exported, and analysed with the counts its raters gave",
  async (t) => {
    const executablePath = chromiumPath();
    const t0 = performance.now();
    const { out, config, run } = await exp2Run();
    const runSeconds = (performance.now() - t0) / 1000;
    const studyDir = path.join(out, "study");
    const study = await prepareStudy({
      run: out,
      pairs: `${REFERENCE}:${COMPARED}`,
      n: 6,
      raters: 2,
      out: studyDir,
      seed: 7,
    });
    const key = JSON.parse(fs.readFileSync(path.join(studyDir, "key.json"), "utf8")) as StudyKey;
    const m = study.manifest;
    t.is(m.itemsPerRater, 7, "6 articles + 1 attention check");
    for (const rater of m.raters) {
      const items = key.raters[rater]!;
      const check = items.find((k) => k.duplicateOf !== undefined)!;
      const original = items.find((k) => k.item === check.duplicateOf)!;
      t.is(check.article, original.article);
      t.deepEqual([check.A, check.B], [original.B, original.A], "the check repeats its item with A and B swapped");
      // The page holds the texts but nothing of the key.
      const html = fs.readFileSync(path.join(studyDir, m.pages[rater]!), "utf8");
      t.false(html.includes(COMPARED) || html.includes(`"${REFERENCE}"`) || html.includes("duplicateOf"));
    }

    const browser = await chromium.launch({ executablePath });
    const shot = path.join(root, "human-eval-page.png");
    const requests: string[] = [];
    const downloads = path.join(root, "ratings");
    const files: string[] = [];
    try {
      for (const rater of m.raters) {
        const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
        const page = await context.newPage();
        // Self-contained: nothing is fetched but the page's own file (and the download's blob).
        page.on("request", (r) => requests.push(r.url()));
        await page.goto(pathToFileURL(path.join(studyDir, m.pages[rater]!)).href);
        t.is(await page.textContent("#position"), "Item 1 of 7 · 0 rated");
        t.true(await page.isDisabled("#next"), "Next waits for both answers");
        if (rater === "rater-1") {
          // The layout on a laptop screen, and the screenshot.
          const box = async (sel: string) => (await page.locator(sel).boundingBox())!;
          const [a, b, article, next] = [
            await box("#summary-a"),
            await box("#summary-b"),
            await box("#article"),
            await box("#next"),
          ];
          t.true(Math.abs(a.y - b.y) < 1 && a.x + a.width < b.x, "the summaries side by side");
          t.true(next.y + next.height <= 768, "Next on the first screen");
          t.true(article.height <= 0.34 * 768 + 1, "the source in a box of at most a third of the screen");
          const fontSize = await page.$eval("#summary-a", (e) => parseFloat(getComputedStyle(e).fontSize));
          t.true(fontSize >= 15, `summary font ${fontSize}px`);
          // Clicking and typing, as a person would, for the first three items (a comment on the second).
          for (let i = 0; i < 3; i++) {
            for (const c of ["fluency", "informativeness"] as const) {
              await page.click(`#${c} label:has(input[value="${pick(key, rater, i, c)}"])`);
            }
            if (i === 1) {
              await page.click("#comment");
              await page.keyboard.type("Both summaries repeat words; B a little less.");
            }
            await page.click("#next");
          }
          // A reload half-way keeps the progress and the answers.
          await page.reload();
          t.is(await page.textContent("#position"), "Item 4 of 7 · 3 rated");
          await page.keyboard.press("ArrowLeft");
          await page.keyboard.press("ArrowLeft");
          t.is(await page.textContent("#position"), "Item 2 of 7 · 3 rated");
          t.is(await page.inputValue("#comment"), "Both summaries repeat words; B a little less.");
          t.true(await page.isChecked(`#fluency input[value="${pick(key, rater, 1, "fluency")}"]`));
          await page.keyboard.press("ArrowRight");
          await page.keyboard.press("ArrowRight");
        }
        // The rest by keyboard: 1-3 fluency, 4-6 informativeness, Enter for next.
        for (let i = await positionOf(page); i < 7; i++) {
          t.is(await positionOf(page), i);
          // A source longer than its box scrolls inside it (the page itself stays one screen); the first such
          // item, half answered, is the screenshot.
          const [scrollHeight, clientHeight] = await page.$eval("#article", (e) => [e.scrollHeight, e.clientHeight]);
          if (scrollHeight > clientHeight + 20 && !fs.existsSync(shot)) {
            await page.keyboard.press(KEYS.fluency[pick(key, rater, i, "fluency")]);
            await page.$eval("#article", (e) => e.scrollBy(0, 60));
            t.true(await page.$eval("#article", (e) => e.scrollTop > 0), "the source scrolls");
            t.true(await page.$eval("body", (e) => e.scrollHeight <= 768), "the page fits the screen");
            await page.screenshot({ path: shot });
            if (process.env.HUMAN_EVAL_SCREENSHOT) fs.copyFileSync(shot, process.env.HUMAN_EVAL_SCREENSHOT);
          }
          for (const c of ["fluency", "informativeness"] as const)
            await page.keyboard.press(KEYS[c][pick(key, rater, i, c)]);
          await page.keyboard.press("Enter");
        }
        t.true(await page.isVisible("#done"), "the end: all rated");
        const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-done")]);
        const file = path.join(downloads, download.suggestedFilename());
        await download.saveAs(file);
        files.push(file);
        await context.close();
      }
    } finally {
      await browser.close();
    }
    t.true(requests.some((u) => u.startsWith("file:")));
    t.deepEqual(
      requests.filter((u) => !u.startsWith("file:") && !u.startsWith("blob:")),
      [],
    );
    t.true(fs.existsSync(shot) && fs.statSync(shot).size > 20_000, "some source longer than its box, screenshot");
    t.deepEqual(
      files.map((f) => path.basename(f)),
      m.raters.map((r) => `ratings-${m.id}-${r}.json`),
    );

    // What the raters' choices imply, counted here from the key and the policies.
    const analysis = analyzeStudy(studyDir, files);
    const articles = [...new Set(key.raters["rater-1"]!.map((k) => k.article))];
    for (const criterion of ["fluency", "informativeness"] as const) {
      const expected = { compared: 0, tie: 0, reference: 0 };
      for (const rater of m.raters) {
        for (const a of articles) {
          const want = POLICIES[rater]!(criterion, a);
          expected[want === COMPARED ? "compared" : want === REFERENCE ? "reference" : "tie"]++;
        }
      }
      const r = analysis.results.find((x) => x.criterion === criterion)!;
      t.deepEqual(r.counts, expected, criterion);
      t.is(r.judgements, 12);
      const rows = m.raters.map((rater) => articles.map((a) => POLICIES[rater]!(criterion, a)));
      t.true(Math.abs(analysis.alpha[criterion] - krippendorffAlphaNominal(rows)) < 1e-12);
    }
    t.deepEqual(
      analysis.raters.map((r) => [r.rater, r.rated, r.comments, r.checksAnswered, r.checksFailed]),
      [
        ["rater-1", 7, 1, 1, 0],
        // "A" on both criteria of the swapped repeat cannot match rater-2's first answers: whichever system A is, one
        // criterion's first answer preferred the other one or was a tie (fluency: DPSM always; informativeness: CE or a tie).
        ["rater-2", 7, 0, 1, 1],
      ],
    );
    t.is(analysis.comments[0]!.text, "Both summaries repeat words; B a little less.");

    // The command line writes the section; exp-2's report links it.
    t.is(await runHumanEvalCli(["analyze", studyDir, ...files]), 0);
    const md = fs.readFileSync(path.join(studyDir, "human-eval.md"), "utf8");
    t.regex(md, /## Human preference study/);
    t.regex(md, /\| dpsm-warm10 against ce +\| fluency +\| +12 \|/);
    const { report } = await writeReport(exp2, config, run, out, buildInfo());
    t.regex(
      fs.readFileSync(report, "utf8"),
      /Human preference study \(dpsm-warm10 against ce, 6 articles, 2 raters.*\]\(study\/human-eval\.md\)/,
    );
    t.log(`exp2 run ${runSeconds.toFixed(1)} s, whole test ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    t.log(md);
    made = { out, studyDir, files };
  },
);

let made: { out: string; studyDir: string; files: string[] } | undefined;

test.serial("bad arguments and files are refused naming the argument", async (t) => {
  if (!made) return t.fail("needs the study of the test before");
  const { out, studyDir, files } = made;
  const prepare = (o: Partial<Parameters<typeof prepareStudy>[0]>) =>
    prepareStudy({ run: out, pairs: "ce:dpsm-warm10", n: 2, raters: 1, out: path.join(root, "other"), ...o });
  await t.throwsAsync(prepare({ run: root }), {
    message: /^run folder: .* is not an exp2 run folder \(no config\.json/,
  });
  await t.throwsAsync(prepare({ pairs: "ce:focal" }), {
    message: /^--pairs: unknown variation "focal"; this run trained ce, dpsm-warm10/,
  });
  await t.throwsAsync(prepare({ pairs: "ce" }), { message: /^--pairs: expected reference:compared/ });
  await t.throwsAsync(prepare({ n: 9 }), {
    message: /^--n: 9 articles asked for, but the run's test summaries cover 8/,
  });
  await t.throwsAsync(prepare({ out: studyDir }), { message: /^--out: .* holds a study already/ });
  const bad = path.join(root, "bad.json");
  const ratings = JSON.parse(fs.readFileSync(files[0]!, "utf8")) as { ratings: { fluency: string }[] };
  ratings.ratings[2]!.fluency = "left";
  fs.writeFileSync(bad, JSON.stringify(ratings));
  t.throws(() => analyzeStudy(studyDir, [bad]), {
    message: (m: string) => m.startsWith(`ratings file ${bad}.ratings.2.fluency: expected "A", "B" or "tie"`),
  });
  fs.writeFileSync(bad, "{");
  t.throws(() => analyzeStudy(studyDir, [bad]), { message: /^ratings file: .*bad\.json is not valid JSON/ });
  t.throws(() => analyzeStudy(studyDir, [files[0]!, files[0]!]), { message: /rater-1 is rated already by/ });
  t.throws(() => analyzeStudy(root, files), { message: /^study folder: .* holds no study/ });
  t.is(await runHumanEvalCli(["prepare", out, "--pairs", "ce:x", "--n", "2", "--raters", "1", "--out", root]), 2);
});
