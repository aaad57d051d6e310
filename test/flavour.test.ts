// lib/flavour.ts: the one rule for a prebuilt core's flavour, its package and its file; the loader and the release
// both read it (test/tarball-install.test.ts installs what the release made from it).
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

import test from "ava";

import {
  flavourName,
  flavourPackage,
  packageFlavour,
  parseFlavour,
  PREBUILD_NAME,
  torchMinor,
} from "../lib/flavour.ts";
import { tmpDir } from "./helpers/tmp.ts";

test("flavour names from torch versions, and back", (t) => {
  t.is(flavourName("2.15.0"), "torch2.15");
  t.is(flavourName("2.15.0", "13"), "torch2.15-cu13");
  t.is(flavourName("1.13.1+cpu"), "torch1.13");
  t.is(torchMinor("2.15.0+cu132"), "2.15");
  t.deepEqual(parseFlavour("torch2.15-cu13"), { torch: "2.15", cuda: "13" });
  t.deepEqual(parseFlavour("torch1.13"), { torch: "1.13", cuda: null });
  for (const bad of ["torch2", "torch2.15-cuda13", "2.15", "torch2.15-cu", "xtorch2.15"]) {
    t.is(parseFlavour(bad), undefined, bad);
  }
  // torch 2.1 and 2.15 are different flavours, not a prefix of one another
  t.not(parseFlavour("torch2.15")!.torch, parseFlavour(flavourName("2.1.2"))!.torch);
});

test("a flavour's package for a platform, and the flavour a package name carries", (t) => {
  t.is(flavourPackage("torch2.15-cu13", "linux", "x64"), "@dpsm-native/linux-x64-torch2.15-cu13");
  t.is(packageFlavour("@dpsm-native/linux-x64-torch2.15-cu13", "linux", "x64"), "torch2.15-cu13");
  t.is(packageFlavour("@dpsm-native/linux-arm64-torch2.15", "linux", "x64"), undefined, "another platform's");
  t.is(packageFlavour("@dpsm-native/linux-x64-tools", "linux", "x64"), undefined, "not a flavour");
  t.is(packageFlavour("dpsm-native", "linux", "x64"), undefined);
  const here = flavourPackage("torch1.13");
  t.is(packageFlavour(here), "torch1.13", "this platform's by default");
});

test("node-gyp-build finds a core where prebuildify's --name puts it, on this host's platform, arch and libc", (t) => {
  const dir = tmpDir(t, "dpsm-flavour-");
  const folder = path.join(dir, "prebuilds", `${process.platform}-${process.arch}`);
  fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: flavourPackage("torch1.13") }));
  const file = path.join(folder, `${PREBUILD_NAME}.glibc.node`);
  fs.writeFileSync(file, "");
  const nodeGypBuild = createRequire(import.meta.url)("node-gyp-build") as { path(dir: string): string };
  t.is(nodeGypBuild.path(dir), file);
  // a musl core is not this (glibc) host's
  fs.renameSync(file, path.join(folder, `${PREBUILD_NAME}.musl.node`));
  t.throws(() => nodeGypBuild.path(dir), { message: /No native build was found/ });
});
