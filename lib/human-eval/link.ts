// The line exp-2's report gives a human study of its run: a study folder (study.json naming this run) under the
// run folder or beside it, linked to its analysis when `human-eval analyze` has written one.
import fs from "node:fs";
import path from "node:path";

import { ANALYSIS_MD, STUDY_FILE, STUDY_FORMAT, type StudyManifest } from "./files.ts";

function studiesIn(parent: string, run: string): { dir: string; manifest: StudyManifest }[] {
  let names: string[];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const dir = path.join(parent, name);
    try {
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, STUDY_FILE), "utf8")) as StudyManifest;
      return manifest.format === STUDY_FORMAT && path.resolve(manifest.run) === run ? [{ dir, manifest }] : [];
    } catch {
      return []; // not a study folder
    }
  });
}

/** One bullet per human study of the run in `out` (for "What was run"); none when there is none. */
export function humanStudyLines(out: string): string[] {
  const run = path.resolve(out);
  const found = [...studiesIn(run, run), ...studiesIn(path.dirname(run), run)];
  return found.map(({ dir, manifest: m }) => {
    const rel = path.relative(run, dir).split(path.sep).join("/");
    const what =
      `${m.pairs.map(([x, y]) => `${y} against ${x}`).join(", ")}, ${m.n} articles, ${m.raters.length} raters, ` +
      `model ${m.model} seed ${m.runSeed}`;
    return fs.existsSync(path.join(dir, ANALYSIS_MD))
      ? `Human preference study (${what}): [${rel}/${ANALYSIS_MD}](${rel}/${ANALYSIS_MD}).`
      : `Human preference study (${what}): prepared in [${rel}/](${rel}/${STUDY_FILE}), not analysed yet ` +
          `(\`dpsm-native human-eval analyze ${rel} <ratings files>\`).`;
  });
}
