import { Readable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import { workerThreadsModule } from '../core/builtins.ts';
import { chunksOf } from '../core/chunks.ts';
import type { Ctx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { berthError, ErrorKinds } from '../core/errors.ts';
import { mallocTrim } from '../core/sys.ts';
import type { ErrorKind } from '../core/errors.ts';
import type { ApplyOptions, ApplyResult } from './apply.ts';

export type ToWorker =
  | { t: 'start'; id: number; dir: string; format: ApplyOptions['format']; maxBytes?: number }
  | { t: 'data'; id: number; chunks: Uint8Array[] }
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
  /** Ends an idle worker (see `idleMs`). */
  idleTimer?: NodeJS.Timeout;
}

/** Bytes posted to a worker and not yet taken by its applier, before the source is paused. */
const MAX_INFLIGHT = 4 << 20;
/** The source's chunks (a download's are tens of KiB) travel in batches of this size: one message, one ack. */
const BATCH = 1 << 20;

/** Can `chunk` move to a worker whole: a transferable buffer of which it is all? */
function ownsBuffer(chunk: Uint8Array): chunk is Uint8Array<ArrayBuffer> {
  const buf = chunk.buffer;
  return buf instanceof ArrayBuffer && chunk.byteOffset === 0 && chunk.byteLength === buf.byteLength && chunk.byteLength > 0 && !workerThreadsModule().isMarkedAsUntransferable(buf);
}

/**
 * Runs the layer applier (same contract as `applyLayer`) in worker
 * threads. The applier's file-system calls are synchronous; in a worker
 * they never stall the daemon's event loop (API requests, other pulls),
 * and several layers extracting at once use every core for decompression,
 * hashing and the kernel's own file-creation work.
 *
 * Jobs go to the least busy of at most `size` workers, started on first
 * use; a worker without jobs for `idleMs` ends, so an idle daemon keeps no
 * isolate per core. The source is read on the calling thread and its
 * chunks copied to the worker in batches of about 1 MiB, with at most
 * MAX_INFLIGHT bytes outstanding per job. Errors keep their kind across
 * the thread boundary. `close()` stops the workers.
 */
export class ApplierPool {
  readonly #size: number;
  readonly #slots: Slot[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;

  readonly #idleMs: number;

  constructor(opts: { size: number; idleMs?: number }) {
    this.#size = Math.max(1, Math.floor(opts.size));
    this.#idleMs = opts.idleMs ?? 2000;
  }

  #slot(): Slot {
    let best = this.#slots.reduce<Slot | undefined>((b, s) => (!b || s.jobs < b.jobs ? s : b), undefined);
    if (!best || (best.jobs > 0 && this.#slots.length < this.#size)) {
      const worker = new (workerThreadsModule().Worker)(new URL(`./apply-worker.${import.meta.url.endsWith('.js') ? 'js' : 'ts'}`, import.meta.url));
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

  /** Workers alive now. */
  get workers(): number {
    return this.#slots.length;
  }

  /** End an idle worker; it takes no jobs from now on. */
  #retire(slot: Slot): void {
    const i = this.#slots.indexOf(slot);
    if (i < 0) return;
    this.#slots.splice(i, 1);
    // The worker's malloc arena keeps the pages its unpacking freed until trimmed.
    void slot.worker.terminate().then(mallocTrim, () => {});
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

  /**
   * Apply the layer in `source` to `dir` in a worker; see applyLayer. With
   * `handOver`, the caller gives up the chunks it passes (it neither reads
   * nor reuses them afterwards): those owning their whole buffer move to the
   * worker without a copy, and are empty on the caller's side from then on.
   */
  async apply(ctx: Ctx, dir: string, source: AsyncIterable<Uint8Array>, opts: ApplyOptions & { handOver?: boolean }): Promise<ApplyResult> {
    if (this.#closed) throw berthError('Unavailable', 'layer applier pool is closed');
    ctx.signal.throwIfAborted();
    const id = this.#nextId++;
    const slot = this.#slot();
    clearTimeout(slot.idleTimer);
    if (slot.jobs++ === 0) slot.worker.ref();
    const send = (m: ToWorker) => slot.worker.postMessage(m);
    let settled = false;
    const result = new Promise<ApplyResult>((resolve, reject) => {
      this.#pending.set(id, { slot, resolve, reject, inflight: 0 });
    }).finally(() => {
      settled = true;
      if (--slot.jobs > 0) return;
      slot.worker.unref();
      slot.idleTimer = setTimeout(() => {
        if (slot.jobs === 0) this.#retire(slot);
      }, this.#idleMs);
      slot.idleTimer.unref();
    });
    result.catch(() => {});
    const onAbort = () => send({ t: 'abort', id, reason: String((ctx.signal.reason as Error)?.message ?? 'aborted') });
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    let flushSoon: NodeJS.Immediate | undefined;
    try {
      send({ t: 'start', id, dir, format: opts.format, maxBytes: opts.maxBytes });
      // A chunk that owns its whole buffer, from a caller that hands its chunks over, moves to the
      // worker as it is (a download's chunks do). Others are copied into a batch that is then moved:
      // cloning a view would copy its whole backing buffer, and the caller may still use the chunk.
      // Batches are not zero-filled (every byte sent is copied in first), and a partial one travels
      // as a view of its buffer: a zeroed buffer per MiB cost page faults, and a download copied
      // twice more on the daemon's thread. What is ready goes when it reaches a batch's size, or
      // once the source has nothing more at hand (the rest may be long in coming: a held download).
      let batch: Buffer<ArrayBuffer> | undefined;
      let used = 0;
      let ready: Uint8Array<ArrayBuffer>[] = [];
      let readyBytes = 0;
      // A buffer may be moved once per message (a source yielding one chunk twice breaks its word).
      const moved = new Set<ArrayBufferLike>();
      const closeBatch = () => {
        if (batch && used > 0) {
          ready.push(new Uint8Array(batch.buffer, batch.byteOffset, used));
          readyBytes += used;
        }
        batch = undefined;
        used = 0;
      };
      const postBatch = () => {
        clearImmediate(flushSoon);
        flushSoon = undefined;
        closeBatch();
        const p = this.#pending.get(id);
        if (ready.length === 0 || settled || !p) return;
        const chunks = ready;
        p.inflight += readyBytes;
        ready = [];
        readyBytes = 0;
        moved.clear();
        slot.worker.postMessage({ t: 'data', id, chunks } satisfies ToWorker, chunks.map((c) => c.buffer));
      };
      // The worker may fail (a bomb past the bound) while the source waits for bytes that may never
      // come: stop reading then, without waiting for the source, so the caller hears of it at once.
      const it = source instanceof Readable ? chunksOf(source) : source[Symbol.asyncIterator]();
      const stopped = result.then(() => undefined, () => undefined);
      for (;;) {
        const next = await Promise.race([it.next(), stopped]);
        if (!next || next.done) {
          if (!next) void it.return?.()?.catch(() => {});
          break;
        }
        const chunk = next.value;
        if (settled) break;
        const p = this.#pending.get(id);
        if (!p) break;
        if (opts.handOver && ownsBuffer(chunk) && !moved.has(chunk.buffer)) {
          moved.add(chunk.buffer);
          closeBatch();
          ready.push(chunk);
          readyBytes += chunk.byteLength;
        } else {
          for (let off = 0; off < chunk.byteLength; ) {
            batch ??= Buffer.allocUnsafeSlow(Math.max(BATCH, chunk.byteLength - off));
            const n = Math.min(batch.byteLength - used, chunk.byteLength - off);
            batch.set(n === chunk.byteLength ? chunk : chunk.subarray(off, off + n), used);
            used += n;
            off += n;
            if (used === batch.byteLength) closeBatch();
          }
        }
        if (readyBytes + used >= BATCH) postBatch();
        else if (readyBytes + used > 0) flushSoon ??= setImmediate(postBatch);
        if (p.inflight > MAX_INFLIGHT) await new Promise<void>((r) => (p.drained = r));
      }
      postBatch();
      if (!settled) send({ t: 'end', id });
    } catch (err) {
      if (!settled) send({ t: 'abort', id, reason: (err as Error)?.message ?? String(err) });
      await result.catch(() => {});
      throw err;
    } finally {
      clearImmediate(flushSoon);
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
