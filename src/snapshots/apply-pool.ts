import { Worker } from 'node:worker_threads';
import type { Ctx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { berthError, ErrorKinds } from '../core/errors.ts';
import type { ErrorKind } from '../core/errors.ts';
import type { ApplyOptions, ApplyResult } from './apply.ts';

export type ToWorker =
  | { t: 'start'; id: number; dir: string; format: ApplyOptions['format']; maxBytes?: number }
  | { t: 'data'; id: number; chunk: Uint8Array }
  | { t: 'end'; id: number }
  | { t: 'abort'; id: number; reason: string };

export type FromWorker =
  | { t: 'ack'; id: number; n: number }
  | { t: 'done'; id: number; result: { diffId: Digest; size: number } }
  | { t: 'error'; id: number; kind: ErrorKind; message: string; code?: string };

interface Pending {
  slot: Slot;
  resolve: (r: ApplyResult) => void;
  reject: (err: unknown) => void;
  inflight: number;
  drained?: () => void;
}

interface Slot {
  worker: Worker;
  jobs: number;
}

/** Bytes posted to a worker and not yet taken by its applier, before the source is paused. */
const MAX_INFLIGHT = 4 << 20;

/**
 * Runs the layer applier (same contract as `applyLayer`) in worker
 * threads. The applier's file-system calls are synchronous; in a worker
 * they never stall the daemon's event loop (API requests, other pulls),
 * and several layers extracting at once use every core for decompression,
 * hashing and the kernel's own file-creation work.
 *
 * Jobs go to the least busy of at most `size` workers, started on first
 * use. The source is read on the calling thread and its chunks copied to
 * the worker, with at most MAX_INFLIGHT bytes outstanding per job.
 * Errors keep their kind across the thread boundary. `close()` stops the
 * workers.
 */
export class ApplierPool {
  readonly #size: number;
  readonly #slots: Slot[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;

  constructor(opts: { size: number }) {
    this.#size = Math.max(1, Math.floor(opts.size));
  }

  #slot(): Slot {
    let best = this.#slots.reduce<Slot | undefined>((b, s) => (!b || s.jobs < b.jobs ? s : b), undefined);
    if (!best || (best.jobs > 0 && this.#slots.length < this.#size)) {
      const worker = new Worker(new URL('./apply-worker.ts', import.meta.url));
      // Referenced only while it has jobs, so an idle pool never keeps the process alive.
      worker.unref();
      best = { worker, jobs: 0 };
      const slot = best;
      worker.on('message', (m: FromWorker) => this.#onMessage(m));
      worker.on('error', (err) => this.#workerGone(slot, err));
      worker.on('exit', (code) => this.#workerGone(slot, new Error(`applier worker exited with code ${code}`)));
      this.#slots.push(slot);
    }
    return best;
  }

  #workerGone(slot: Slot, err: unknown): void {
    const i = this.#slots.indexOf(slot);
    if (i < 0) return;
    this.#slots.splice(i, 1);
    // The worker's jobs cannot finish.
    for (const [id, p] of this.#pending) {
      if (p.slot === slot) {
        this.#pending.delete(id);
        p.reject(berthError('Internal', `layer applier worker died: ${(err as Error).message}`, err));
      }
    }
  }

  #onMessage(m: FromWorker): void {
    const p = this.#pending.get(m.id);
    if (!p) return;
    if (m.t === 'ack') {
      p.inflight -= m.n;
      if (p.inflight <= MAX_INFLIGHT / 2) p.drained?.();
      return;
    }
    this.#pending.delete(m.id);
    p.drained?.();
    if (m.t === 'done') {
      p.resolve(m.result);
    } else {
      const kind = (ErrorKinds as readonly string[]).includes(m.kind) ? m.kind : 'Unknown';
      const err = berthError(kind, m.message);
      if (m.code) (err as unknown as { code: string }).code = m.code;
      p.reject(err);
    }
  }

  /** Apply the layer in `source` to `dir` in a worker; see applyLayer. */
  async apply(ctx: Ctx, dir: string, source: AsyncIterable<Uint8Array>, opts: ApplyOptions): Promise<ApplyResult> {
    if (this.#closed) throw berthError('Unavailable', 'layer applier pool is closed');
    ctx.signal.throwIfAborted();
    const id = this.#nextId++;
    const slot = this.#slot();
    if (slot.jobs++ === 0) slot.worker.ref();
    const send = (m: ToWorker) => slot.worker.postMessage(m);
    let settled = false;
    const result = new Promise<ApplyResult>((resolve, reject) => {
      this.#pending.set(id, { slot, resolve, reject, inflight: 0 });
    }).finally(() => {
      settled = true;
      if (--slot.jobs === 0) slot.worker.unref();
    });
    result.catch(() => {});
    const onAbort = () => send({ t: 'abort', id, reason: String((ctx.signal.reason as Error)?.message ?? 'aborted') });
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      send({ t: 'start', id, dir, format: opts.format, maxBytes: opts.maxBytes });
      for await (const chunk of source) {
        if (settled) break;
        const p = this.#pending.get(id);
        if (!p) break;
        p.inflight += chunk.byteLength;
        // A copy, transferred: cloning a view would copy its whole backing buffer, and the caller may still use the chunk.
        const copy = new Uint8Array(chunk);
        slot.worker.postMessage({ t: 'data', id, chunk: copy } satisfies ToWorker, [copy.buffer]);
        if (p.inflight > MAX_INFLIGHT) await new Promise<void>((r) => (p.drained = r));
      }
      if (!settled) send({ t: 'end', id });
    } catch (err) {
      if (!settled) send({ t: 'abort', id, reason: (err as Error)?.message ?? String(err) });
      await result.catch(() => {});
      throw err;
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
    }
    try {
      return await result;
    } catch (err) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      throw err;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#slots.splice(0).map((s) => s.worker.terminate()));
    for (const p of this.#pending.values()) p.reject(berthError('Unavailable', 'layer applier pool closed'));
    this.#pending.clear();
  }
}
