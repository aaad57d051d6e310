// `dpsm-native data …`: fetch the public data sets into the data folder, and list what it holds.
import path from "node:path";
import { checkFolderPath } from "../io/paths.ts";
import { parseSubcommand } from "../subcommand-args.ts";
import { datasetStatus, fetchDataset, formatBytes } from "./fetch.ts";
import { dataDir, dataDirPath, defaultDataDir } from "./paths.ts";
import { DATA_SOURCES, FETCHABLE, isFetchable } from "./sources.ts";

function usage(prog: string): string {
  const width = Math.max(...FETCHABLE.map((n) => n.length)) + 2;
  return [
    `usage: ${prog} fetch <${FETCHABLE.join("|")}>… [--dir D] [--mirror URL] [--quiet]`,
    `       ${prog} list [--dir D]`,
    "",
    "fetch   downloads a data set's public files into the data folder, resuming interrupted downloads and",
    "        checking size + sha256 (pinned where the published file is known, else recorded at first download)",
    "list    what the data folder holds of each data set, with sizes",
    "",
    "  --dir D        the data folder (default: DPSM_DATA_DIR, else $XDG_CACHE_HOME/dpsm-native/data,",
    `                 here ${defaultDataDir()})`,
    "  --mirror URL   fetch <URL>/<path in the data folder> instead of the public URLs (env DPSM_DATA_MIRROR)",
    "  --quiet        no progress bar or status lines",
    "",
    "data sets:",
    ...FETCHABLE.map(
      (n) => `  ${n.padEnd(width)}${DATA_SOURCES[n].title}\n  ${"".padEnd(width)}from ${DATA_SOURCES[n].origin}`,
    ),
  ].join("\n");
}

/** Runs `dpsm-native data <argv>`; resolves to the exit code (0 done, 1 failed, 2 bad arguments). */
export async function runDataCli(argv: readonly string[], prog = "dpsm-native data"): Promise<number> {
  const parsed = parseSubcommand(argv, {
    prog,
    usage: () => usage(prog),
    commands: ["fetch", "list"],
    options: { dir: { type: "string" }, mirror: { type: "string" }, quiet: { type: "boolean", default: false } },
  });
  if ("exit" in parsed) return parsed.exit;
  const { values, command, rest: names } = parsed;
  // The folder checked before any work (lib/io/paths.ts): one under /proc, /sys or /dev would hang the first mkdir.
  let dir: string;
  try {
    dir =
      values.dir !== undefined ? checkFolderPath(values.dir, "--dir") : command === "fetch" ? dataDir() : dataDirPath();
  } catch (e) {
    console.error(`${prog}: ${(e as Error).message}`);
    return 2;
  }

  if (command === "list") {
    console.log(`data folder: ${dir}`);
    for (const name of names.length > 0 ? names : FETCHABLE) {
      if (!isFetchable(name)) {
        console.error(`${prog}: unknown data set ${JSON.stringify(name)}; expected one of ${FETCHABLE.join(", ")}`);
        return 2;
      }
      const st = datasetStatus(dir, name);
      const present = st.files.filter((f) => f.state === "present").length;
      const bytes = st.files.reduce((s, f) => s + (f.state === "present" ? f.bytes : 0), 0);
      const state = present === st.files.length ? "complete" : present > 0 ? "partial" : "missing";
      console.log(`${name}: ${state}, ${present} of ${st.files.length} files, ${formatBytes(bytes)}`);
      for (const f of st.files) {
        const of = f.expected !== undefined ? ` of ${formatBytes(f.expected)}` : "";
        console.log(`  ${f.state.padEnd(8)} ${f.path}  ${f.state === "missing" ? "" : formatBytes(f.bytes)}${of}`);
      }
      if (st.other.length > 0) {
        console.log(`  also in ${name}/ (a local copy in another layout): ${st.other.join(", ")}`);
      }
    }
    return 0;
  }

  if (names.length === 0) {
    console.error(`${prog}: fetch which data set? one of ${FETCHABLE.join(", ")}\n\n${usage(prog)}`);
    return 2;
  }
  const unknown = names.filter((n) => !isFetchable(n));
  if (unknown.length > 0) {
    console.error(
      `${prog}: unknown data set ${unknown.map((n) => JSON.stringify(n)).join(", ")}; expected one of ${FETCHABLE.join(", ")}`,
    );
    return 2;
  }
  const mirror = values.mirror ?? process.env.DPSM_DATA_MIRROR;
  const say = values.quiet ? () => {} : (line: string) => console.error(line);
  for (const name of names) {
    if (!isFetchable(name)) continue;
    const source = DATA_SOURCES[name];
    say(`${name}: ${source.title}\n  from ${mirror ? `the mirror ${mirror}` : source.origin} into ${dir}`);
    try {
      const t0 = performance.now();
      const files = await fetchDataset(name, {
        dir,
        say,
        ...(mirror ? { mirror } : {}),
        progress: !values.quiet && process.stderr.isTTY === true,
      });
      const got = files.reduce((s, f) => s + f.transferred, 0);
      const total = files.reduce((s, f) => s + f.size, 0);
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      console.log(
        `${name}: ${files.length} files, ${formatBytes(total)} in ${path.join(dir, name)} ` +
          `(${formatBytes(got)} downloaded in ${secs} s, every file checked)`,
      );
    } catch (e) {
      const err = e as Error;
      console.error(`${prog} fetch ${name}: ${err.message}`);
      return 1;
    }
  }
  return 0;
}
