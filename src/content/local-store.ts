import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Ctx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { algorithmOf, hexOf, isDigest } from '../core/digest.ts';
import { berthError, hasErrno } from '../core/errors.ts';
import type { ContentInfo, ContentStore, ContentWriter, IngestStatus } from './types.ts';
import { emptyTrash, removeOrSetAside } from '../core/remove-tree.ts';
import { exists, IO_CHUNK, LocalWriter, mapWriteError } from './local-writer.ts';

/**
 * A ContentStore on a local directory:
 *
 *   <root>/blobs/<alg>/<hex>            committed blobs, read-only once renamed in
 *   <root>/labels/<alg>/<hex>.json      labels of a blob (absent = none)
 *   <root>/ingest/<sha256(ref)>/        one in-progress write:
 *       data  ref  total  expected  startedat
 *
 * Labels are sidecar files rather than database rows because content/ sits
 * below metadata/ and must not depend on it; they are rare (most blobs have
 * none) and written atomically (temp file + rename).
 *
 * One writer per ref: the lock is in memory, since one berthd owns a root
 * (its pid file enforces that), so a crash can never leave a stale lock.
 */
export class LocalContentStore implements ContentStore {
  readonly root: string;
  readonly #locks = new Set<string>();

  constructor(root: string) {
    this.root = root;
  }

  /**
   * Create the layout under `root` (idempotent) and reconcile what a crash
   * may have left: label files of blobs that are gone, temp label files, and
   * ingest directories that never got their `ref` file. What cannot be
   * removed is moved to `<root>/trash` (tried again at the next open) or
   * left, and logged: nothing on disk stops the store from opening.
   */
  static async open(ctx: Ctx, root: string): Promise<LocalContentStore> {
    for (const dir of ['blobs/sha256', 'labels/sha256', 'ingest']) {
      await fsp.mkdir(path.join(root, dir), { recursive: true });
    }
    const store = new LocalContentStore(root);
    const trash = path.join(root, 'trash');
    for (const left of await emptyTrash(trash)) ctx.log.warn('content set aside earlier still cannot be removed', { path: left.path, err: left.error });
    const drop = async (p: string): Promise<void> => {
      const r = await removeOrSetAside(p, trash);
      if (r) ctx.log.warn(r.movedTo ? 'cannot remove leftover content: moved it to the trash' : 'cannot remove leftover content, nor move it aside: left in place', { path: p, movedTo: r.movedTo, err: r.error });
    };
    for (const alg of ['sha256', 'sha512']) {
      const dir = path.join(root, 'labels', alg);
      for (const name of await listForCleanup(ctx, dir)) {
        const hex = name.endsWith('.json') ? name.slice(0, -'.json'.length) : '';
        const orphan = !hex || !(await exists(path.join(root, 'blobs', alg, hex)));
        if (orphan) await drop(path.join(dir, name));
      }
    }
    for (const name of await listForCleanup(ctx, path.join(root, 'ingest'))) {
      const dir = path.join(root, 'ingest', name);
      if (!(await exists(path.join(dir, 'ref')))) await drop(dir);
    }
    return store;
  }

  blobPath(digest: Digest): string {
    return path.join(this.root, 'blobs', algorithmOf(checkDigest(digest)), hexOf(digest));
  }

  #labelsPath(digest: Digest): string {
    return path.join(this.root, 'labels', algorithmOf(digest), `${hexOf(digest)}.json`);
  }

  /** Directory of the ingest named `ref`: hashed, so any string is a safe ref. */
  ingestDir(ref: string): string {
    return path.join(this.root, 'ingest', createHash('sha256').update(ref).digest('hex'));
  }

  async info(_ctx: Ctx, digest: Digest): Promise<ContentInfo> {
    const st = await statBlob(this.blobPath(digest), digest);
    const { labels, mtime } = await this.#readLabels(digest);
    return {
      digest,
      size: st.size,
      createdAt: st.mtime,
      updatedAt: mtime && mtime > st.mtime ? mtime : st.mtime,
      labels,
    };
  }

  async reader(ctx: Ctx, digest: Digest, opts: { offset?: number } = {}): Promise<Readable> {
    const offset = opts.offset ?? 0;
    const fh = await openBlob(this.blobPath(digest), digest);
    try {
      const { size } = await fh.stat();
      if (!Number.isSafeInteger(offset) || offset < 0 || offset > size) {
        throw berthError('InvalidArgument', `content ${digest}: offset ${offset} outside 0..${size}`);
      }
    } catch (err) {
      await fh.close();
      throw err;
    }
    return fh.createReadStream({ start: offset, highWaterMark: IO_CHUNK, signal: ctx.signal, autoClose: true });
  }

  async readAll(ctx: Ctx, digest: Digest, maxBytes: number): Promise<Buffer> {
    const fh = await openBlob(this.blobPath(digest), digest);
    try {
      const { size } = await fh.stat();
      if (size > maxBytes) {
        throw berthError('ResourceExhausted', `content ${digest}: ${size} bytes is more than the ${maxBytes}-byte limit for reading it whole`);
      }
      return await fh.readFile({ signal: ctx.signal });
    } finally {
      await fh.close();
    }
  }

  async writer(ctx: Ctx, opts: { ref: string; expected?: { digest: Digest; size?: number } }): Promise<ContentWriter> {
    const { ref, expected } = opts;
    if (!ref) throw berthError('InvalidArgument', 'content ingest: empty ref');
    if (expected) {
      checkDigest(expected.digest);
      if (await exists(this.blobPath(expected.digest))) {
        throw berthError('AlreadyExists', `content ${expected.digest}: already exists`);
      }
    }
    if (this.#locks.has(ref)) throw berthError('Unavailable', `content ingest "${ref}": locked by another writer`);
    this.#locks.add(ref);
    try {
      return await LocalWriter.open(ctx, {
        store: this,
        ref,
        dir: this.ingestDir(ref),
        expected,
        release: () => this.#locks.delete(ref),
      });
    } catch (err) {
      this.#locks.delete(ref);
      throw err;
    }
  }

  async status(_ctx: Ctx, ref: string): Promise<IngestStatus> {
    const st = await readIngest(this.ingestDir(ref));
    if (!st || st.ref !== ref) throw berthError('NotFound', `content ingest "${ref}": not found`);
    return st;
  }

  async listStatuses(_ctx: Ctx): Promise<IngestStatus[]> {
    const out: IngestStatus[] = [];
    for (const name of await readdirOrEmpty(path.join(this.root, 'ingest'))) {
      const st = await readIngest(path.join(this.root, 'ingest', name));
      if (st) out.push(st);
    }
    return out;
  }

  async abort(ctx: Ctx, ref: string): Promise<void> {
    if (this.#locks.has(ref)) throw berthError('Unavailable', `content ingest "${ref}": in use by a writer`);
    await this.status(ctx, ref);
    await fsp.rm(this.ingestDir(ref), { recursive: true, force: true });
  }

  /** True while a writer holds `ref`. */
  isLocked(ref: string): boolean {
    return this.#locks.has(ref);
  }

  async walk(ctx: Ctx, fn: (info: ContentInfo) => void | Promise<void>): Promise<void> {
    for (const alg of ['sha256', 'sha512']) {
      for (const hex of await readdirOrEmpty(path.join(this.root, 'blobs', alg))) {
        ctx.signal.throwIfAborted();
        const digest = `${alg}:${hex}`;
        if (!isDigest(digest)) continue;
        let info: ContentInfo;
        try {
          info = await this.info(ctx, digest);
        } catch (err) {
          if (hasErrno(err, 'ENOENT') || (err as { kind?: string }).kind === 'NotFound') continue;
          throw err;
        }
        await fn(info);
      }
    }
  }

  async updateLabels(ctx: Ctx, digest: Digest, labels: Record<string, string>): Promise<ContentInfo> {
    await statBlob(this.blobPath(digest), digest);
    const merged = { ...(await this.#readLabels(digest)).labels };
    for (const [k, v] of Object.entries(labels)) {
      if (v === '') delete merged[k];
      else merged[k] = v;
    }
    await this.writeLabels(digest, merged);
    return this.info(ctx, digest);
  }

  /** Replace a blob's labels atomically; used by `updateLabels` and by commit. */
  async writeLabels(digest: Digest, labels: Record<string, string>): Promise<void> {
    const file = this.#labelsPath(digest);
    if (Object.keys(labels).length === 0) {
      await fsp.rm(file, { force: true });
      return;
    }
    await fsp.mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      await fsp.writeFile(tmp, JSON.stringify(labels));
      await fsp.rename(tmp, file);
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw mapWriteError(err, `content ${digest}: labels`);
    }
  }

  async delete(_ctx: Ctx, digest: Digest): Promise<void> {
    try {
      await fsp.unlink(this.blobPath(digest));
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) throw berthError('NotFound', `content ${digest}: not found`);
      throw err;
    }
    await fsp.rm(this.#labelsPath(digest), { force: true });
  }

  async #readLabels(digest: Digest): Promise<{ labels: Record<string, string>; mtime?: Date }> {
    const file = this.#labelsPath(digest);
    try {
      const [text, st] = await Promise.all([fsp.readFile(file, 'utf8'), fsp.stat(file)]);
      return { labels: JSON.parse(text) as Record<string, string>, mtime: st.mtime };
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) return { labels: {} };
      throw err;
    }
  }
}

function checkDigest(digest: string): Digest {
  if (!isDigest(digest)) throw berthError('InvalidArgument', `invalid digest "${digest}"`);
  return digest;
}

async function statBlob(file: string, digest: Digest) {
  try {
    return await fsp.stat(file);
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) throw berthError('NotFound', `content ${digest}: not found`);
    throw err;
  }
}

async function openBlob(file: string, digest: Digest): Promise<fsp.FileHandle> {
  try {
    return await fsp.open(file, fsc.O_RDONLY);
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) throw berthError('NotFound', `content ${digest}: not found`);
    throw err;
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return [];
    throw err;
  }
}

/** The names in `dir`: none when it is missing or unreadable (logged; a start-up clean-up goes on). */
async function listForCleanup(ctx: Ctx, dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (err) {
    if (!hasErrno(err, 'ENOENT')) ctx.log.warn('cannot list a content directory to clean it up', { path: dir, err });
    return [];
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

/** The status of the ingest in `dir`, or undefined if it is not (or no longer) one. */
async function readIngest(dir: string): Promise<IngestStatus | undefined> {
  const ref = await readOptional(path.join(dir, 'ref'));
  if (ref === undefined) return undefined;
  const [total, expected, startedAt] = await Promise.all(['total', 'expected', 'startedat'].map((f) => readOptional(path.join(dir, f))));
  let offset = 0;
  let updatedAt = new Date(Number(startedAt ?? 0));
  try {
    const st = await fsp.stat(path.join(dir, 'data'));
    offset = st.size;
    updatedAt = st.mtime;
  } catch (err) {
    if (!hasErrno(err, 'ENOENT')) throw err;
  }
  return {
    ref,
    offset,
    total: total ? Number(total) : undefined,
    expected: expected && isDigest(expected) ? expected : undefined,
    startedAt: new Date(Number(startedAt ?? 0)),
    updatedAt,
  };
}
