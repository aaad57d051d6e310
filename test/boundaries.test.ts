// Which folder may import which (issue 24, "Boundaries"): the package (lib/, bin/) imports none of the checkout's
// own folders; bench/ and dev/ never reach into test/; the examples use only the public entry (lib/index.ts);
// package.json's scripts preload no test helper, and what they preload (dev/) is not shipped. And the checkout's
// data defaults are dev/checkout-env.mjs's one rule.
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { applyCheckoutEnv, checkoutRoot } from "../dev/checkout-env.mjs";
import { packageRoot } from "../lib/native.ts";

const SOURCE = /\.(ts|mts|mjs|js)$/;

/** Every source file under `dir` (relative to the package root). */
function sources(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(path.join(packageRoot, d), { withFileTypes: true })) {
      const rel = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== "node_modules" && e.name !== "results") walk(rel);
      } else if (SOURCE.test(e.name)) out.push(rel);
    }
  };
  walk(dir);
  return out;
}

/** The module specifiers `file` imports (static, side-effect, dynamic with a literal, and re-exports). */
function specifiers(file: string): string[] {
  const text = fs.readFileSync(path.join(packageRoot, file), "utf8");
  const found = new Set<string>();
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^"'`;]*?\bfrom\s*["']([^"']+)["']/g)) found.add(m[1]!);
  for (const m of text.matchAll(/(?:^|\n)\s*import\s*["']([^"']+)["']/g)) found.add(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) found.add(m[1]!);
  return [...found];
}

/** The package-relative targets of `file`'s relative imports. */
function localImports(file: string): string[] {
  return specifiers(file)
    .filter((s) => s.startsWith("."))
    .map((s) => path.relative(packageRoot, path.resolve(packageRoot, path.dirname(file), s)));
}

const under = (p: string, dir: string) => p === dir || p.startsWith(`${dir}${path.sep}`);

test("the package (lib/, bin/) imports nothing from dev/, test/, bench/ or examples/", (t) => {
  const bad = [...sources("lib"), ...sources("bin")].flatMap((f) =>
    localImports(f)
      .filter((p) => ["dev", "test", "bench", "examples"].some((d) => under(p, d)))
      .map((p) => `${f} → ${p}`),
  );
  t.deepEqual(bad, []);
});

test("bench/ and dev/ import nothing from test/ (what both use lives in dev/)", (t) => {
  const bad = [...sources("bench"), ...sources("dev")].flatMap((f) =>
    localImports(f)
      .filter((p) => under(p, "test"))
      .map((p) => `${f} → ${p}`),
  );
  t.deepEqual(bad, []);
});

test("the examples import only the package's public entry (lib/index.ts) and Node's own modules", (t) => {
  const files = sources("examples");
  t.true(files.length >= 3);
  const bad = files.flatMap((f) =>
    specifiers(f)
      .filter((s) => !s.startsWith("node:") && s !== "../lib/index.ts")
      .map((s) => `${f} → ${s}`),
  );
  t.deepEqual(bad, []);
});

test("package.json: no script preloads a test helper, and dev/ and test/ are not shipped", (t) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot, "package.json"), "utf8")) as {
    scripts: Record<string, string>;
    files: string[];
    ava: { require: string[] };
  };
  t.deepEqual(
    Object.entries(pkg.scripts).filter(([, s]) => /test\/helpers/.test(s)),
    [],
  );
  t.deepEqual(
    pkg.files.filter((f) => /^\.?\/?(dev|test|bench|examples)\b/.test(f)),
    [],
  );
  // The commands that read data preload the checkout's defaults, and so do the tests.
  for (const name of ["quickstart", "exp1", "exp2", "bench:train-step", "gpu:pack", "demo:loss"]) {
    t.regex(pkg.scripts[name]!, /--import \.\/dev\/checkout-env\.mjs /, name);
  }
  t.deepEqual(pkg.ava.require, ["./dev/checkout-env.mjs"]);
});

test("the checkout's data defaults: ../shared/data beside the checkout when it exists, the token cache in the checkout; a variable already set wins", (t) => {
  t.is(checkoutRoot, packageRoot);
  const shared = path.resolve(packageRoot, "..", "shared", "data");
  const env = applyCheckoutEnv<Record<string, string | undefined>>({});
  t.is(env.DPSM_DATA_DIR, fs.existsSync(shared) ? shared : undefined);
  t.is(env.DPSM_CACHE_DIR, path.join(packageRoot, ".cache", "tokens"));
  t.deepEqual(applyCheckoutEnv({ DPSM_DATA_DIR: "/data", DPSM_CACHE_DIR: "/cache" }), {
    DPSM_DATA_DIR: "/data",
    DPSM_CACHE_DIR: "/cache",
  });
});
