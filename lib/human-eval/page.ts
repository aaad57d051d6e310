// A rater's page: one self-contained HTML file (its styles, its script and its items inline), so it works opened
// from a file or from any static host, with no server to collect answers: the rater exports a ratings file.
// The script (rater-page.js, plain browser JavaScript, read from the package at preparation) keeps the rater's
// progress in localStorage and writes the export; the page holds nothing that says which system wrote which summary.
import fs from "node:fs";

/** One item as the rater sees it. */
export interface PageItem {
  id: string;
  article: string;
  a: string;
  b: string;
}

export interface PageData {
  studyId: string;
  rater: string;
  items: PageItem[];
}

// ../../lib/human-eval/ from lib/human-eval/ (the checkout) and from dist/human-eval/ (the build) alike.
const SCRIPT = new URL("../../lib/human-eval/rater-page.js", import.meta.url);

const escapeHtml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** JSON that can sit inside a <script> element (no "</script>" or "<!--" can form). */
const inlineJson = (value: unknown) => JSON.stringify(value).replace(/</g, "\\u003c");

const STYLE = `
:root { color-scheme: light; --ink: #1a1a1a; --muted: #555; --line: #c8c8c8; --panel: #f6f6f4; --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.45 "DejaVu Sans", system-ui, sans-serif; color: var(--ink); background: #fff; }
header { display: flex; align-items: center; gap: 1rem; padding: .5rem 1rem; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.05rem; margin: 0; }
header .progress { margin-left: auto; display: flex; align-items: center; gap: .5rem; color: var(--muted); }
progress { width: 10rem; height: .8rem; }
main { max-width: 1400px; margin: 0 auto; padding: .5rem 1rem 1rem; }
h2 { font-size: .95rem; margin: .4rem 0; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.article { white-space: pre-wrap; max-height: 34vh; overflow-y: auto; padding: .5rem .75rem; background: var(--panel);
  border: 1px solid var(--line); border-radius: 4px; }
.summaries { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; margin-top: .5rem; }
.summary { padding: .5rem .75rem; border: 2px solid var(--line); border-radius: 4px; min-height: 4rem;
  white-space: pre-wrap; }
.questions { display: grid; grid-template-columns: 1fr 1fr; gap: .5rem 1rem; margin-top: .6rem; }
fieldset { border: 1px solid var(--line); border-radius: 4px; margin: 0; padding: .3rem .75rem .5rem; }
legend { font-weight: bold; padding: 0 .25rem; }
.choices { display: flex; gap: .5rem; }
.choices label { flex: 1; text-align: center; padding: .3rem; border: 1px solid var(--line); border-radius: 4px;
  cursor: pointer; }
.choices input { position: absolute; opacity: 0; }
.choices input:checked + span { font-weight: bold; }
.choices label:has(input:checked) { background: var(--accent); color: #fff; border-color: var(--accent); }
.choices label:has(input:focus-visible) { outline: 3px solid #e0a000; }
kbd { font: 12px/1 "DejaVu Sans Mono", monospace; border: 1px solid currentColor; border-radius: 3px; padding: 1px 4px;
  margin-left: .3rem; opacity: .8; }
.comment { grid-column: 1 / -1; display: flex; gap: .5rem; align-items: center; }
.comment textarea { flex: 1; font: inherit; height: 2.4rem; padding: .3rem; resize: vertical; }
nav { display: flex; gap: .75rem; align-items: center; margin-top: .6rem; }
button { font: inherit; padding: .35rem 1rem; border: 1px solid var(--accent); border-radius: 4px; background: #fff;
  color: var(--accent); cursor: pointer; }
button.primary { background: var(--accent); color: #fff; }
button:disabled { opacity: .45; cursor: default; }
.hint { color: var(--muted); font-size: .9rem; }
.help { color: var(--muted); font-size: .85rem; margin-top: .4rem; }
#done { display: none; max-width: 40rem; margin: 3rem auto; text-align: center; }
body.finished #rating { display: none; }
body.finished #done { display: block; }
`;

/** The page of `data.rater` (see the top of this file). */
export function raterPage(data: PageData): string {
  const script = fs.readFileSync(SCRIPT, "utf8");
  const choice = (criterion: string, value: string, label: string, key: string) =>
    `<label><input type="radio" name="${criterion}" value="${value}"><span>${label}</span><kbd>${key}</kbd></label>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Summary comparison — ${escapeHtml(data.rater)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>Which summary is better?</h1>
  <span class="hint">Study ${escapeHtml(data.studyId)} · ${escapeHtml(data.rater)}</span>
  <div class="progress"><span id="position"></span><progress id="bar" max="${data.items.length}" value="0"></progress>
  <button id="export" type="button">Download ratings</button></div>
</header>
<main>
<section id="rating">
  <h2>Source text</h2>
  <div id="article" class="article" tabindex="0"></div>
  <div class="summaries">
    <section><h2>Summary A</h2><div id="summary-a" class="summary"></div></section>
    <section><h2>Summary B</h2><div id="summary-b" class="summary"></div></section>
  </div>
  <div class="questions">
    <fieldset id="fluency"><legend>Fluency: which reads better (grammar, natural wording)?</legend>
      <div class="choices">${choice("fluency", "A", "A", "1")}${choice("fluency", "tie", "Same", "2")}${choice("fluency", "B", "B", "3")}</div>
    </fieldset>
    <fieldset id="informativeness"><legend>Informativeness: which keeps more of what matters in the source?</legend>
      <div class="choices">${choice("informativeness", "A", "A", "4")}${choice("informativeness", "tie", "Same", "5")}${choice("informativeness", "B", "B", "6")}</div>
    </fieldset>
    <div class="comment"><label for="comment">Comment (optional) <kbd>C</kbd></label>
      <textarea id="comment" placeholder="Anything worth noting about this pair"></textarea></div>
  </div>
  <nav><button id="previous" type="button">← Previous</button><button id="next" type="button" class="primary">Next →</button>
    <span id="status" class="hint"></span></nav>
  <p class="help">Keys: <kbd>1</kbd><kbd>2</kbd><kbd>3</kbd> fluency A / same / B · <kbd>4</kbd><kbd>5</kbd><kbd>6</kbd>
    informativeness A / same / B · <kbd>Enter</kbd> or <kbd>→</kbd> next · <kbd>←</kbd> previous · <kbd>C</kbd> comment,
    <kbd>Esc</kbd> leaves it. Your answers are kept in this browser until you download them.</p>
</section>
<section id="done">
  <h2>All items rated — thank you</h2>
  <p>Download your ratings and send the file to the person running the study.</p>
  <p><button id="export-done" type="button" class="primary">Download ratings</button>
  <button id="review" type="button">Review answers</button></p>
</section>
</main>
<script type="application/json" id="study-data">${inlineJson(data)}</script>
<script>${script}</script>
</body>
</html>
`;
}
