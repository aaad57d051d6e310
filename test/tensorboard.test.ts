// TensorBoard logs (lib/io/tensorboard-event-file.ts, lib/tensorboard-log.ts). TensorBoard's own reader
// judged the committed fixture (test/fixtures/tensorboard: expected.json, by read_fixture.py); here our writer
// must still write those bytes, our parse of them must match what TensorBoard read, and a real run must log
// every step and evaluation, the reliability diagrams and the config, a resumed session in a file of its own.
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { prepareLanguageModelData, type StepEvent, Trainer, type TrainerOptions } from "../lib/index.ts";
import { EventFileWriter } from "../lib/io/tensorboard-event-file.ts";
import { readRunLog } from "../lib/runlog.ts";
import { CONFIG_TAG, configText, evalScalars, reliabilityTag, stepScalars } from "../lib/tensorboard-log.ts";
import { FIXTURE_DIR, FIXTURE_RUN, fixtureSessions, writeFixture } from "./fixtures/tensorboard/write-fixture.ts";
import { eventFiles, folderView, parseEvent, readRecords, type TfEvent } from "./helpers/tfevents.ts";
import { tmpDir } from "./helpers/tmp.ts";

interface Expected {
  tensorboard: string;
  files: string[];
  fileVersion: number;
  scalars: Record<string, { step: number; value: number; wallTime: number }[]>;
  images: Record<string, { step: number; width: number; height: number; sha256: string; wallTime: number }[]>;
  texts: Record<
    string,
    { plugin: string; events: { step: number; text: string[]; dtype: number; wallTime: number }[] }
  >;
}
const expected = JSON.parse(fs.readFileSync(path.join(FIXTURE_DIR, "expected.json"), "utf8")) as Expected;

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// The reliability diagrams inside the committed files, by step (the writer takes them as given bytes).
function committedPngs(): Map<number, Uint8Array> {
  const pngs = new Map<number, Uint8Array>();
  for (const file of eventFiles(FIXTURE_RUN)) {
    for (const event of readRecords(file).map(parseEvent)) {
      for (const value of event.values) if (value.image) pngs.set(event.step, value.image.png);
    }
  }
  return pngs;
}

// What our parse of a folder says, in the shape of read_fixture.py's expected.json.
function viewAsExpected(dir: string): Omit<Expected, "fileVersion" | "tensorboard"> {
  const view: Omit<Expected, "fileVersion" | "tensorboard"> = {
    files: eventFiles(dir).map((f) => path.basename(f)),
    scalars: {},
    images: {},
    texts: {},
  };
  for (const { event, value } of folderView(dir)) {
    const { step, wallTime } = event;
    if (value.simpleValue !== undefined) {
      (view.scalars[value.tag] ??= []).push({ step, value: value.simpleValue, wallTime });
    } else if (value.image) {
      const { width, height, png } = value.image;
      const sha256 = createHash("sha256").update(png).digest("hex");
      (view.images[value.tag] ??= []).push({ step, width, height, sha256, wallTime });
    } else if (value.text) {
      const text = (view.texts[value.tag] ??= { plugin: value.pluginName ?? "", events: [] });
      text.events.push({ step, text: value.text, dtype: value.dtype ?? 0, wallTime });
    }
  }
  return view;
}

test("our writer writes the event files TensorBoard read, byte for byte", (t) => {
  const dir = tmpDir(t, "dpsm-tb-fixture-");
  const pngs = committedPngs();
  t.deepEqual([...pngs.keys()], [2, 4], "the fixture holds the diagrams of both evaluations");
  const written = writeFixture(dir, pngs);
  t.deepEqual(
    written.map((f) => path.basename(f)),
    expected.files,
  );
  for (const file of written) {
    const committed = fs.readFileSync(path.join(FIXTURE_RUN, path.basename(file)));
    t.true(fs.readFileSync(file).equals(committed), `${path.basename(file)} differs from the committed file`);
  }
});

test("our parse of the fixture matches TensorBoard's, and holds the records' values", (t) => {
  const { fileVersion: _v, tensorboard: _version, ...tensorboard } = expected;
  t.deepEqual(viewAsExpected(FIXTURE_RUN), tensorboard);
  t.is(expected.fileVersion, 2);
  for (const file of eventFiles(FIXTURE_RUN)) t.is(parseEvent(readRecords(file)[0]!).fileVersion, "brain.Event:2");

  // TensorBoard kept each step once — the resumed session's step 3, not the first session's — and the values
  // are the records' own, in single precision.
  const sessions = fixtureSessions();
  const steps = new Map(sessions.flatMap((s) => s.records).map((r) => [`${r.type}:${r.step}`, r]));
  t.deepEqual(
    expected.scalars["train/loss"]!.map((p) => p.step),
    [1, 2, 3, 4],
  );
  t.true(expected.scalars["train/loss"]!.find((p) => p.step === 3)!.wallTime > 1700000100);
  for (const r of steps.values()) {
    const values = r.type === "step" ? stepScalars(r) : evalScalars(r, "valid");
    t.true(Object.keys(values).length >= (r.type === "step" ? 12 : 9));
    for (const [tag, value] of Object.entries(values)) {
      t.is(expected.scalars[tag]!.find((p) => p.step === r.step)!.value, Math.fround(value), `${tag} at ${r.step}`);
    }
  }
  t.deepEqual(
    expected.images[reliabilityTag("valid")]!.map((i) => [i.step, i.width > 100, i.height > 100]),
    [
      [2, true, true],
      [4, true, true],
    ],
  );
  const config = expected.texts[CONFIG_TAG]!;
  t.is(config.plugin, "text");
  t.deepEqual(
    config.events.map((e) => e.text),
    sessions.map(({ start: { type: _type, ...start } }) => [configText(start)]),
  );
  const colorspaces = folderView(FIXTURE_RUN).flatMap(({ value }) => (value.image ? [value.image.colorspace] : []));
  t.deepEqual(colorspaces, [4, 4], "resvg's PNGs are RGBA");
});

test("a damaged record fails its CRC; a closed writer refuses records; a bad step or image is refused", (t) => {
  const dir = tmpDir(t, "dpsm-tb-crc-");
  const file = path.join(dir, path.basename(eventFiles(FIXTURE_RUN)[0]!));
  const bytes = fs.readFileSync(eventFiles(FIXTURE_RUN)[0]!);
  bytes[bytes.length - 100]! ^= 1;
  fs.writeFileSync(file, bytes);
  t.throws(() => readRecords(file), { message: /data CRC/ });

  const writer = new EventFileWriter(path.join(dir, "w"));
  t.throws(() => writer.scalars(-1, { a: 1 }), { message: /step -1/ });
  t.throws(() => writer.image(1, "img", Buffer.from("not a png")), { message: /expected PNG bytes/ });
  writer.close();
  t.throws(() => writer.scalars(1, { a: 1 }), { message: /is closed/ });
  // a second writer in the same second gets a file that sorts after the first one's
  const later = new EventFileWriter(path.join(dir, "w"));
  later.close();
  t.deepEqual(eventFiles(path.join(dir, "w")), [writer.file, later.file].sort());
  t.not(writer.file, later.file);
});

test("a TensorBoard folder that cannot be made is refused by the constructor", async (t) => {
  const dir = tmpDir(t, "dpsm-tb-paths-");
  fs.writeFileSync(path.join(dir, "tensorboard"), "");
  const base: TrainerOptions = {
    model: { size: "tiny" },
    loss: { kind: "ce" },
    data: { source: "wikitext-2", contextLength: 33 },
    maxSteps: 1,
    progress: false,
  };
  t.throws(() => new Trainer({ ...base, runDir: dir }), {
    message: /^Trainer options \(its TensorBoard folder\): .*tensorboard is a file, expected a folder/,
  });
  t.throws(() => new Trainer({ ...base, tensorboard: "/proc/self/tb" }), {
    message: /^Trainer options\.tensorboard: .*lies in \/proc/,
  });
  await t.notThrowsAsync(new Trainer({ ...base, runDir: dir, tensorboard: false }).ready());
});

test.serial(
  "a run logs every step and evaluation, the diagrams and the config; a resumed session adds a file",
  async (t) => {
    const dir = tmpDir(t, "dpsm-tb-run-");
    const data = {
      train: await prepareLanguageModelData({ source: "wikitext-2", split: "train", contextLength: 64 }),
      valid: await prepareLanguageModelData({ source: "wikitext-2", split: "valid", contextLength: 64 }),
    };
    const options: TrainerOptions = {
      model: { size: "tiny", seed: 0 },
      loss: { kind: "dpsm", schedule: "linear", warmupSteps: 2 },
      data,
      maxSteps: 6,
      batchSize: 4,
      evalEvery: 2,
      evalMaxSequences: 2,
      runDir: dir,
      progress: false,
    };
    const steps: StepEvent[][] = [[], []];
    const controller = new AbortController();
    const first = new Trainer(options);
    first.on("step", (s) => (steps[0]!.push(s), s.step === 3 && controller.abort()));
    t.is((await first.fit({ signal: controller.signal })).reason, "aborted");
    const tb = path.join(dir, "tensorboard");
    t.is(eventFiles(tb).length, 1);
    const second = new Trainer(options);
    second.on("step", (s) => steps[1]!.push(s));
    t.is((await second.fit()).reason, "max_steps");
    const files = eventFiles(tb);
    t.is(files.length, 2, "the resumed session writes a file of its own");

    const log = readRunLog(path.join(dir, "train.jsonl"));
    const evalSteps = log.evals.map((e) => e.step);
    t.deepEqual(evalSteps, [2, 4, 6]);
    for (const [i, file] of files.entries()) {
      const events: TfEvent[] = readRecords(file).map(parseEvent);
      t.is(events[0]!.fileVersion, "brain.Event:2");
      const { type: _type, ...start } = log.starts[i]!;
      const config = events.find((e) => e.values.some((v) => v.tag === CONFIG_TAG))!;
      t.is(config.step, 0);
      t.deepEqual(config.values[0]!.text, [configText(start)]);
      t.is(config.values[0]!.pluginName, "text");
      const sessionStart = events.find((e) => e.sessionStatus === 1)!;
      t.is(sessionStart.step, steps[i]![0]!.step, "the session starts at its first step");
      // one event per step record, holding every numeric field of it
      const stepEvents = events.filter((e) => e.values.some((v) => v.tag === "train/loss"));
      t.deepEqual(
        stepEvents.map((e) => e.step),
        steps[i]!.map((s) => s.step),
      );
      for (const [j, s] of steps[i]!.entries()) {
        const logged = Object.fromEntries(stepEvents[j]!.values.map((v) => [v.tag, v.simpleValue]));
        const want = Object.fromEntries(Object.entries(stepScalars(s)).map(([k, v]) => [k, Math.fround(v)]));
        t.deepEqual(logged, want);
        for (const field of ["loss", "alpha", "lr", "gradNorm", "tokensPerSecond", "ce", "brier", "updateRatio"]) {
          t.true(`train/${field}` in logged, `train/${field}`);
        }
      }
      for (const e of log.evals.filter((e) => steps[i]!.some((s) => s.step === e.step))) {
        const scalars = events.find((ev) => ev.step === e.step && ev.values.some((v) => v.tag === "eval/valid/nll"))!;
        t.is(scalars.values.find((v) => v.tag === "eval/valid/ece10")!.simpleValue, Math.fround(e.metrics.ece10));
        t.is(scalars.values.length, Object.keys(evalScalars(e, "valid")).length);
        const image = events.find((ev) => ev.step === e.step && ev.values[0]?.image)!.values[0]!;
        t.is(image.tag, "eval/valid/reliability");
        t.true(image.image!.png.subarray(0, 8).equals(PNG_SIGNATURE));
        t.true(image.image!.width > 100 && image.image!.height > 100);
      }
    }
    // Over both files, as TensorBoard shows them: every step of the run once.
    const loss = folderView(tb).filter(({ value }) => value.tag === "train/loss");
    t.deepEqual(
      loss.map(({ event }) => event.step),
      log.steps.map((s) => s.step),
    );
    const size = files.reduce((n, f) => n + fs.statSync(f).size, 0);
    t.log(
      `tensorboard/: ${files.length} files, ${size} bytes for ${log.steps.length} steps and ${evalSteps.length} evaluations`,
    );

    // Turned off: no folder.
    const off = path.join(dir, "off");
    await new Trainer({ ...options, runDir: off, maxSteps: 1, tensorboard: false }).fit();
    t.true(fs.existsSync(path.join(off, "train.jsonl")));
    t.false(fs.existsSync(path.join(off, "tensorboard")));
  },
);
