// A web hook receiver for throughput benchmarks, on a thread of its own: it answers
// Azure's validation challenge and 200s every other request at once, counting them. On
// the sender's event loop a receiver would take part of the time being measured; a real
// receiver is on another machine, so here it gets its own thread (and, on two cores or
// more, its own core). The count and the last arrival are shared memory, read for free.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/** Shared between the threads: [0] requests counted; as Float64 at byte 8: the last one's Date.now(). */
interface Shared {
  counts: Int32Array;
  last: Float64Array;
}

function shared(buffer: SharedArrayBuffer): Shared {
  return { counts: new Int32Array(buffer, 0, 1), last: new Float64Array(buffer, 8, 1) };
}

export interface CountingReceiver {
  url: string;
  /** Requests answered with 200 (challenges not counted). */
  received(): number;
  /** Date.now() when the last counted request arrived in full. */
  lastAt(): number;
  close(): Promise<void>;
}

/** Starts the receiver's thread; resolves once it listens on a loopback port. */
export async function startCountingReceiver(): Promise<CountingReceiver> {
  const buffer = new SharedArrayBuffer(16);
  const { counts, last } = shared(buffer);
  const worker = new Worker(new URL(import.meta.url), { workerData: buffer });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received: () => Atomics.load(counts, 0),
    lastAt: () => last[0]!,
    close: async () => void (await worker.terminate()),
  };
}

if (!isMainThread && workerData instanceof SharedArrayBuffer) {
  const { counts, last } = shared(workerData);
  const server = createServer((req, res) => {
    const token = new URL(req.url ?? '/', 'http://x').searchParams.get('validationToken');
    req.resume();
    req.on('end', () => {
      if (token) return void res.writeHead(200).end(token);
      last[0] = Date.now();
      Atomics.add(counts, 0, 1);
      res.writeHead(200).end();
    });
  });
  server.keepAliveTimeout = 1000;
  server.listen(0, '127.0.0.1', () => parentPort!.postMessage((server.address() as AddressInfo).port));
}
