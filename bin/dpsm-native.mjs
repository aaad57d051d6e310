#!/usr/bin/env node
// The `dpsm-native` command (lib/cli.ts). A checkout runs the TypeScript sources through tsx, so what runs is
// what is in lib/; an installed package, which has no tsx, runs the build in dist/ that `prepare` made.
import fs from "node:fs";

const root = new URL("../", import.meta.url);
let entry = new URL("dist/cli.js", root);
try {
  const { register } = await import("tsx/esm/api");
  register();
  entry = new URL("lib/cli.ts", root);
} catch {
  // no tsx: use the build
}
if (!fs.existsSync(entry)) {
  console.error(`dpsm-native: ${entry.pathname} is missing; build it with \`npm run build:ts\` (or install tsx)`);
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
