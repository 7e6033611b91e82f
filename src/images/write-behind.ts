import { readFileSync } from 'node:fs';
import { open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type { Ctx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import type { Snapshotter } from '../snapshots/types.ts';

/**
 * Pulls answer before their bytes are on disk; the write-behind makes them
 * durable afterwards, and makes sure no crash can leave a visible image whose
 * files were lost.
 *
 * A pull unpacks into the page cache, then, before it commits a snapshot or
 * blob, appends a *mark* naming them (with this boot's ID) to a small file
 * that it syncs: one small fdatasync instead of a sync of everything the pull
 * wrote. The commits and the image record follow at once and the pull
 * answers. A sync of the stores' file systems (`durable`) then runs behind
 * the answer and, once it returns, the marks written before it began are
 * cleared. Whatever builds on a marked snapshot (a container's rootfs, a
 * build step, a view) waits for that sync first (`holdingParents`), so only
 * image layers are ever in this state.
 *
 * At start (`recover`), marks of this boot are objects whose bytes are still
 * in the page cache (berthd stopped, the machine did not): a sync makes them
 * durable. Marks of another boot are objects the machine may have lost with
 * its page cache: the caller drops them, and the images naming them, before
 * anything else runs. A crash therefore loses a recent pull, never leaves a
 * wrong one.
 *
 * The order that makes this hold: every byte of a marked object is written
 * (not yet synced) before its mark is synced, and the mark is synced before
 * the object is committed; a mark is cleared only by a sync that began after
 * it was written.
 *
 *   await wb.mark({ snapshots: [chainId], blobs: [layerDigest] });
 *   // commit them, write the image record, answer
 *   wb.flushSoon();
 */
export interface WriteBehindObjects {
  snapshots: string[];
  blobs: Digest[];
}

interface Mark extends WriteBehindObjects {
  seq: number;
  boot: string;
}

/** What `recover` found: objects of an earlier boot to drop, and whether any marks were there at all. */
export interface WriteBehindRecovery extends WriteBehindObjects {
  marked: boolean;
}

/** The kernel's ID of this boot: it changes at every boot, so a mark of another one may name lost bytes. */
export function currentBootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}

export class WriteBehind {
  readonly #file: string;
  readonly #durable: () => Promise<void>;
  readonly #boot: string;
  #seq = 0;
  /** Marks no sync has covered yet, by sequence. */
  readonly #marks = new Map<number, Mark>();
  /** File operations, one at a time in call order: a rewrite never drops an append in flight. */
  #io: Promise<void> = Promise.resolve();
  #flushing: Promise<void> | undefined;
  #onFlushError: (err: unknown) => void = () => {};

  /**
   * `file` holds the marks (on the root's file system); `durable` syncs every
   * file system the marked objects live on. `boot` is for tests, which cannot
   * reboot the machine to see a mark of another boot.
   */
  constructor(file: string, durable: () => Promise<void>, boot: string = currentBootId()) {
    this.#file = file;
    this.#durable = durable;
    this.#boot = boot;
  }

  /** Called with the error of a sync nobody waits for (logged by the daemon); the marks stay for the next sync. */
  onFlushError(fn: (err: unknown) => void): void {
    this.#onFlushError = fn;
  }

  /**
   * Read the marks an earlier life left. Those of this boot stay marked for
   * the next `sync`; those of another boot are returned for the caller to
   * drop, and are cleared by the same `sync` (call it once they are gone).
   */
  async recover(): Promise<WriteBehindRecovery> {
    const lost: WriteBehindRecovery = { snapshots: [], blobs: [], marked: false };
    let text = '';
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    let torn = false;
    for (const line of text.split('\n')) {
      const mark = parseMark(line);
      if (!mark) {
        torn ||= line.trim() !== '';
        continue;
      }
      lost.marked = true;
      this.#seq = Math.max(this.#seq, mark.seq);
      this.#marks.set(mark.seq, mark);
      if (mark.boot === this.#boot) continue;
      lost.snapshots.push(...mark.snapshots);
      lost.blobs.push(...mark.blobs);
    }
    // A crash in the middle of an append leaves a line with no end, which the next append would join.
    if (torn) await this.#serial(() => this.#rewrite());
    return lost;
  }

  /** Record that `objects` are about to be committed before their bytes are durable; resolves once the mark is on disk. */
  async mark(objects: WriteBehindObjects): Promise<void> {
    if (objects.snapshots.length === 0 && objects.blobs.length === 0) return;
    const mark: Mark = { seq: ++this.#seq, boot: this.#boot, snapshots: [...objects.snapshots], blobs: [...objects.blobs] };
    this.#marks.set(mark.seq, mark);
    await this.#serial(async () => {
      // A sync that began after the mark may have cleared it already: nothing to write then.
      if (!this.#marks.has(mark.seq)) return;
      const fh = await open(this.#file, 'a', 0o600);
      try {
        await fh.write(`${JSON.stringify(mark)}\n`);
        await fh.datasync();
      } finally {
        await fh.close();
      }
    });
  }

  /** Whether snapshot `name` is marked: its files may not be on disk yet. */
  isPending(name: string): boolean {
    for (const m of this.#marks.values()) if (m.snapshots.includes(name)) return true;
    return false;
  }

  /** How many marks wait for a sync (tests, logs). */
  get pendingCount(): number {
    return this.#marks.size;
  }

  /** Make everything written so far durable, then clear the marks it covers. Errors are the sync's. */
  async sync(): Promise<void> {
    const upTo = this.#seq;
    await this.#durable();
    let cleared = false;
    for (const seq of [...this.#marks.keys()]) {
      if (seq > upTo) continue;
      this.#marks.delete(seq);
      cleared = true;
    }
    if (cleared) await this.#serial(() => this.#rewrite());
  }

  /** Start a sync for the marks so far, unless one is running; its error goes to `onFlushError`. */
  flushSoon(): void {
    if (this.#flushing || this.#marks.size === 0) return;
    this.#flushing = this.sync()
      .catch((err) => this.#onFlushError(err))
      .finally(() => {
        this.#flushing = undefined;
      });
  }

  /** Resolve once snapshot `name` is durable (at once when it is not marked). Rejects with the sync's error. */
  async waitFor(name: string): Promise<void> {
    while (this.isPending(name)) {
      if (this.#flushing) await this.#flushing;
      if (this.isPending(name)) await this.sync();
    }
  }

  /** Sync and clear every mark so far (a clean stop): the next start, after a reboot too, finds none. */
  async flushAll(): Promise<void> {
    if (this.#flushing) await this.#flushing;
    if (this.#marks.size > 0) await this.sync();
    await this.#io;
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    const run = this.#io.then(fn);
    this.#io = run.catch(() => {});
    return run;
  }

  /** Write the marks still pending; an empty set truncates the file in place. */
  async #rewrite(): Promise<void> {
    if (this.#marks.size === 0) {
      const fh = await open(this.#file, 'a', 0o600);
      try {
        await fh.truncate(0);
        await fh.datasync();
      } finally {
        await fh.close();
      }
      return;
    }
    // Marks still pending must survive a crash in the middle: a new file, renamed over the old one.
    const tmp = `${this.#file}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.write([...this.#marks.values()].map((m) => `${JSON.stringify(m)}\n`).join(''));
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.#file);
    const dir = await open(path.dirname(this.#file), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

/** One line of the marks file, or undefined for a torn or foreign line (a crash in the middle of an append). */
function parseMark(line: string): Mark | undefined {
  if (!line.trim()) return undefined;
  try {
    const m = JSON.parse(line) as Partial<Mark>;
    if (typeof m.seq !== 'number' || typeof m.boot !== 'string' || !Array.isArray(m.snapshots) || !Array.isArray(m.blobs)) return undefined;
    const strings = (a: unknown[]) => a.filter((x): x is string => typeof x === 'string');
    return { seq: m.seq, boot: m.boot, snapshots: strings(m.snapshots), blobs: strings(m.blobs) as Digest[] };
  } catch {
    return undefined;
  }
}

/**
 * The snapshotter as everything but a pull sees it: preparing or viewing a
 * snapshot on a marked parent first waits for the write-behind's sync, so no
 * container, build or view ever builds on layers a crash could lose.
 */
export function holdingParents(sn: Snapshotter, wb: WriteBehind): Snapshotter {
  return {
    name: sn.name,
    capabilities: sn.capabilities,
    stat: (ctx, key) => sn.stat(ctx, key),
    async prepare(ctx: Ctx, key, parent, opts) {
      if (parent) await wb.waitFor(parent);
      return sn.prepare(ctx, key, parent, opts);
    },
    async view(ctx: Ctx, key, parent, opts) {
      await wb.waitFor(parent);
      return sn.view(ctx, key, parent, opts);
    },
    mounts: (ctx, key) => sn.mounts(ctx, key),
    commit: (ctx, name, key, opts) => sn.commit(ctx, name, key, opts),
    remove: (ctx, key) => sn.remove(ctx, key),
    walk: (ctx, fn) => sn.walk(ctx, fn),
    usage: (ctx, key) => sn.usage(ctx, key),
    close: () => sn.close(),
  };
}
