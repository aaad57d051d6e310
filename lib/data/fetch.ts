// Downloading a data set's public files into the data folder: each file goes to `<dest>.partial`, an interrupted
// download resumes with an HTTP Range request (a server that ignores Range answers 200 and it starts over), the
// bytes are checked against the pinned size + sha256 (or, for an unpinned file, the size the server announced)
// and only then renamed into place. What an unpinned file hashed to is recorded in `<set>/fetched.json` and
// later checks compare with it. Unreachable hosts end in an error that says which files to place where.
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

import type cliProgress from "cli-progress";

import { moveIntoPlace, writeJsonAtomic } from "../io/atomic.ts";
import { ensureFolder } from "../io/paths.ts";
import { hashFileAsync } from "./cache.ts";
import { DATA_SOURCES, type DataSource, type FetchableName, type SourceFile } from "./sources.ts";

/** The record of what was fetched, per data set, beside its files. */
export const RECORD_FILE = "fetched.json";

export interface FetchOptions {
  /** the data folder (default: dataDir()) — the caller resolves it */
  dir: string;
  /** a base URL laid out like the data folder (`<mirror>/<path>`), instead of each file's public URL */
  mirror?: string;
  /** progress and status lines (default: none) */
  say?: (line: string) => void;
  /** draw a progress bar on stderr (default: when stderr is a terminal) */
  progress?: boolean;
  /** how many times a download that broke off mid-way is resumed within one call (default 3) */
  retries?: number;
  /** give up on a response that sends nothing for this long (default 60 s) */
  idleTimeoutMs?: number;
}

export interface FetchedFile {
  path: string;
  file: string;
  size: number;
  sha256: string;
  /** "downloaded", or "present" (already there and verified) */
  status: "downloaded" | "present";
  /** bytes transferred by this call */
  transferred: number;
  /** whether size and sha256 were pinned in the manifest (else: recorded at first download) */
  pinned: boolean;
}

interface RecordEntry {
  url: string;
  size: number;
  sha256: string;
  pinned: boolean;
  fetchedAt: string;
}

type Records = Record<string, RecordEntry>;

/** The data set's files could not be reached; says what to place where. */
export class DataUnreachableError extends Error {
  override name = "DataUnreachableError";
}

/** An HTTP error status (e.g. 404), naming the URL. */
export class DownloadHttpError extends Error {
  override name = "DownloadHttpError";
  constructor(
    readonly url: string,
    readonly status: number,
    statusText: string,
  ) {
    super(`HTTP ${status}${statusText ? ` ${statusText}` : ""}: ${url}`);
  }
}

/** Downloaded bytes that do not match the expected size or sha256; the bad file is already deleted. */
export class ChecksumError extends Error {
  override name = "ChecksumError";
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** The URL a file is fetched from: the mirror's `<base>/<path>`, else its public URL. */
export function fileUrl(file: SourceFile, mirror?: string): string {
  if (mirror === undefined || mirror === "") return file.url;
  return `${mirror.replace(/\/+$/, "")}/${file.path.split("/").map(encodeURIComponent).join("/")}`;
}

export function recordPath(dir: string, name: FetchableName): string {
  return path.join(dir, name, RECORD_FILE);
}

export function readRecords(dir: string, name: FetchableName): Records {
  const file = recordPath(dir, name);
  if (!fs.existsSync(file)) return {};
  try {
    const parsed = JSON.parse(fs.readFileSync(file, "utf8")) as { files?: Records };
    return parsed.files ?? {};
  } catch (e) {
    throw new Error(`${file}: not a valid record of fetched files (${(e as Error).message}); delete it to start over`, {
      cause: e,
    });
  }
}

function writeRecords(dir: string, name: FetchableName, files: Records): void {
  writeJsonAtomic(recordPath(dir, name), { dataset: name, files });
}

function size(file: string): number | undefined {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  return st?.isFile() ? st.size : undefined;
}

/** What to place where when nothing can be downloaded. */
export function placementMessage(source: DataSource, dir: string, files: readonly SourceFile[] = source.files): string {
  const lines = files.map((f) => {
    const check = f.sha256 ? ` (${f.size!.toLocaleString("en-US")} bytes, sha256 ${f.sha256})` : "";
    return `  ${path.join(dir, f.path)}\n      from ${f.url}${check}`;
  });
  return (
    `to use ${source.name} without a connection, download these files elsewhere and place them at:\n` +
    `${lines.join("\n")}\n(or point DPSM_DATA_DIR, or --dir / dataDir, at a folder that already holds ${source.name}/)`
  );
}

// No connection could be made at all: the host is unreachable (offline, refused, no DNS).
const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
]);
// A connection that broke.
const NETWORK_CODES = new Set([...CONNECT_CODES, "ECONNRESET", "EPIPE", "UND_ERR_SOCKET"]);

function errorCode(e: unknown, codes: ReadonlySet<string>): string | undefined {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === "string" && codes.has(code)) return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

const networkCode = (e: unknown) => errorCode(e, NETWORK_CODES);

interface Progress {
  start(total: number, done: number): void;
  update(done: number): void;
  stop(): void;
}

function progressBar(label: string, enabled: boolean): Progress {
  if (!enabled) return { start() {}, update() {}, stop() {} };
  // Loaded here, for a terminal's bar only, not when the package is imported (test/package.test.ts).
  const { SingleBar, Presets } = createRequire(import.meta.url)("cli-progress") as typeof cliProgress;
  const bar = new SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {got}/{all} | {rate} | ETA {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
      barsize: 24,
      etaBuffer: 50,
    },
    Presets.shades_classic,
  );
  let t0 = 0;
  let first = 0;
  const payload = (done: number, total: number) => {
    const secs = (performance.now() - t0) / 1000;
    const rate = secs > 0.2 ? `${formatBytes((done - first) / secs)}/s` : "…";
    return { got: formatBytes(done), all: total > 0 ? formatBytes(total) : "?", rate };
  };
  let total = 0;
  return {
    start(t, done) {
      total = t;
      t0 = performance.now();
      first = done;
      bar.start(Math.max(t, 1), done, payload(done, t));
    },
    update(done) {
      bar.update(done, payload(done, total));
    },
    stop() {
      bar.stop();
    },
  };
}

/** Thrown when a response broke off mid-way: what was received stays in the .partial file. */
class Interrupted extends Error {}

/**
 * One attempt: GET `url` into `partial`, from its current length (Range) when it has any, counting the body bytes
 * received in `counter`. Resolves to the file's announced length; throws Interrupted when the body broke off,
 * DownloadHttpError on an error status.
 */
async function attempt(
  url: string,
  partial: string,
  expectedSize: number | undefined,
  bar: Progress,
  idleTimeoutMs: number,
  counter: { bytes: number },
): Promise<{ total: number | undefined }> {
  let have = size(partial) ?? 0;
  if (expectedSize !== undefined && have > expectedSize) {
    fs.rmSync(partial);
    have = 0;
  }
  if (expectedSize !== undefined && have === expectedSize) return { total: expectedSize };
  const controller = new AbortController();
  let idle: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => controller.abort(new Error(`no data for ${idleTimeoutMs / 1000} s`)), idleTimeoutMs);
  };
  arm();
  try {
    const res = await fetch(url, {
      headers: have > 0 ? { Range: `bytes=${have}-` } : {},
      signal: controller.signal,
      redirect: "follow",
    });
    if (res.status === 416 && have > 0) {
      // Nothing past what we have: the partial file is the whole file (checked next).
      await res.body?.cancel();
      return { total: have };
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new DownloadHttpError(url, res.status, res.statusText);
    }
    let start = 0;
    let total: number | undefined;
    const length = Number(res.headers.get("content-length") ?? Number.NaN);
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get("content-range") ?? "");
      if (!m || Number(m[1]) !== have) {
        // A range other than the one asked for: do not splice it in; start over.
        await res.body?.cancel();
        fs.rmSync(partial, { force: true });
        throw new Interrupted(`server answered a different range (${res.headers.get("content-range")})`);
      }
      start = have;
      total = m[3] === "*" ? undefined : Number(m[3]);
    } else {
      // 200: the server ignored Range (or none was asked): the body is the whole file.
      start = 0;
      total = Number.isFinite(length) ? length : undefined;
    }
    const fh = await fs.promises.open(partial, start === 0 ? "w" : "a");
    let done = start;
    bar.start(total ?? expectedSize ?? 0, done);
    try {
      if (res.body) {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          arm();
          let off = 0;
          while (off < chunk.byteLength) off += (await fh.write(chunk, off, chunk.byteLength - off)).bytesWritten;
          done += chunk.byteLength;
          counter.bytes += chunk.byteLength;
          bar.update(done);
        }
      }
      await fh.sync();
    } catch (e) {
      throw new Interrupted(
        `connection broke off after ${done.toLocaleString("en-US")} bytes: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    } finally {
      await fh.close();
      bar.stop();
    }
    if (total !== undefined && done < total) {
      throw new Interrupted(
        `connection ended after ${done.toLocaleString("en-US")} of ${total.toLocaleString("en-US")} bytes`,
      );
    }
    return { total };
  } finally {
    clearTimeout(idle);
  }
}

/**
 * Downloads one file to `<dir>/<file.path>` (resuming `<dest>.partial`), verifies it, renames it into place.
 * `expected` is the pinned or recorded size + sha256; without it the announced length is checked and the digest
 * returned for recording.
 */
export async function downloadFile(
  file: SourceFile,
  o: FetchOptions & { expected?: { size: number; sha256: string } },
): Promise<{ size: number; sha256: string; transferred: number }> {
  const dest = path.join(o.dir, file.path);
  const partial = `${dest}.partial`;
  const url = fileUrl(file, o.mirror);
  const expected = o.expected ?? (file.sha256 ? { size: file.size!, sha256: file.sha256 } : undefined);
  // The one path check of every writer (lib/io/paths.ts): under /proc, /sys or /dev a recursive mkdir never returns.
  ensureFolder(path.dirname(dest), "data fetch: dir");
  const say = o.say ?? (() => {});
  const bar = progressBar(file.path, o.progress ?? process.stderr.isTTY === true);
  const retries = o.retries ?? 3;
  const counter = { bytes: 0 };
  let announced: number | undefined;
  for (let tries = 0; ; tries++) {
    try {
      const r = await attempt(url, partial, expected?.size, bar, o.idleTimeoutMs ?? 60_000, counter);
      announced = r.total;
      break;
    } catch (e) {
      if (e instanceof Interrupted || (networkCode(e) !== undefined && (size(partial) ?? 0) > 0)) {
        const have = size(partial) ?? 0;
        if (tries < retries) {
          say(`${file.path}: ${(e as Error).message}; resuming from byte ${have.toLocaleString("en-US")}`);
          continue;
        }
        throw new Error(
          `${file.path}: download from ${url} interrupted (${(e as Error).message}); ` +
            `${have.toLocaleString("en-US")} bytes kept in ${partial}; run the same command again to resume`,
          { cause: e },
        );
      }
      throw e;
    }
  }
  const got = size(partial) ?? 0;
  const wantSize = expected?.size ?? announced;
  if (wantSize !== undefined && got !== wantSize) {
    fs.rmSync(partial, { force: true });
    throw new ChecksumError(
      `${dest}: size mismatch: expected ${wantSize.toLocaleString("en-US")} bytes, got ${got.toLocaleString("en-US")} ` +
        `(from ${url}); the download was deleted`,
    );
  }
  const sha256 = await hashFileAsync(partial);
  if (expected !== undefined && sha256 !== expected.sha256) {
    fs.rmSync(partial, { force: true });
    throw new ChecksumError(
      `${dest}: sha256 mismatch: expected ${expected.sha256}, got ${sha256} (from ${url}); the download was deleted`,
    );
  }
  moveIntoPlace(partial, dest);
  return { size: got, sha256, transferred: counter.bytes };
}

/**
 * Checks a file already at its destination against the pinned or recorded size + sha256 (`expected`). A
 * mismatch is an error: the file is left for the user to look at.
 */
async function verifyPresent(dest: string, expected: { size: number; sha256: string }): Promise<string> {
  const got = size(dest)!;
  if (got !== expected.size) {
    throw new ChecksumError(
      `${dest}: size mismatch: expected ${expected.size.toLocaleString("en-US")} bytes, got ${got.toLocaleString("en-US")}; ` +
        `delete it and fetch again`,
    );
  }
  const sha256 = await hashFileAsync(dest);
  if (sha256 !== expected.sha256) {
    throw new ChecksumError(
      `${dest}: sha256 mismatch: expected ${expected.sha256}, got ${sha256}; delete it and fetch again`,
    );
  }
  return sha256;
}

/**
 * Fetches every file of data set `set` (a name, or a manifest of the same shape) into the data folder `o.dir`: files already there are verified (against
 * the pin, else the record of their first download) and kept; the others are downloaded. Throws
 * DataUnreachableError (with what to place where) when the host cannot be reached at all.
 */
export async function fetchDataset(set: FetchableName | DataSource, o: FetchOptions): Promise<FetchedFile[]> {
  const source = typeof set === "string" ? DATA_SOURCES[set] : set;
  const name = source.name;
  const say = o.say ?? (() => {});
  const records = readRecords(o.dir, name);
  const out: FetchedFile[] = [];
  for (const file of source.files) {
    const dest = path.join(o.dir, file.path);
    const pinned = file.sha256 !== undefined;
    const rec = records[file.path];
    const expected = pinned
      ? { size: file.size!, sha256: file.sha256! }
      : rec && { size: rec.size, sha256: rec.sha256 };
    if (size(dest) !== undefined) {
      const sha256 = expected ? await verifyPresent(dest, expected) : await hashFileAsync(dest);
      const bytes = size(dest)!;
      if (!rec) {
        records[file.path] = { url: file.url, size: bytes, sha256, pinned, fetchedAt: new Date().toISOString() };
        writeRecords(o.dir, name, records);
      }
      say(`${file.path}: present, ${formatBytes(bytes)}, sha256 ${expected ? "verified" : "recorded"}`);
      out.push({ path: file.path, file: dest, size: bytes, sha256, status: "present", transferred: 0, pinned });
      continue;
    }
    const url = fileUrl(file, o.mirror);
    say(`${file.path}: fetching ${file.size ? formatBytes(file.size) : "(size not pinned)"} from ${url}`);
    let got: { size: number; sha256: string; transferred: number };
    try {
      got = await downloadFile(file, { ...o, ...(expected ? { expected } : {}) });
    } catch (e) {
      // Only a host that could not be connected to at all is "unreachable"; a broken-off transfer says so itself.
      const code = errorCode(e, CONNECT_CODES);
      if (code !== undefined && !(e instanceof DownloadHttpError) && !(e instanceof ChecksumError)) {
        const missing = source.files.filter((f) => size(path.join(o.dir, f.path)) === undefined);
        throw new DataUnreachableError(
          `${name}: cannot reach ${new URL(url).host} (${code}).\n${placementMessage(source, o.dir, missing)}`,
          { cause: e },
        );
      }
      throw e;
    }
    records[file.path] = {
      url,
      size: got.size,
      sha256: got.sha256,
      pinned,
      fetchedAt: new Date().toISOString(),
    };
    writeRecords(o.dir, name, records);
    say(
      `${file.path}: ${formatBytes(got.size)}, sha256 ${got.sha256.slice(0, 16)}… ` +
        `${pinned ? "matches the pinned digest" : rec ? "matches the record" : "recorded (first download)"}`,
    );
    out.push({
      path: file.path,
      file: dest,
      size: got.size,
      sha256: got.sha256,
      status: "downloaded",
      transferred: got.transferred,
      pinned,
    });
  }
  return out;
}

export interface DatasetStatus {
  name: FetchableName;
  files: { path: string; state: "present" | "partial" | "missing"; bytes: number; expected?: number }[];
  /** the data set's folder holds other files (a local copy in another layout) */
  other: string[];
}

/** What of each fetchable data set is in `dir`, by file size only (no hashing). */
export function datasetStatus(dir: string, name: FetchableName): DatasetStatus {
  const source = DATA_SOURCES[name];
  const records = readRecords(dir, name);
  const files = source.files.map((f) => {
    const dest = path.join(dir, f.path);
    const bytes = size(dest);
    const expected = f.size ?? records[f.path]?.size;
    const part = size(`${dest}.partial`);
    if (bytes !== undefined)
      return { path: f.path, state: "present" as const, bytes, ...(expected ? { expected } : {}) };
    if (part !== undefined)
      return { path: f.path, state: "partial" as const, bytes: part, ...(expected ? { expected } : {}) };
    return { path: f.path, state: "missing" as const, bytes: 0, ...(expected ? { expected } : {}) };
  });
  const known = new Set(source.files.flatMap((f) => [f.path, `${f.path}.partial`]));
  known.add(`${name}/${RECORD_FILE}`);
  const other: string[] = [];
  const walk = (rel: string) => {
    const abs = path.join(dir, rel);
    for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
      const r = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(r);
      else if (!known.has(r)) other.push(r);
    }
  };
  if (fs.statSync(path.join(dir, name), { throwIfNoEntry: false })?.isDirectory()) walk(name);
  return { name, files, other: other.sort() };
}

/**
 * For the experiments: fetch data set `name` into the data folder `dir` unless it is already complete there,
 * saying what, how much and from where. Only a folder holding nothing but this fetcher's own files (complete,
 * partial or none) is filled; a folder with anything else in it is a local copy in another layout, left to the
 * loaders, which say what is missing — a partial local copy is never topped up behind the user's back.
 */
export async function ensureDataset(
  name: FetchableName,
  dir: string,
  say: (line: string) => void,
  options: Omit<FetchOptions, "dir" | "say"> = {},
): Promise<boolean> {
  const status = datasetStatus(dir, name);
  if (status.other.length > 0 || status.files.every((f) => f.state === "present")) return false;
  const source = DATA_SOURCES[name];
  const mirror = options.mirror ?? process.env.DPSM_DATA_MIRROR;
  say(
    `data: ${name} is not in ${dir}; fetching it: ${source.title}, ${source.files.length} files, ` +
      `about ${formatBytes(source.approxBytes)}, from ${mirror ? `the mirror ${mirror}` : source.origin}`,
  );
  await fetchDataset(name, { ...options, ...(mirror ? { mirror } : {}), dir, say });
  return true;
}
