import { randomBytes } from 'node:crypto';
import { berthError } from '../../../core/errors.ts';

/**
 * Single-use tokens for the streaming server's URLs, as kubelet's request
 * cache hands them out (containerd uses it): Exec, Attach and PortForward
 * store their request and answer a URL holding an 8-character random
 * token; the first connection to it takes the request, and a token used
 * twice, never issued or older than `ttlMs` (a minute) finds nothing.
 * At most `maxInFlight` (1000) unused tokens exist: one more is
 * ResourceExhausted ("maximum number of in-flight requests exceeded").
 *
 * Example:
 *   const token = cache.insert({ kind: 'exec', ... });
 *   cache.consume(token); // the request, once
 */
export class RequestCache<T> {
  readonly #entries = new Map<string, { req: T; expires: number }>();
  readonly #ttl: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(opts: { ttlMs?: number; maxInFlight?: number; now?: () => number } = {}) {
    this.#ttl = opts.ttlMs ?? 60_000;
    this.#max = opts.maxInFlight ?? 1000;
    this.#now = opts.now ?? Date.now;
  }

  insert(req: T): string {
    this.#gc();
    if (this.#entries.size >= this.#max) throw berthError('ResourceExhausted', 'maximum number of in-flight requests exceeded');
    for (let tries = 0; tries < 10; tries++) {
      // 6 random bytes are 8 base64url characters: kubelet's token length.
      const token = randomBytes(6).toString('base64url');
      if (this.#entries.has(token)) continue;
      this.#entries.set(token, { req, expires: this.#now() + this.#ttl });
      return token;
    }
    throw berthError('Internal', 'failed to generate a unique streaming token');
  }

  /** The request of `token`, removing it; undefined for a token unknown, used or expired. */
  consume(token: string): T | undefined {
    const e = this.#entries.get(token);
    if (!e) return undefined;
    this.#entries.delete(token);
    return this.#now() > e.expires ? undefined : e.req;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Entries are kept in insertion order, which is expiry order: drop from the front. */
  #gc(): void {
    const now = this.#now();
    for (const [token, e] of this.#entries) {
      if (now <= e.expires) break;
      this.#entries.delete(token);
    }
  }
}
