// Charts drawn on a thread of their own. Vega's layout of one chart holds the thread that draws it for 70–115 ms
// (resvg's rasterising already runs on libuv's pool), longer than a training run's event loop may lag
// (test/event-loop.test.ts: under 50 ms); so the diagrams a Trainer logs during fit() are drawn here. This one
// file is both sides: imported, it is the client; started as a worker (on this same module), it draws. The worker
// starts at the first chart, stays for the next, and never keeps the process alive when nothing is pending.
import { isMainThread, parentPort, Worker } from "node:worker_threads";

import type { ReliabilitySpec } from "./plots.ts";

interface Request {
  id: number;
  spec: ReliabilitySpec;
}
interface Reply {
  id: number;
  png?: Uint8Array;
  error?: string;
}

let worker: Worker | undefined;
let nextId = 0;
const pending = new Map<number, { resolve: (png: Uint8Array) => void; reject: (e: Error) => void }>();

function fail(e: Error): void {
  for (const p of pending.values()) p.reject(e);
  pending.clear();
  worker = undefined;
}

function started(): Worker {
  if (worker) return worker;
  // Run from the sources (a checkout), the worker registers tsx's loader first (a worker inherits none of its
  // parent's loader hooks); the build in dist/ is plain JavaScript.
  const w = import.meta.url.endsWith(".ts")
    ? new Worker(
        `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))})` +
          `.then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); });`,
        { eval: true },
      )
    : new Worker(new URL(import.meta.url));
  w.on("message", (reply: Reply) => {
    const p = pending.get(reply.id);
    if (!p) return;
    pending.delete(reply.id);
    if (reply.png) p.resolve(reply.png);
    else p.reject(new Error(reply.error ?? "the chart thread sent no image"));
    if (pending.size === 0) w.unref();
  });
  w.on("error", (e) => fail(e));
  w.on("exit", (code) => {
    if (worker === w) fail(new Error(`the chart thread exited (code ${code})`));
  });
  worker = w;
  return w;
}

/** The reliability diagram as PNG bytes (plots.ts's reliabilityDiagramPng), drawn on the chart thread. */
export function reliabilityDiagramPngOffThread(spec: ReliabilitySpec): Promise<Uint8Array> {
  const w = started();
  const id = nextId++;
  return new Promise<Uint8Array>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.ref();
    w.postMessage({ id, spec } satisfies Request);
  });
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  const { reliabilityDiagramPng } = await import("./plots.ts");
  port.on("message", (request: Request) => {
    reliabilityDiagramPng(request.spec).then(
      (png) => port.postMessage({ id: request.id, png } satisfies Reply),
      (e: unknown) => port.postMessage({ id: request.id, error: e instanceof Error ? e.message : String(e) }),
    );
  });
}
