import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { Ctx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { algorithmOf } from '../core/digest.ts';
import { berthError, hasErrno, wrap } from '../core/errors.ts';
import type { ContentInfo, ContentWriter, LocalBlobs } from './types.ts';

/** Reads and writes move in 1 MiB pieces: few syscalls, bounded memory. */
export const IO_CHUNK = 1 << 20;

/** ENOSPC/EDQUOT become ResourceExhausted with a message that says what to do. */
export function mapWriteError(err: unknown, what: string): Error {
  if (hasErrno(err, 'ENOSPC') || hasErrno(err, 'EDQUOT')) {
    return berthError('ResourceExhausted', `${what}: no space left on device; free disk space (e.g. prune unused images) and retry`, err);
  }
  return wrap(err, what);
}

interface OpenOpts {
  store: LocalBlobs;
  ref: string;
  dir: string;
  expected?: { digest: Digest; size?: number };
  release: () => void;
}

/**
 * One in-progress write (see LocalContentStore for the layout). Bytes are
 * hashed as they arrive and gathered into a 1 MiB buffer written with one
 * positional write; nothing is fsynced until commit, which fsyncs once and
 * renames the data into blobs/ (containerd plugins/content/local/writer.go),
 * unless the caller takes care of that itself (`synced`).
 */
export class LocalWriter implements ContentWriter {
  readonly ref: string;
  readonly #store: LocalBlobs;
  readonly #dir: string;
  readonly #expected?: { digest: Digest; size?: number };
  readonly #release: () => void;
  readonly #ctx: Ctx;
  #fh: fsp.FileHandle | undefined;
  #hash: Hash;
  #algorithm: 'sha256' | 'sha512';
  /** Bytes accepted and hashed. */
  #offset = 0;
  /** Bytes on disk; the rest (#offset - #disk) are buffered or being written. */
  #disk = 0;
  /** Two buffers: one fills (and is hashed) while the other is written, so hashing overlaps I/O. */
  readonly #bufs = [Buffer.allocUnsafe(IO_CHUNK), Buffer.allocUnsafe(IO_CHUNK)];
  #cur = 0;
  #used = 0;
  /** The one write in flight, if any; its failure surfaces at the next #drain. */
  #inflight: Promise<void> | undefined;
  #done = false;
  /** `#offset` at the last `flush()`: what a caller's sync since then covers. */
  #flushedAt = -1;
  /** Why the writer failed, reported to every later call. */
  #error: Error | undefined;

  private constructor(ctx: Ctx, o: OpenOpts, fh: fsp.FileHandle, algorithm: 'sha256' | 'sha512') {
    this.#ctx = ctx;
    this.ref = o.ref;
    this.#store = o.store;
    this.#dir = o.dir;
    this.#expected = o.expected;
    this.#release = o.release;
    this.#fh = fh;
    this.#algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }

  /** Open (or resume) the ingest in `o.dir`; the caller holds the ref's lock. */
  static async open(ctx: Ctx, o: OpenOpts): Promise<LocalWriter> {
    const { dir, ref, expected } = o;
    const file = (f: string) => path.join(dir, f);
    const fresh = !(await exists(file('ref')));
    try {
      await fsp.mkdir(dir, { recursive: true });
      const prevExpected = await readOptional(file('expected'));
      const prevTotal = await readOptional(file('total'));
      // A partial write of other content (or of a known size it overshot) is useless: start over.
      const stale =
        (expected && prevExpected !== undefined && prevExpected !== expected.digest) ||
        (expected?.size !== undefined && prevTotal !== undefined && Number(prevTotal) !== expected.size);
      if (stale) await fsp.rm(file('data'), { force: true });
      await fsp.writeFile(file('ref'), ref);
      if ((await readOptional(file('startedat'))) === undefined || stale) await fsp.writeFile(file('startedat'), String(Date.now()));
      if (expected) await fsp.writeFile(file('expected'), expected.digest);
      if (expected?.size !== undefined) await fsp.writeFile(file('total'), String(expected.size));
    } catch (err) {
      // A full disk must not leave a half-made ingest directory behind.
      if (fresh) await fsp.rm(dir, { recursive: true, force: true });
      throw mapWriteError(err, `content ingest "${ref}"`);
    }
    const fh = await fsp.open(file('data'), fsc.O_RDWR | fsc.O_CREAT, 0o644);
    const w = new LocalWriter(ctx, o, fh, expected ? algorithmOf(expected.digest) : 'sha256');
    try {
      await w.#rehash();
    } catch (err) {
      await fh.close();
      throw err;
    }
    return w;
  }

  get offset(): number {
    return this.#offset;
  }

  /** Resume: hash what an earlier writer left, and continue after it. */
  async #rehash(): Promise<void> {
    const fh = this.#fh!;
    let size = (await fh.stat()).size;
    const total = this.#expected?.size;
    if (total !== undefined && size > total) {
      await fh.truncate(0);
      size = 0;
    }
    let pos = 0;
    while (pos < size) {
      this.#ctx.signal.throwIfAborted();
      const { bytesRead } = await fh.read(this.#bufs[0], 0, Math.min(IO_CHUNK, size - pos), pos);
      if (bytesRead === 0) break;
      this.#hash.update(this.#bufs[0].subarray(0, bytesRead));
      pos += bytesRead;
    }
    if (pos < size) await fh.truncate(pos);
    this.#offset = this.#disk = pos;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.#check();
    this.#ctx.signal.throwIfAborted();
    this.#hash.update(chunk);
    this.#offset += chunk.byteLength;
    let pos = 0;
    while (pos < chunk.byteLength) {
      if (this.#used === 0 && chunk.byteLength - pos >= IO_CHUNK) {
        // Large chunks go straight to disk: no copy (but the caller may reuse it, so wait).
        await this.#drain();
        await this.#writeAll(chunk.subarray(pos));
        return;
      }
      const n = Math.min(IO_CHUNK - this.#used, chunk.byteLength - pos);
      this.#bufs[this.#cur].set(chunk.subarray(pos, pos + n), this.#used);
      this.#used += n;
      pos += n;
      if (this.#used === IO_CHUNK) await this.#flush();
    }
  }

  digest(): Digest {
    return `${this.#algorithm}:${this.#hash.copy().digest('hex')}`;
  }

  async flush(): Promise<void> {
    this.#check();
    const at = this.#offset;
    await this.#flushAll();
    this.#flushedAt = at;
  }

  stream(): Writable {
    return new Writable({
      highWaterMark: IO_CHUNK,
      write: (chunk: Buffer, _enc, cb) => {
        this.write(chunk).then(() => cb(), cb);
      },
      final: (cb) => {
        this.#flushAll().then(() => cb(), cb);
      },
    });
  }

  /** Start writing the filled buffer, after the previous write finished. */
  async #flush(): Promise<void> {
    if (this.#used === 0) return;
    await this.#drain();
    const data = this.#bufs[this.#cur].subarray(0, this.#used);
    this.#cur ^= 1;
    this.#used = 0;
    const p = this.#writeAll(data);
    p.catch(() => undefined);
    this.#inflight = p;
  }

  async #drain(): Promise<void> {
    const p = this.#inflight;
    this.#inflight = undefined;
    if (p) await p;
  }

  /** Everything accepted is on disk (not yet fsynced). */
  async #flushAll(): Promise<void> {
    await this.#flush();
    await this.#drain();
  }

  async #writeAll(data: Uint8Array): Promise<void> {
    let pos = 0;
    try {
      while (pos < data.byteLength) {
        const { bytesWritten } = await this.#fh!.write(data, pos, data.byteLength - pos, this.#disk);
        pos += bytesWritten;
        this.#disk += bytesWritten;
      }
    } catch (err) {
      await this.#fail(err);
    }
  }

  /**
   * A write failed. A full disk discards the partial data, so nothing
   * half-written stays behind; other errors keep what reached the disk for a
   * resume. Either way the writer is finished.
   */
  async #fail(err: unknown): Promise<never> {
    const mapped = mapWriteError(err, `content ingest "${this.ref}" (${this.#offset} bytes received)`);
    this.#error ??= mapped;
    if ((mapped as { kind?: string }).kind === 'ResourceExhausted') await this.#discard();
    else await this.#finish();
    throw mapped;
  }

  async commit(ctx: Ctx, opts: { size?: number; digest?: Digest; labels?: Record<string, string>; synced?: boolean } = {}): Promise<ContentInfo> {
    this.#check();
    // Bytes still buffered were written after the caller's sync: its promise would not hold for them.
    const synced = opts.synced === true && this.#flushedAt === this.#offset;
    await this.#flushAll();
    const size = opts.size ?? this.#expected?.size;
    const want = opts.digest ?? this.#expected?.digest;
    const what = `content ingest "${this.ref}"`;
    if (size !== undefined && size !== this.#offset) {
      await this.#discard();
      throw berthError('FailedPrecondition', `${what}: size mismatch: received ${this.#offset} bytes, expected ${size}`);
    }
    let actual: Digest;
    if (want && algorithmOf(want) !== this.#algorithm) {
      actual = await this.#hashFile(algorithmOf(want));
    } else {
      actual = `${this.#algorithm}:${this.#hash.digest('hex')}`;
    }
    if (want && want !== actual) {
      await this.#discard();
      throw berthError('FailedPrecondition', `${what}: digest mismatch: content is ${actual}, expected ${want}`);
    }
    const target = this.#store.blobPath(actual);
    if (await exists(target)) {
      await this.#discard();
      throw berthError('AlreadyExists', `content ${actual}: already exists`);
    }
    try {
      const fh = this.#fh!;
      // The commit time becomes the blob's creation time, which GC compares with its mark.
      const now = new Date();
      await fh.utimes(now, now);
      if (!synced) await fh.sync();
      await fh.close();
      this.#fh = undefined;
      await fsp.mkdir(path.dirname(target), { recursive: true });
      await fsp.rename(path.join(this.#dir, 'data'), target);
      if (!synced) await syncDir(path.dirname(target));
    } catch (err) {
      await this.#fail(err);
    }
    if (opts.labels && Object.keys(opts.labels).length > 0) {
      try {
        await this.#store.writeLabels(actual, opts.labels);
      } catch (err) {
        // A blob without the labels its writer asked for would be half-committed.
        await fsp.rm(target, { force: true });
        await this.#fail(err);
      }
    }
    await this.#discard();
    return this.#store.info(ctx, actual);
  }

  async #hashFile(algorithm: 'sha256' | 'sha512'): Promise<Digest> {
    const h = createHash(algorithm);
    let pos = 0;
    while (pos < this.#disk) {
      const { bytesRead } = await this.#fh!.read(this.#bufs[0], 0, Math.min(IO_CHUNK, this.#disk - pos), pos);
      if (bytesRead === 0) break;
      h.update(this.#bufs[0].subarray(0, bytesRead));
      pos += bytesRead;
    }
    return `${algorithm}:${h.digest('hex')}`;
  }

  async close(): Promise<void> {
    if (this.#done) return;
    try {
      await this.#flushAll();
    } finally {
      await this.#finish();
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #check(): void {
    if (this.#error) throw this.#error;
    if (this.#done) throw berthError('FailedPrecondition', `content ingest "${this.ref}": writer already closed`);
  }

  /** Close the file and release the lock, keeping the ingest directory. */
  async #finish(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    const fh = this.#fh;
    this.#fh = undefined;
    try {
      await fh?.close();
    } finally {
      this.#release();
    }
  }

  /** Finish and remove the ingest directory (after a commit, a mismatch or a full disk). */
  async #discard(): Promise<void> {
    try {
      await this.#finish();
    } catch {
      // The file handle is gone either way; removing the directory matters more.
    }
    await fsp.rm(this.#dir, { recursive: true, force: true });
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fsp.access(file);
    return true;
  } catch {
    return false;
  }
}
