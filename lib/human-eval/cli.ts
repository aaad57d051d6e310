// `dpsm-native human-eval prepare|analyze`: the human preference study of an exp2 run (study.ts, analyze.ts).
// Exit codes: 0 done, 1 failed, 2 bad arguments or input files (each error names the argument).
import path from "node:path";

import { parseSubcommand } from "../subcommand-args.ts";
import { analyzeStudy, writeAnalysis } from "./analyze.ts";
import { ArgumentError, KEY_FILE } from "./files.ts";
import { prepareStudy } from "./study.ts";

function usage(prog: string): string {
  return [
    `usage: ${prog} prepare <exp2 run folder> --pairs ce:dpsm-warm10 --n 200 --raters 3 --out study/`,
    `         [--seed S] [--model M] [--run-seed S] [--checks K]`,
    `       ${prog} analyze <study folder> <ratings file>…`,
    "",
    "prepare  one static page per rater (rater-N.html: open it from the file or any static host; no server):",
    "         the source text and two summaries, blinded and in the rater's own random order, fluency and",
    "         informativeness (A / same / B), an optional comment, keyboard shortcuts, progress kept in the",
    "         browser, attention checks, and a download of the ratings; key.json unblinds them: keep it from raters",
    "analyze  unblinds the raters' downloaded files: win / tie / loss with 95 % intervals, sign tests (Holm),",
    "         Bradley–Terry strengths, Krippendorff's α and failed attention checks, into human-eval.md and .json",
    "",
    "  --pairs R:C[,R:C…]  variations of the run compared: reference:compared (e.g. ce:dpsm-warm10)",
    "  --n N               test articles per pair (at most what the run summarised: its testMaxExamples)",
    "  --raters N          pages to write, one per rater",
    "  --out DIR           the study folder (must not hold a study already)",
    "  --seed S            the study's randomisation (default 0)",
    "  --model M           the run's model whose summaries are rated (default: its first)",
    "  --run-seed S        the run's seed whose summaries are rated (default: its first)",
    "  --checks K          attention checks per rater (default: 5 % of the items, at least 1)",
  ].join("\n");
}

function integer(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new ArgumentError(`--${name}: expected a whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** Runs `dpsm-native human-eval <argv>`; resolves to the exit code. */
export async function runHumanEvalCli(argv: readonly string[], prog = "dpsm-native human-eval"): Promise<number> {
  const parsed = parseSubcommand(argv, {
    prog,
    usage: () => usage(prog),
    commands: ["prepare", "analyze"],
    options: {
      pairs: { type: "string" },
      n: { type: "string" },
      raters: { type: "string" },
      out: { type: "string" },
      seed: { type: "string" },
      model: { type: "string" },
      "run-seed": { type: "string" },
      checks: { type: "string" },
    },
  });
  if ("exit" in parsed) return parsed.exit;
  const { values: v, command, rest } = parsed;
  try {
    if (command === "prepare") {
      if (rest.length !== 1) throw new ArgumentError(`run folder: expected one exp2 run folder, got ${rest.length}`);
      for (const name of ["pairs", "n", "raters", "out"] as const) {
        if (v[name] === undefined) throw new ArgumentError(`--${name}: required`);
      }
      const study = await prepareStudy({
        run: rest[0]!,
        pairs: v.pairs!,
        n: integer("n", v.n)!,
        raters: integer("raters", v.raters)!,
        out: v.out!,
        ...(v.seed !== undefined ? { seed: integer("seed", v.seed)! } : {}),
        ...(v.model !== undefined ? { model: v.model } : {}),
        ...(v["run-seed"] !== undefined ? { runSeed: integer("run-seed", v["run-seed"])! } : {}),
        ...(v.checks !== undefined ? { checks: integer("checks", v.checks)! } : {}),
      });
      const m = study.manifest;
      console.log(
        [
          `human-eval: study ${m.id} in ${study.dir}: ${m.itemsPerRater} items per rater (${m.n} articles × ` +
            `${m.pairs.length} pair${m.pairs.length > 1 ? "s" : ""} + ${m.checksPerRater} attention check${m.checksPerRater === 1 ? "" : "s"})`,
          ...study.pages.map((p) => `  ${p}`),
          `Send each rater their page; keep ${path.join(study.dir, KEY_FILE)} from them. Then:`,
          `  ${prog} analyze ${study.dir} <the raters' ratings-*.json>`,
        ].join("\n"),
      );
      return 0;
    }
    // analyze
    if (rest.length < 2) {
      throw new ArgumentError("ratings: expected a study folder and at least one ratings file");
    }
    const [dir, ...files] = rest as [string, ...string[]];
    const analysis = analyzeStudy(
      path.resolve(dir),
      files.map((f) => path.resolve(f)),
      integer("seed", v.seed) ?? 0,
    );
    const { markdown, json } = writeAnalysis(analysis, path.resolve(dir));
    console.log(`human-eval: written ${markdown} and ${json}`);
    return 0;
  } catch (e) {
    console.error(`${prog} ${command}: ${(e as Error).message}`);
    return e instanceof ArgumentError ? 2 : 1;
  }
}
