// lib/ has no import cycles, type-only imports included: a module reads top to bottom from what it imports, and a
// cycle (e.g. the Trainer and its run log through one type) is the first sign that a concept lives in two places.
// The imports are read with TypeScript's own pre-processor, so every form (import, import type, export … from,
// dynamic import()) counts.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import test from "ava";
import ts from "typescript";

const LIB = path.join(import.meta.dirname, "..", "lib");

function moduleGraph(dir: string): Map<string, string[]> {
  const files = (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => f.endsWith(".ts"))
    .map((f) => path.join(dir, f));
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(fs.readFileSync(file, "utf8"), true, true);
    const local = importedFiles
      .map((i) => i.fileName)
      .filter((name) => name.startsWith("."))
      .map((name) => path.resolve(path.dirname(file), name));
    const missing = local.filter((f) => !known.has(f));
    if (missing.length) throw new Error(`${file} imports ${missing.join(", ")}, which is not a module of lib/`);
    graph.set(file, local);
  }
  return graph;
}

/** The strongly connected components of more than one module, and modules that import themselves (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || graph.get(v)!.includes(v)) found.push(component);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

test("the cycle finder finds a cycle through a type-only import", (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dpsm-cycles-"));
  try {
    fs.writeFileSync(path.join(dir, "a.ts"), 'import type { B } from "./b.ts";\nexport type A = B;\n');
    fs.writeFileSync(
      path.join(dir, "b.ts"),
      'import { c } from "./c.ts";\nexport type B = number;\nexport const b = c;\n',
    );
    fs.writeFileSync(path.join(dir, "c.ts"), 'export const c = 1;\nexport type { A } from "./a.ts";\n');
    const found = cycles(moduleGraph(dir)).map((c) => c.map((f) => path.basename(f)).sort());
    t.deepEqual(found, [["a.ts", "b.ts", "c.ts"]]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("lib/ has no import cycles", (t) => {
  const graph = moduleGraph(LIB);
  t.true(graph.size > 50, `only ${graph.size} modules read`);
  const found = cycles(graph).map((c) => c.map((f) => path.relative(LIB, f)).join(" → "));
  t.deepEqual(found, [], `cycles:\n${found.join("\n")}`);
});
