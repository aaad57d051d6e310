// A consumer project sees the package as users will: `import { DPSMLoss } from "dpsm-native"` resolves
// through package.json's exports to the built dist/, with its types, and runs.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

import test from "ava";

import { packageRoot } from "../lib/native.ts";
import { run } from "./helpers/run.ts";
import { tmpDir } from "./helpers/tmp.ts";

test("a consumer project imports and type-checks dpsm-native through its exports", (t) => {
  const tsc = path.join(packageRoot, "node_modules", "typescript", "bin", "tsc");
  const build = run(process.execPath, [tsc, "-p", path.join(packageRoot, "tsconfig.build.json")]);
  t.is(build.code, 0, build.output);
  // The command from the build, as an installed package (without tsx) runs it.
  const cli = pathToFileURL(path.join(packageRoot, "dist", "cli.js")).href;
  const main = `import { main } from ${JSON.stringify(cli)}; process.exitCode = await main(["exp1", "--help"]);`;
  const help = run(process.execPath, ["--input-type=module", "-e", main]);
  t.is(help.code, 0, help.output);
  t.regex(help.output, /usage: dpsm-native exp1 .*\n[\s\S]*--max-steps N +optimiser steps/);

  const dir = tmpDir(t, "dpsm-consumer-");
  fs.mkdirSync(path.join(dir, "node_modules"));
  fs.symlinkSync(packageRoot, path.join(dir, "node_modules", "dpsm-native"), "dir");
  // A TypeScript project on Node has Node's types, as any consumer of a Node library does.
  fs.mkdirSync(path.join(dir, "node_modules", "@types"));
  fs.symlinkSync(
    path.join(packageRoot, "node_modules", "@types", "node"),
    path.join(dir, "node_modules", "@types", "node"),
    "dir",
  );
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "consumer", type: "module", private: true }));
  fs.writeFileSync(
    path.join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noEmit: true,
        types: ["node"],
      },
      files: ["consumer.ts"],
    }),
  );
  const source = `import { DPSMLoss, buildInfo, type LossResult, Trainer, Evaluator, GPT2Model, type FitResult } from "dpsm-native";
const trainerClass: typeof Trainer = Trainer;
const evaluatorClass: typeof Evaluator = Evaluator;
const params: number = GPT2Model.create({ n_embd: 8, n_layer: 1, n_head: 2, n_positions: 8, vocab_size: 50257 }).parameterCount;
let fit: FitResult | undefined;
const loss = new DPSMLoss({ kind: "dpsm", schedule: "linear", warmupSteps: 1000 });
const r: LossResult = loss.forward(new Float32Array([1, 2, 3, 4, 5, 6]), new Int32Array([2, 0]), { vocabSize: 3, step: 250 });
const alpha: number = loss.alphaAt(250);
console.log(JSON.stringify({ alpha, kernelAlpha: r.alpha, loss: r.loss, torch: buildInfo().torchVersion, params, ok: !fit && !!trainerClass && !!evaluatorClass }));
`;
  fs.writeFileSync(path.join(dir, "consumer.ts"), source);
  const check = run(process.execPath, [tsc, "-p", path.join(dir, "tsconfig.json")], { cwd: dir });
  t.is(check.code, 0, `consumer type check failed:\n${check.output}`);

  // A wrong use is a type error for the consumer too.
  fs.writeFileSync(path.join(dir, "consumer.ts"), `${source}\nnew DPSMLoss({ kind: "dpsm", schedule: "sideways" });\n`);
  const bad = run(process.execPath, [tsc, "-p", path.join(dir, "tsconfig.json")], { cwd: dir });
  t.not(bad.code, 0, "a bad schedule literal should not type-check");
  t.regex(bad.output, /sideways/);

  const js = source
    .replace(", type LossResult", "")
    .replace(", type FitResult", "")
    .replace(/: (LossResult|number|typeof \w+|FitResult \| undefined)/g, "");
  fs.writeFileSync(path.join(dir, "consumer.mjs"), js);
  const exec = run(process.execPath, ["consumer.mjs"], { cwd: dir });
  t.is(exec.code, 0, exec.output);
  const out = JSON.parse(exec.output.trim().split("\n").pop()!) as {
    alpha: number;
    kernelAlpha: number;
    loss: number;
    params: number;
    ok: boolean;
  };
  t.true(out.ok);
  t.is(out.params, 50257 * 8 + 8 * 8 + 12 * 64 + 13 * 8 + 2 * 8);
  t.is(out.alpha, 0.25);
  t.is(out.kernelAlpha, 0.25);
  t.true(out.loss > 0);
});

// Importing the package loads its API and zod (validation), nothing else: the report stack, the data readers, the
// tokenizers and the progress bar load on first use. Packages are seen through a module-resolution hook in a fresh
// process; the import's time and resident-set growth are logged (before the lazy loads: ~150–200 ms, +35 MB here).
test("a plain import loads no report stack, data readers, tokenizers or progress bar", (t) => {
  const tsc = path.join(packageRoot, "node_modules", "typescript", "bin", "tsc");
  const build = run(process.execPath, [tsc, "-p", path.join(packageRoot, "tsconfig.build.json")]);
  t.is(build.code, 0, build.output);
  const dir = tmpDir(t, "dpsm-import-");
  const hook = path.join(dir, "hook.mjs");
  fs.writeFileSync(
    hook,
    `export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  const m = /\\/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(r.url);
  if (m) console.log("package " + m[1]);
  return r;
}\n`,
  );
  const entry = pathToFileURL(path.join(packageRoot, "dist", "index.js")).href;
  const script = `import { register } from "node:module";
register(${JSON.stringify(pathToFileURL(hook).href)});
const rss = process.memoryUsage().rss, t0 = performance.now();
const m = await import(${JSON.stringify(entry)});
console.log("import " + (performance.now() - t0).toFixed(0) + " ms, +" + ((process.memoryUsage().rss - rss) / 2 ** 20).toFixed(1) + " MB, DPSMLoss " + typeof m.DPSMLoss);`;
  const r = run(process.execPath, ["--input-type=module", "-e", script]);
  t.is(r.code, 0, r.output);
  const loaded = [...new Set([...r.output.matchAll(/^package (\S+)$/gm)].map((m) => m[1]!))].sort();
  t.log(`${/^import .*$/m.exec(r.output)?.[0]}; packages loaded: ${loaded.join(", ")}`);
  t.regex(r.output, /DPSMLoss function/);
  t.deepEqual(loaded, ["zod"]);
});
