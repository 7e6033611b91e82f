import type { Stats } from 'node:fs';

/**
 * The content hashes of files a build read in place (a context directory
 * on berthd's host), kept between builds so an unchanged file is not read
 * again: path -> (device, inode, size, mtime, ctime) -> sha256 of its
 * bytes. The step's cache key stays content based; only the reading is
 * saved.
 *
 * What it relies on is the file's stat: any write to a file's data, any
 * utimes (even one that puts the old mtime back), chmod, chown or rename
 * sets its ctime to the current time, which no process can choose, and a
 * file replaced by another has another inode or a newer ctime. The kernel
 * stamps those times from a clock that ticks in steps of a few
 * milliseconds, so a file changed twice within one tick, after the first
 * change was hashed, would keep its stat: a hash is kept only for a file
 * whose mtime and ctime are at least `RACY_MS` older than the moment its
 * bytes were read (git's "racily clean" rule). A just-edited file is read
 * again on the next build, and then remembered.
 *
 * Bounded to `maxEntries` (least recently used go first), so a daemon that
 * builds many large contexts keeps a few MiB of it at most.
 *
 *   const cache = new FileHashCache(50_000);
 *   const hex = cache.get(abs, st) ?? hashFile(abs);  // then cache.put(abs, st, hex, readStartedMs)
 */
export class FileHashCache {
  readonly #max: number;
  readonly #entries = new Map<string, { dev: number; ino: number; size: number; mtimeMs: number; ctimeMs: number; hash: string }>();
  hits = 0;
  misses = 0;

  constructor(maxEntries: number) {
    this.#max = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The hash of `path`'s bytes when `st` (its lstat now) is what it was when they were hashed. */
  get(path: string, st: Stats): string | undefined {
    const e = this.#entries.get(path);
    if (!e || e.dev !== st.dev || e.ino !== st.ino || e.size !== st.size || e.mtimeMs !== st.mtimeMs || e.ctimeMs !== st.ctimeMs) {
      this.misses++;
      return undefined;
    }
    // Most recently used last, so eviction takes the oldest.
    this.#entries.delete(path);
    this.#entries.set(path, e);
    this.hits++;
    return e.hash;
  }

  /** Remember `hash` for `path` as `st` stood before its bytes were read at `readAtMs` (Date.now()). */
  put(path: string, st: Stats, hash: string, readAtMs: number): void {
    if (Math.max(st.mtimeMs, st.ctimeMs) > readAtMs - RACY_MS) {
      this.#entries.delete(path);
      return;
    }
    this.#entries.delete(path);
    this.#entries.set(path, { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, hash });
    while (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value!);
  }

  clear(): void {
    this.#entries.clear();
  }
}

/** How much older than the read a file's times must be for its hash to be kept: well over a clock tick. */
export const RACY_MS = 1000;
