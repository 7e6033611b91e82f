import { readFileSync } from 'node:fs';
import { open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type { Ctx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { berthError } from '../core/errors.ts';
import type { Snapshotter } from '../snapshots/types.ts';

/**
 * Pulls answer before their bytes are on disk; the write-behind makes them
 * durable afterwards, and makes sure no crash can leave a visible image whose
 * files were lost.
 *
 * A pull unpacks into the page cache, then, before it commits a snapshot or
 * blob, appends a *mark* naming them (with this boot's ID) to a small file
 * that it syncs: one small fdatasync instead of a sync of everything the pull
 * wrote. The commits and the image record follow at once. When the pull's
 * lease ends (`settle`), its marks are *done*: it will make nothing more
 * visible. A sync of the stores' file systems (`durable`) then runs behind
 * the answer and, once it returns, clears the marks that were done before it
 * began. Whatever builds on a marked snapshot (a container's rootfs, a build
 * step, a view) waits for that first (`holdingParents`), so only image
 * layers are ever in this state.
 *
 * At start (`recover`), marks of this boot are objects whose bytes are still
 * in the page cache (berthd stopped, the machine did not): a sync makes them
 * durable. Marks of another boot are objects the machine may have lost with
 * its page cache: the caller drops them, and the images naming them, before
 * anything else runs, then `forgetLost`; until then no sync clears them. A
 * crash therefore loses a recent pull, never leaves a wrong one.
 *
 * The order that makes this hold: every byte of a marked object is written
 * (not yet synced) before its mark is synced; the mark is synced before the
 * object is committed; a mark is cleared only by a sync that began after its
 * operation had made everything it makes visible.
 *
 *   const settle = await wb.mark(lctx, { snapshots: [chainId], blobs: [layerDigest] });
 *   // commit them, write the image record; when the lease ends:
 *   wb.settle(lease); // and a sync follows
 */
export interface WriteBehindObjects {
  snapshots: string[];
  blobs: Digest[];
}

interface Mark extends WriteBehindObjects {
  seq: number;
  boot: string;
  lease: string;
  /** The operation has made visible everything it will: a sync that begins now covers it. */
  done: boolean;
  /** The sync request a sync must cover to have begun after `done` (see `sync`). */
  doneRequest: number;
  whenDone: Promise<void>;
  markDone: () => void;
  /** Of another boot: its objects may be gone; only `forgetLost` clears it. */
  lost: boolean;
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
  /** The file may end in a partial line (a crash or failure in an append): the next write rewrites it whole. */
  #torn = false;
  #requested = 0;
  /** The sync in flight, and the last request it covers. */
  #running: { covers: number; promise: Promise<void> } | undefined;
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
   * Read the marks an earlier life left, and make sure the file and its
   * directory entry are on disk before any pull appends to it. Those of this
   * boot stay, done, for the next `sync`; those of another boot are returned
   * for the caller to drop, then `forgetLost`.
   */
  async recover(): Promise<WriteBehindRecovery> {
    const found: WriteBehindRecovery = { snapshots: [], blobs: [], marked: false };
    let text: string | undefined;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === undefined) {
      await this.#serial(() => this.#rewrite());
      return found;
    }
    const marks: Mark[] = [];
    let torn = false;
    for (const line of text.split('\n')) {
      const mark = parseMark(line, this.#boot);
      if (mark) marks.push(mark);
      else torn ||= line.trim() !== '';
    }
    for (const mark of marks) {
      found.marked = true;
      this.#seq = Math.max(this.#seq, mark.seq);
      this.#marks.set(mark.seq, mark);
      if (!mark.lost) continue;
      found.snapshots.push(...mark.snapshots);
      found.blobs.push(...mark.blobs);
    }
    this.#torn = torn;
    return found;
  }

  /** The caller dropped what the marks of another boot named: they go at the next rewrite. */
  async forgetLost(): Promise<void> {
    let any = false;
    for (const m of [...this.#marks.values()]) {
      if (!m.lost) continue;
      this.#marks.delete(m.seq);
      any = true;
    }
    if (any) await this.#serial(() => this.#rewrite());
  }

  /**
   * Record that `objects` are about to be committed before their bytes are
   * durable, by the operation holding `ctx.lease`; resolves once the mark is
   * on disk. A failure leaves no mark: the caller must then commit nothing.
   */
  async mark(ctx: Ctx, objects: WriteBehindObjects): Promise<void> {
    if (objects.snapshots.length === 0 && objects.blobs.length === 0) return;
    // The lease's end is what makes a mark done: without one it would never be, and its dependents would wait forever.
    if (!ctx.lease) throw berthError('Internal', 'write-behind: a mark outside an operation\'s lease');
    const mark = newMark(++this.#seq, this.#boot, ctx.lease, objects.snapshots, objects.blobs, false);
    this.#marks.set(mark.seq, mark);
    try {
      await this.#serial(async () => {
        if (this.#torn) return this.#rewrite();
        const fh = await open(this.#file, 'a', 0o600);
        try {
          // writeFile writes it all or fails; a short write here would be a mark that reads as torn.
          await fh.writeFile(lineOf(mark));
          await fh.datasync();
        } finally {
          await fh.close();
        }
      });
    } catch (err) {
      this.#marks.delete(mark.seq);
      this.#torn = true;
      throw err;
    }
  }

  /** The operation holding `lease` ended: its marks are done, and a sync is started for them. */
  settle(lease: string | undefined): void {
    if (!lease) return;
    let any = false;
    for (const m of this.#marks.values()) {
      if (m.lost || m.done || m.lease !== lease) continue;
      // A request of its own: a sync already running began before this and does not cover it.
      m.doneRequest = ++this.#requested;
      m.markDone();
      any = true;
    }
    if (any) this.flushSoon();
  }

  /** Whether snapshot `name` is marked: its files may not be on disk yet. */
  isPending(name: string): boolean {
    return this.#holding(name) !== undefined;
  }

  /**
   * Make everything written so far durable and clear the marks done before
   * the sync began. Concurrent callers share a sync that began after they
   * called. Errors are the sync's.
   */
  async sync(): Promise<void> {
    return this.#syncCovering(++this.#requested);
  }

  /** A sync that covers request `need`: the running one if it began after that request, else the next one. */
  async #syncCovering(need: number): Promise<void> {
    for (;;) {
      const running = this.#running;
      if (!running) {
        this.#running = this.#start();
        continue;
      }
      if (running.covers >= need) return running.promise;
      await running.promise.catch(() => {});
    }
  }

  /** Start a sync for the marks done so far, unless one is running; its error goes to `onFlushError`. */
  flushSoon(): void {
    if (this.#running || !this.#hasDone()) return;
    this.sync().catch((err) => this.#onFlushError(err));
  }

  /**
   * Resolve once snapshot `name` is durable: at once when it is not marked,
   * else after its operation ended and a sync covered it. Rejects with the
   * sync's error, with `signal`'s reason, or FailedPrecondition for a layer
   * an earlier boot may have lost and that could not be dropped.
   */
  async waitFor(name: string, signal?: AbortSignal): Promise<void> {
    for (let m = this.#holding(name); m; m = this.#holding(name)) {
      if (m.lost) throw berthError('FailedPrecondition', `layer snapshot ${name} may have lost its files in a reboot; remove the image and pull it again`);
      signal?.throwIfAborted();
      await abortable(m.done ? this.#syncCovering(m.doneRequest) : m.whenDone, signal);
    }
  }

  /** A clean stop: sync and clear the marks of every operation that ended, so a reboot right after drops nothing. */
  async flushAll(): Promise<void> {
    if (this.#hasDone()) await this.sync();
    await this.#io;
  }

  #holding(name: string): Mark | undefined {
    for (const m of this.#marks.values()) if (m.snapshots.includes(name)) return m;
    return undefined;
  }

  #hasDone(): boolean {
    for (const m of this.#marks.values()) if (m.done && !m.lost) return true;
    return false;
  }

  #start(): { covers: number; promise: Promise<void> } {
    const covers = this.#requested;
    const covered = [...this.#marks.values()].filter((m) => m.done && !m.lost);
    const promise = (async () => {
      // Never settle before the caller has stored this sync as the running one.
      await null;
      let ok = false;
      try {
        await this.#durable();
        for (const m of covered) this.#marks.delete(m.seq);
        if (covered.length > 0) await this.#serial(() => this.#rewrite());
        ok = true;
      } finally {
        this.#running = undefined;
        // Operations that ended while this sync ran get one of their own.
        if (ok) setImmediate(() => this.flushSoon());
      }
    })();
    promise.catch(() => {});
    return { covers, promise };
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    const run = this.#io.then(fn);
    this.#io = run.catch(() => {});
    return run;
  }

  /** Write the marks still kept, whole: a new file renamed over the old one, then its directory synced. */
  async #rewrite(): Promise<void> {
    const tmp = `${this.#file}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile([...this.#marks.values()].map(lineOf).join(''));
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
    this.#torn = false;
  }
}

function newMark(seq: number, boot: string, lease: string, snapshots: string[], blobs: Digest[], done: boolean): Mark {
  const { promise: whenDone, resolve } = Promise.withResolvers<void>();
  const mark: Mark = {
    seq, boot, lease, snapshots: [...snapshots], blobs: [...blobs], done: false, doneRequest: 0, whenDone, lost: false,
    markDone: () => {
      mark.done = true;
      resolve();
    },
  };
  if (done) mark.markDone();
  return mark;
}

function lineOf(m: Mark): string {
  return `${JSON.stringify({ seq: m.seq, boot: m.boot, snapshots: m.snapshots, blobs: m.blobs })}\n`;
}

/** One line of the marks file, or undefined for a torn or foreign line. Marks read back are done: their operation's life is over. */
function parseMark(line: string, boot: string): Mark | undefined {
  if (!line.trim()) return undefined;
  try {
    const m = JSON.parse(line) as Partial<Mark>;
    if (typeof m.seq !== 'number' || typeof m.boot !== 'string' || !Array.isArray(m.snapshots) || !Array.isArray(m.blobs)) return undefined;
    const strings = (a: unknown[]) => a.filter((x): x is string => typeof x === 'string');
    const mark = newMark(m.seq, m.boot, '', strings(m.snapshots), strings(m.blobs) as Digest[], true);
    mark.lost = m.boot !== boot;
    return mark;
  } catch {
    return undefined;
  }
}

function abortable(p: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return p;
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
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
      if (parent) await wb.waitFor(parent, ctx.signal);
      return sn.prepare(ctx, key, parent, opts);
    },
    async view(ctx: Ctx, key, parent, opts) {
      await wb.waitFor(parent, ctx.signal);
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
