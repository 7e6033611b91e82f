import type { Ctx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { isAlreadyExists, isNotFound } from '../core/errors.ts';
import type { ContentInfo, ContentProvider } from './types.ts';

/** How `FetchOnce.ensure` got the blob. */
export type FetchOutcome = 'present' | 'fetched' | 'shared';

/**
 * De-duplicates concurrent ingests of one digest inside a process: when
 * several pulls want the same blob, the first runs its fetch and the others
 * wait for it, then find the committed blob.
 *
 * If the first fetch fails or is canceled, a waiter does not inherit the
 * failure: it runs its own fetch (so one client's Ctrl-C does not fail
 * another client's pull). A waiter's own signal stops its wait.
 *
 * Example:
 *   const once = new FetchOnce(store);
 *   await once.ensure(ctx, desc.digest, async (ctx) => {
 *     const w = await store.writer(ctx, { ref: `layer-${desc.digest}`, expected: desc });
 *     ...; await w.commit(ctx);
 *   });
 *
 * `fetch` may throw AlreadyExists (the blob got there some other way); that
 * counts as success.
 *
 * Leases: a waiter never opens a writer, so a lease-aware wrapper cannot put
 * the blob under the waiter's lease. Pass `protect` (the daemon passes
 * "attach this digest to ctx.lease"): every caller runs it before anything
 * else, so the blob stays protected for each pull that wants it, even if the
 * pull that downloaded it fails and drops its own lease.
 */
export class FetchOnce {
  readonly #store: Pick<ContentProvider, 'info'>;
  readonly #inflight = new Map<Digest, Promise<void>>();
  readonly #protect?: (ctx: Ctx, digest: Digest) => Promise<void>;

  constructor(store: Pick<ContentProvider, 'info'>, opts: { protect?: (ctx: Ctx, digest: Digest) => Promise<void> } = {}) {
    this.#store = store;
    this.#protect = opts.protect;
  }

  /** Number of fetches in flight (for diagnostics and tests). */
  get inflight(): number {
    return this.#inflight.size;
  }

  async ensure(ctx: Ctx, digest: Digest, fetch: (ctx: Ctx) => Promise<void>): Promise<{ outcome: FetchOutcome; info: ContentInfo }> {
    let waited = false;
    await this.#protect?.(ctx, digest);
    for (;;) {
      ctx.signal.throwIfAborted();
      const present = await this.#present(ctx, digest);
      if (present) return { outcome: waited ? 'shared' : 'present', info: present };
      const running = this.#inflight.get(digest);
      if (running) {
        waited = true;
        await waitFor(ctx.signal, running.catch(() => undefined));
        continue;
      }
      const job = (async () => {
        try {
          await fetch(ctx);
        } catch (err) {
          if (!isAlreadyExists(err)) throw err;
        }
      })();
      this.#inflight.set(digest, job);
      try {
        await job;
      } finally {
        this.#inflight.delete(digest);
      }
      return { outcome: 'fetched', info: await this.#store.info(ctx, digest) };
    }
  }

  async #present(ctx: Ctx, digest: Digest): Promise<ContentInfo | undefined> {
    try {
      return await this.#store.info(ctx, digest);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}

/** Wait for `p`, or reject when `signal` aborts; the listener is removed either way. */
function waitFor<T>(signal: AbortSignal, p: Promise<T>): Promise<T> {
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
