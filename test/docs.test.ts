// The documentation holds together: the README stays one screen (≤ 200 lines); every relative link in README.md
// and docs/**/*.md reaches a file, and a `#anchor` a heading of it (GitHub's slugs); and TypeDoc builds the API
// reference from lib/index.ts (typedoc.json) without a warning, every link between its pages resolving. Nothing
// here needs the native build.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import test from "ava";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const README_MAX_LINES = 200;
const TYPEDOC_TIMEOUT_MS = 180_000;

/** Files under `dir` (recursively) whose names end with `ext`, skipping the folders in `skip`. */
function filesUnder(dir: string, ext: string, skip: readonly string[] = []): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!skip.includes(p)) out.push(...filesUnder(p, ext, skip));
    } else if (entry.name.endsWith(ext)) {
      out.push(p);
    }
  }
  return out.sort();
}

/** The Markdown pages whose links are checked: README.md and docs/**\/*.md but the generated API reference. */
function markdownPages(): string[] {
  return [
    path.join(root, "README.md"),
    ...filesUnder(path.join(root, "docs"), ".md", [path.join(root, "docs", "api")]),
  ];
}

/** `markdown` without fenced code blocks and inline code spans, line for line. */
function withoutCode(markdown: string): string {
  const lines = markdown.split("\n");
  let fence: string | undefined;
  const kept = lines.map((line) => {
    const m = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
    if (fence !== undefined) {
      if (m && m[1]![0] === fence[0] && m[1]!.length >= fence.length && line.trim() === m[1]) fence = undefined;
      return "";
    }
    if (m) {
      fence = m[1]!;
      return "";
    }
    return line.replace(/(`+)[\s\S]*?\1/g, "");
  });
  return kept.join("\n");
}

/** GitHub's anchor for a heading's text (github-slugger): lower case, punctuation and symbols dropped, spaces → '-'. */
function githubSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // a link or image: its text
    .replace(/<[^>]+>/g, "") // inline HTML
    .replace(/`/g, "")
    .replace(/\*+/g, "");
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
    .replace(/ /g, "-");
}

/** The anchors of a Markdown page: its headings' slugs (repeats numbered as GitHub does) and explicit ids. */
function anchorsOf(file: string): Set<string> {
  const text = fs.readFileSync(file, "utf8");
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fence: string | undefined;
  for (const line of text.split("\n")) {
    const f = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
    if (fence !== undefined) {
      if (f && f[1]![0] === fence[0] && line.trim() === f[1]) fence = undefined;
      continue;
    }
    if (f) {
      fence = f[1]!;
      continue;
    }
    const h = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (h) {
      const base = githubSlug(h[1]!);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      anchors.add(n === 0 ? base : `${base}-${n}`);
    }
    for (const m of line.matchAll(/<a\s+(?:[^>]*?\s)?(?:id|name)="([^"]+)"/g)) anchors.add(m[1]!);
  }
  return anchors;
}

/** The link targets of a Markdown page: inline links and images, reference definitions, HTML href/src. */
function linksOf(markdown: string): string[] {
  const text = withoutCode(markdown);
  const out: string[] = [];
  for (const m of text.matchAll(/!?\[(?:[^[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+["'(][^)]*)?\)/g)) {
    out.push(m[1]!.replace(/^<|>$/g, ""));
  }
  for (const m of text.matchAll(/^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/gm)) out.push(m[1]!.replace(/^<|>$/g, ""));
  for (const m of text.matchAll(/\s(?:href|src)="([^"]*)"/g)) out.push(m[1]!);
  return out;
}

const isExternal = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//");

/** What is wrong with `target` linked from `from` ("" when nothing). */
function brokenMarkdownLink(from: string, target: string, anchorCache: Map<string, Set<string>>): string {
  const hash = target.indexOf("#");
  const rawPath = hash >= 0 ? target.slice(0, hash) : target;
  const anchor = hash >= 0 ? decodeURIComponent(target.slice(hash + 1)) : undefined;
  const file = rawPath === "" ? from : path.resolve(path.dirname(from), decodeURIComponent(rawPath));
  if (path.relative(root, file).startsWith("..")) return "points outside the repository";
  if (!fs.existsSync(file)) return `${path.relative(root, file)} does not exist`;
  if (anchor === undefined || anchor === "") return "";
  if (!file.endsWith(".md")) {
    return /^L\d+(-L\d+)?$/.test(anchor) ? "" : `#${anchor}: an anchor into a file that is not Markdown`;
  }
  let anchors = anchorCache.get(file);
  if (!anchors) anchorCache.set(file, (anchors = anchorsOf(file)));
  return anchors.has(anchor) ? "" : `#${anchor}: no such heading in ${path.relative(root, file)}`;
}

test(`README.md has at most ${README_MAX_LINES} lines`, (t) => {
  const lines = fs.readFileSync(path.join(root, "README.md"), "utf8").replace(/\n$/, "").split("\n").length;
  t.true(lines <= README_MAX_LINES, `README.md has ${lines} lines; move detail to a page under docs/`);
});

// Issue 29: dropped models' weights are not freed in a loop that never yields (finalizers run from a later task),
// and process.memoryUsage().external does not show them; no page may say otherwise.
test("no page claims a dropped model's weights are freed in a loop that never yields", (t) => {
  for (const file of [path.join(root, "README.md"), ...filesUnder(path.join(root, "docs"), ".md")]) {
    const text = fs.readFileSync(file, "utf8").replace(/\s+/g, " ");
    t.notRegex(text, /freed once a collection has taken them, also in a loop that never yields/, file);
  }
  const page = fs.readFileSync(path.join(root, "docs", "design", "event-loop.md"), "utf8").replace(/\s+/g, " ");
  t.regex(page, /in a loop that never yields they accumulate/);
});

test("GitHub's heading slugs", (t) => {
  t.is(githubSlug("Efficiency: an audit, not separate runs' clocks"), "efficiency-an-audit-not-separate-runs-clocks");
  t.is(githubSlug("`npm run gpu:verify`"), "npm-run-gpuverify");
  t.is(githubSlug("libtorch 1.13 and 2.x"), "libtorch-113-and-2x");
  t.is(githubSlug("2026-11-23 — a lent NVIDIA H100"), "2026-11-23--a-lent-nvidia-h100");
  t.is(githubSlug("Encoder–decoders (BART, PEGASUS)"), "encoderdecoders-bart-pegasus");
  t.is(githubSlug("snake_case **bold** [a link](x.md)"), "snake_case-bold-a-link");
});

test("every relative link in README.md and docs/**/*.md resolves, anchors included", (t) => {
  const pages = markdownPages();
  t.true(pages.length > 10, `expected the docs/ pages, found ${pages.length} Markdown files`);
  const anchorCache = new Map<string, Set<string>>();
  const broken: string[] = [];
  let checked = 0;
  for (const page of pages) {
    for (const target of linksOf(fs.readFileSync(page, "utf8"))) {
      if (isExternal(target)) continue;
      checked++;
      const why = brokenMarkdownLink(page, target, anchorCache);
      if (why) broken.push(`${path.relative(root, page)}: (${target}) ${why}`);
    }
  }
  t.true(checked > 100, `expected the pages' links, found ${checked}`);
  t.deepEqual(broken, [], `broken links:\n${broken.join("\n")}`);
});

/** Runs `args` with node in the repository root; resolves to its exit code and output, or a timeout. */
function runNode(
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (err) => (output += String(err)));
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output, timedOut });
    });
  });
}

test("TypeDoc builds the API reference without warnings, and its pages' links resolve", async (t) => {
  const typedoc = path.join(root, "node_modules", "typedoc", "bin", "typedoc");
  t.true(fs.existsSync(typedoc), `${typedoc} is missing: npm install (typedoc is a devDependency)`);
  if (!fs.existsSync(typedoc)) return;
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "dpsm-api-"));
  t.teardown(() => fs.rmSync(out, { recursive: true, force: true }));

  const r = await runNode([typedoc, "--out", out], TYPEDOC_TIMEOUT_MS);
  const log = r.output.replace(/\x1b\[[0-9;]*m/g, ""); // eslint-disable-line no-control-regex
  t.false(r.timedOut, `typedoc ran past ${TYPEDOC_TIMEOUT_MS / 1000} s:\n${log}`);
  t.is(r.code, 0, `typedoc failed (typedoc.json treats every warning as an error):\n${log}`);
  t.notRegex(log, /\[(warning|error)\]/, log);
  const index = path.join(out, "index.html");
  t.true(fs.existsSync(index), `typedoc wrote no ${index}:\n${log}`);
  if (!fs.existsSync(index)) return;

  // zod's defaults reach the reference (docs/tools/typedoc-zod-fields.mjs), on the Trainer's options at least.
  const trainerOptions = path.join(out, "types", "TrainerOptions.html");
  t.true(fs.existsSync(trainerOptions), "the API reference has no TrainerOptions page");
  if (fs.existsSync(trainerOptions)) t.regex(fs.readFileSync(trainerOptions, "utf8"), /Default Value/);

  const pages = filesUnder(out, ".html");
  const ids = new Map<string, Set<string>>();
  const idsOf = (file: string) => {
    let set = ids.get(file);
    if (!set) {
      const html = fs.readFileSync(file, "utf8");
      set = new Set([...html.matchAll(/\s(?:id|name)="([^"]+)"/g)].map((m) => m[1]!));
      ids.set(file, set);
    }
    return set;
  };
  const broken: string[] = [];
  let checked = 0;
  for (const page of pages) {
    const html = fs.readFileSync(page, "utf8");
    for (const m of html.matchAll(/\s(?:href|src)="([^"]*)"/g)) {
      const target = m[1]!.replace(/&amp;/g, "&");
      if (isExternal(target) || target === "" || target === "#") continue;
      checked++;
      const hash = target.indexOf("#");
      const rawPath = (hash >= 0 ? target.slice(0, hash) : target).split("?")[0]!;
      const anchor = hash >= 0 ? decodeURIComponent(target.slice(hash + 1)) : "";
      const file = rawPath === "" ? page : path.resolve(path.dirname(page), decodeURIComponent(rawPath));
      const where = `${path.relative(out, page)}: ${target}`;
      if (!fs.existsSync(file)) broken.push(`${where}: no such file`);
      else if (anchor !== "" && file.endsWith(".html") && !idsOf(file).has(anchor)) broken.push(`${where}: no such id`);
    }
  }
  t.true(checked > 100, `expected the API pages' links, found ${checked} in ${pages.length} pages`);
  t.deepEqual(broken, [], `broken links in the API reference:\n${broken.join("\n")}`);
});
