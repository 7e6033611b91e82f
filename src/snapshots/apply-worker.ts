import { parentPort } from 'node:worker_threads';
import { rootCtx } from '../core/context.ts';
import { isBerthError, kindOf } from '../core/errors.ts';
import { applyLayer } from './apply.ts';
import type { FromWorker, ToWorker } from './apply-pool.ts';

/**
 * An applier worker: runs applyLayer for the jobs the pool sends it, fed
 * with the chunks the pool posts, acknowledging each chunk once the
 * applier has taken it so the pool can hold back the source.
 */
interface Job {
  queue: Uint8Array[];
  ended: boolean;
  wake?: () => void;
  abort: AbortController;
}

const port = parentPort!;
const jobs = new Map<number, Job>();
const post = (m: FromWorker) => port.postMessage(m);

/**
 * Queued chunks smaller than this are joined up to it: a download arrives in
 * chunks of tens of KiB, and each write to the decompressor is a round trip
 * to libuv's pool (and a JS callback); joined, the big layer of the bench's
 * image took a quarter less CPU to decompress.
 */
const JOIN = 1 << 20;

function take(queue: Uint8Array[]): Uint8Array | undefined {
  const first = queue.shift();
  if (!first || first.byteLength >= JOIN) return first;
  let total = first.byteLength;
  let k = 0;
  while (k < queue.length && total + queue[k].byteLength <= JOIN) total += queue[k++].byteLength;
  if (k === 0) return first;
  const joined = Buffer.allocUnsafeSlow(total);
  joined.set(first, 0);
  let off = first.byteLength;
  for (const c of queue.splice(0, k)) {
    joined.set(c, off);
    off += c.byteLength;
  }
  return joined;
}

async function* feed(id: number, job: Job): AsyncGenerator<Uint8Array> {
  for (;;) {
    const c = take(job.queue);
    if (c) {
      post({ t: 'ack', id, n: c.byteLength });
      yield c;
      continue;
    }
    if (job.ended) return;
    await new Promise<void>((resolve) => (job.wake = resolve));
    job.wake = undefined;
  }
}

port.on('message', (m: ToWorker) => {
  if (m.t === 'start') {
    const job: Job = { queue: [], ended: false, abort: new AbortController() };
    jobs.set(m.id, job);
    applyLayer(rootCtx({ signal: job.abort.signal }), m.dir, feed(m.id, job), { format: m.format, maxBytes: m.maxBytes })
      .then((result) => post({ t: 'done', id: m.id, result }))
      .catch((err: unknown) => {
        let code: string | undefined;
        for (let e = err, i = 0; e && i < 8 && code === undefined; e = (e as { cause?: unknown }).cause, i++) {
          const c = (e as { code?: unknown }).code;
          if (typeof c === 'string') code = c;
        }
        post({ t: 'error', id: m.id, kind: isBerthError(err) ? err.kind : kindOf(err), message: (err as Error)?.message ?? String(err), code });
      })
      .finally(() => jobs.delete(m.id));
    return;
  }
  const job = jobs.get(m.id);
  if (!job) return;
  if (m.t === 'data') job.queue.push(...m.chunks);
  else if (m.t === 'end') job.ended = true;
  else if (m.t === 'abort') job.abort.abort(new Error(m.reason));
  job.wake?.();
});
