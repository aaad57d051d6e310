// `dpsm-native data fetch` against an HTTP server on loopback that serves the real files of the data folder this
// run uses (../shared/data here) laid out as the data folder — the layout a mirror has. The public hosts cannot
// be reached from the machines these tests run on, so the public URLs themselves are not exercised; what is
// tested is everything between a URL and a verified file: a complete download checked against the pinned
// sha256, a download broken off half-way and resumed with Range (only the rest sent), a server that ignores
// Range, a corrupted file rejected and deleted, a 404 named with its URL, an unreachable host answered with
// what to place where, the record of an unpinned file, and the command line.
//
// WikiText-2 is the data set used throughout: its published files (pytorch/examples' wiki.*.tokens copies) are
// byte for byte the ones in the data folder, so their pinned digests can be checked here. The Hugging Face
// parquet shards (WikiText-103, CNN/DM, XSum) are not held locally, so for them only the 404 path is real.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { promisify } from "node:util";

import test from "ava";

import {
  ChecksumError,
  DataUnreachableError,
  DownloadHttpError,
  ensureDataset,
  fetchDataset,
  readRecords,
} from "../lib/data/fetch.ts";
import { dataDir } from "../lib/data/paths.ts";
import { DATA_SOURCES, type DataSource } from "../lib/data/sources.ts";
import { packageRoot } from "../lib/native.ts";
import { tmpDir } from "./helpers/tmp.ts";

const DATA = dataDir();
const WT2 = DATA_SOURCES["wikitext-2"];
/** the WikiText-2 files with their pins (every one is pinned) */
const PIN = WT2.files.map((f) => ({ path: f.path, url: f.url, size: f.size!, sha256: f.sha256! }));
const TRAIN = "wikitext-2/tokens/train.txt";
const VALID = "wikitext-2/tokens/valid.txt";
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

interface Served {
  path: string;
  range: string | undefined;
  status: number;
  /** body bytes written */
  bytes: number;
}

interface Behaviour {
  /** first request of this path: send this many body bytes (Content-Length says the whole), then drop the connection */
  dropAfter?: Map<string, number>;
  /** serve this path with one byte flipped */
  corrupt?: Set<string>;
  /** answer 200 with the whole file even to a Range request */
  ignoreRange?: boolean;
}

/** A loopback server for the data folder; `log` lists every request with what was sent. */
async function serve(b: Behaviour = {}) {
  const log: Served[] = [];
  const dropped = new Set<string>();
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url!, "http://x").pathname).replace(/^\/+/, "");
    const file = path.join(DATA, rel);
    const entry: Served = { path: rel, range: req.headers.range, status: 0, bytes: 0 };
    log.push(entry);
    if (rel.includes("..") || !fs.statSync(file, { throwIfNoEntry: false })?.isFile()) {
      entry.status = 404;
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    let body = fs.readFileSync(file);
    if (b.corrupt?.has(rel)) {
      body = Buffer.from(body);
      body.writeUInt8(body.readUInt8(body.length >> 1) ^ 0x20, body.length >> 1);
    }
    const total = body.length;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    let start = 0;
    if (m && !b.ignoreRange) {
      start = Number(m[1]);
      entry.status = 206;
      res.writeHead(206, {
        "content-length": total - start,
        "content-range": `bytes ${start}-${total - 1}/${total}`,
        "accept-ranges": "bytes",
      });
    } else {
      entry.status = 200;
      res.writeHead(200, { "content-length": total, "accept-ranges": "bytes" });
    }
    const cut = b.dropAfter?.get(rel);
    if (cut !== undefined && !dropped.has(rel)) {
      dropped.add(rel);
      entry.bytes = cut;
      res.write(body.subarray(start, start + cut), () => res.destroy());
      return;
    }
    entry.bytes = total - start;
    res.end(body.subarray(start));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return { url, log, close, server };
}

test("a complete download of WikiText-2 matches the pinned size and sha256, and a second fetch downloads nothing", async (t) => {
  const s = await serve();
  t.teardown(s.close);
  const dir = tmpDir(t, "dpsm-fetch-");
  const lines: string[] = [];
  const files = await fetchDataset("wikitext-2", { dir, mirror: s.url, progress: false, say: (l) => lines.push(l) });
  t.is(files.length, 3);
  for (const [i, f] of files.entries()) {
    const pinned = PIN[i]!;
    t.is(f.status, "downloaded");
    t.true(f.pinned);
    t.is(f.size, pinned.size);
    t.is(f.sha256, pinned.sha256);
    t.is(f.transferred, pinned.size);
    t.true(fs.readFileSync(f.file).equals(fs.readFileSync(path.join(DATA, f.path))));
    t.false(fs.existsSync(`${f.file}.partial`));
  }
  t.log(`${files.reduce((n, f) => n + f.size, 0).toLocaleString("en-US")} bytes fetched and verified`);
  t.deepEqual(
    s.log.map((r) => [r.path, r.status]),
    WT2.files.map((f) => [f.path, 200]),
  );
  t.true(lines.some((l) => /train\.txt: 10\.3 MiB, sha256 9e9fa1ad55b1c2c9… matches the pinned digest/.test(l)));
  const rec = readRecords(dir, "wikitext-2");
  t.is(rec[TRAIN]!.sha256, PIN[0]!.sha256);
  t.true(rec[TRAIN]!.pinned);

  const again = await fetchDataset("wikitext-2", { dir, mirror: s.url, progress: false });
  t.deepEqual(
    again.map((f) => [f.status, f.transferred]),
    [
      ["present", 0],
      ["present", 0],
      ["present", 0],
    ],
  );
  t.is(s.log.length, 3, "nothing requested for files already verified");
});

test("the out-of-domain sets download and match their pins (the files this project's SOURCE.md traces upstream)", async (t) => {
  const s = await serve();
  t.teardown(s.close);
  const dir = tmpDir(t, "dpsm-fetch-ood-");
  const files = await fetchDataset("ood_lm", { dir, mirror: s.url, progress: false });
  t.deepEqual(
    files.map((f) => [f.path, f.status, f.pinned]),
    DATA_SOURCES.ood_lm.files.map((f) => [f.path, "downloaded", true]),
  );
  for (const f of files) t.true(fs.readFileSync(f.file).equals(fs.readFileSync(path.join(DATA, f.path))), f.path);
});

test("a download broken off half-way is resumed with Range: the second request sends only the rest", async (t) => {
  const total = PIN[0]!.size;
  const cut = 4_000_000;
  const s = await serve({ dropAfter: new Map([[TRAIN, cut]]) });
  t.teardown(s.close);
  const dir = tmpDir(t, "dpsm-fetch-");
  const partial = path.join(dir, `${TRAIN}.partial`);
  // retries: 0 — the first call gives up and keeps what it got, as a killed or offline run would.
  const err = await t.throwsAsync(fetchDataset("wikitext-2", { dir, mirror: s.url, progress: false, retries: 0 }), {
    message:
      /train\.txt: download from http:\/\/127\.0\.0\.1:\d+\/wikitext-2\/tokens\/train\.txt interrupted .*kept in .*train\.txt\.partial; run the same command again to resume/,
  });
  t.log(err!.message);
  const have = fs.statSync(partial).size;
  t.true(have > 0 && have <= cut, `kept ${have} bytes`);
  t.false(fs.existsSync(path.join(dir, TRAIN)));

  const files = await fetchDataset("wikitext-2", { dir, mirror: s.url, progress: false });
  const second = s.log.filter((r) => r.path === TRAIN)[1]!;
  t.is(second.range, `bytes=${have}-`);
  t.is(second.status, 206);
  t.is(second.bytes, total - have, "only the rest was sent");
  t.is(files[0]!.transferred, total - have);
  t.is(files[0]!.sha256, PIN[0]!.sha256);
  t.false(fs.existsSync(partial));
  t.log(
    `first request: ${have.toLocaleString("en-US")} bytes kept; second: Range ${second.range}, ${second.bytes.toLocaleString("en-US")} bytes`,
  );
});

test("within one call a broken-off download resumes by itself", async (t) => {
  const s = await serve({ dropAfter: new Map([[VALID, 300_000]]) });
  t.teardown(s.close);
  const dir = tmpDir(t, "dpsm-fetch-");
  const lines: string[] = [];
  const files = await fetchDataset("wikitext-2", { dir, mirror: s.url, progress: false, say: (l) => lines.push(l) });
  const reqs = s.log.filter((r) => r.path === VALID);
  t.is(reqs.length, 2);
  t.is(reqs[1]!.status, 206);
  t.is(reqs[1]!.range, `bytes=${PIN[1]!.size - reqs[1]!.bytes}-`, "the second request asked for the rest only");
  t.is(files[1]!.transferred, PIN[1]!.size, "every byte transferred once");
  t.is(files[1]!.sha256, PIN[1]!.sha256);
  t.true(lines.some((l) => /valid\.txt: connection broke off .*; resuming from byte/.test(l)));
});

test("a server that ignores Range (200) makes the download start over, still verified", async (t) => {
  const s = await serve({ dropAfter: new Map([[VALID, 500_000]]), ignoreRange: true });
  t.teardown(s.close);
  const dir = tmpDir(t, "dpsm-fetch-");
  const files = await fetchDataset("wikitext-2", { dir, mirror: s.url, progress: false });
  const reqs = s.log.filter((r) => r.path === VALID);
  t.is(reqs.length, 2);
  t.truthy(reqs[1]!.range);
  t.is(reqs[1]!.status, 200);
  t.is(reqs[1]!.bytes, PIN[1]!.size);
  // what the broken-off first response delivered, plus the whole file again
  t.true(files[1]!.transferred > PIN[1]!.size && files[1]!.transferred <= PIN[1]!.size + 500_000);
  t.is(files[1]!.sha256, PIN[1]!.sha256);
});

test("a corrupted file is rejected: the error names the file and both digests, nothing is left behind", async (t) => {
  const s = await serve({ corrupt: new Set([VALID]) });
  t.teardown(s.close);
  const dir = tmpDir(t, "dpsm-fetch-");
  const bad = Buffer.from(fs.readFileSync(path.join(DATA, VALID)));
  bad.writeUInt8(bad.readUInt8(bad.length >> 1) ^ 0x20, bad.length >> 1);
  const err = await t.throwsAsync(fetchDataset("wikitext-2", { dir, mirror: s.url, progress: false }), {
    instanceOf: ChecksumError,
  });
  const dest = path.join(dir, VALID);
  t.true(err!.message.startsWith(`${dest}: sha256 mismatch: expected ${PIN[1]!.sha256}, got ${sha256(bad)}`));
  t.log(err!.message);
  t.false(fs.existsSync(dest));
  t.false(fs.existsSync(`${dest}.partial`));
  t.true(fs.existsSync(path.join(dir, TRAIN)), "the file before it was kept");
});

test("a 404 is named with its URL (XSum's parquet shards are not in the local data folder)", async (t) => {
  const s = await serve();
  t.teardown(s.close);
  const dir = tmpDir(t, "dpsm-fetch-");
  const err = await t.throwsAsync(fetchDataset("xsum", { dir, mirror: s.url, progress: false }), {
    instanceOf: DownloadHttpError,
  });
  t.is(err!.message, `HTTP 404 Not Found: ${s.url}/xsum/data/train-00000-of-00001.parquet`);
  t.false(fs.existsSync(path.join(dir, "xsum/data/train-00000-of-00001.parquet.partial")));
});

test("an unreachable host ends in a message saying which files to place where, and from which public URLs", async (t) => {
  const s = await serve();
  await s.close(); // the port is now refused
  const dir = tmpDir(t, "dpsm-fetch-");
  const err = await t.throwsAsync(fetchDataset("wikitext-2", { dir, mirror: s.url, progress: false }), {
    instanceOf: DataUnreachableError,
  });
  t.regex(err!.message, /^wikitext-2: cannot reach 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  for (const f of PIN) {
    t.true(err!.message.includes(path.join(dir, f.path)), f.path);
    t.true(err!.message.includes(`from ${f.url} (${f.size.toLocaleString("en-US")} bytes, sha256 ${f.sha256})`));
  }
  t.log(err!.message);
});

test("an unpinned file's digest is recorded at first download and checked afterwards", async (t) => {
  const s = await serve();
  t.teardown(s.close);
  const dir = tmpDir(t, "dpsm-fetch-");
  // The WikiText-2 manifest without its pins: the case of the Hugging Face shards.
  const unpinned: DataSource = { ...WT2, files: WT2.files.map(({ path: p, url }) => ({ path: p, url })) };
  const files = await fetchDataset(unpinned, { dir, mirror: s.url, progress: false });
  const rec = readRecords(dir, "wikitext-2");
  for (const [i, f] of files.entries()) {
    t.false(f.pinned);
    t.is(rec[f.path]!.sha256, PIN[i]!.sha256, "the recorded digest is the published one");
    t.is(rec[f.path]!.size, PIN[i]!.size);
  }
  // The local copy changes afterwards: the next check compares with the record.
  const dest = path.join(dir, TRAIN);
  const bytes = fs.readFileSync(dest);
  bytes.writeUInt8(bytes.readUInt8(100) ^ 1, 100);
  fs.writeFileSync(dest, bytes);
  await t.throwsAsync(fetchDataset(unpinned, { dir, mirror: s.url, progress: false }), {
    instanceOf: ChecksumError,
    message: `${dest}: sha256 mismatch: expected ${PIN[0]!.sha256}, got ${sha256(bytes)}; delete it and fetch again`,
  });
});

test("the experiments fetch a set only when the data folder holds nothing of it", async (t) => {
  const s = await serve();
  t.teardown(s.close);
  const dir = tmpDir(t, "dpsm-fetch-");
  const lines: string[] = [];
  t.true(await ensureDataset("wikitext-2", dir, (l) => lines.push(l), { mirror: s.url, progress: false }));
  t.regex(
    lines[0]!,
    /^data: wikitext-2 is not in .*; fetching it: WikiText-2, .*3 files, about 12\.6 MiB, from the mirror http/,
  );
  t.is(fs.statSync(path.join(dir, TRAIN)).size, PIN[0]!.size);
  t.false(
    await ensureDataset("wikitext-2", dir, () => {}, { mirror: s.url, progress: false }),
    "complete: nothing to do",
  );

  // A local copy in another layout is left to the loaders.
  const other = tmpDir(t, "dpsm-fetch-");
  fs.mkdirSync(path.join(other, "wikitext-2", "raw"), { recursive: true });
  fs.copyFileSync(
    path.join(DATA, "wikitext-2/raw_test_only/wiki.test.raw"),
    path.join(other, "wikitext-2/raw/wiki.test.raw"),
  );
  const before = s.log.length;
  t.false(await ensureDataset("wikitext-2", other, () => {}, { mirror: s.url, progress: false }));
  t.is(s.log.length, before);
});

test("a fetch destination under /proc is refused naming the setting, before any download (not a hang)", async (t) => {
  // The one path check of every writer (lib/io/paths.ts): a recursive mkdir under /proc never returns. Nothing
  // listens on the mirror's port: the refusal comes before any request.
  for (const dir of ["/proc/self/x", "/sys/x", "/dev/x"]) {
    await t.throwsAsync(fetchDataset("wikitext-2", { dir, mirror: "http://127.0.0.1:9", progress: false }), {
      message: new RegExp(`^data fetch: dir: ${dir}/wikitext-2/tokens lies in /[a-z]+, a kernel file system`),
    });
  }
});

const execFileAsync = promisify(execFile);

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const bin = path.join(packageRoot, "bin", "dpsm-native.mjs");
  try {
    const r = await execFileAsync(process.execPath, [bin, ...args], { cwd: packageRoot, maxBuffer: 1 << 24 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const r = e as { code: number; stdout: string; stderr: string };
    return { code: r.code, out: r.stdout + r.stderr };
  }
}

test("the command: data fetch --mirror --dir, data list, and its errors", async (t) => {
  const s = await serve();
  t.teardown(s.close);
  const dir = tmpDir(t, "dpsm-fetch-cli-");
  const got = await cli(["data", "fetch", "wikitext-2", "--mirror", s.url, "--dir", dir]);
  t.is(got.code, 0, got.out);
  t.regex(
    got.out,
    /wikitext-2: 3 files, 12\.6 MiB in .*wikitext-2 \(12\.6 MiB downloaded in [\d.]+ s, every file checked\)/,
  );
  for (const f of PIN) t.is(sha256(fs.readFileSync(path.join(dir, f.path))), f.sha256);

  const list = await cli(["data", "list", "--dir", dir]);
  t.is(list.code, 0, list.out);
  t.regex(list.out, /wikitext-2: complete, 3 of 3 files, 12\.6 MiB/);
  t.regex(list.out, /cnn_dailymail: missing, 0 of 5 files/);

  const missing = await cli(["data", "fetch", "xsum", "--mirror", s.url, "--dir", dir, "--quiet"]);
  t.is(missing.code, 1);
  t.regex(missing.out, /HTTP 404 Not Found: http:\/\/127\.0\.0\.1:\d+\/xsum\/data\/train-00000-of-00001\.parquet/);

  const kernel = await cli(["data", "fetch", "wikitext-2", "--mirror", s.url, "--dir", "/proc/self/x"]);
  t.is(kernel.code, 2, kernel.out);
  t.regex(kernel.out, /^dpsm-native data: --dir: \/proc\/self\/x lies in \/proc, a kernel file system/);

  const bad = await cli(["data", "fetch", "wikitext-3"]);
  t.is(bad.code, 2);
  t.regex(
    bad.out,
    /unknown data set "wikitext-3"; expected one of wikitext-2, wikitext-103, cnn_dailymail, xsum, ood_lm/,
  );
  const help = await cli(["data", "--help"]);
  t.is(help.code, 0);
  t.regex(help.out, /usage: dpsm-native data fetch <wikitext-2\|wikitext-103\|cnn_dailymail\|xsum\|ood_lm>/);
});
