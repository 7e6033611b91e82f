import { createHash } from 'node:crypto';
import { chmodSync, closeSync, copyFileSync, createReadStream, lchownSync, lstatSync, lutimesSync, mkdirSync, openSync, readdirSync, readlinkSync, readSync, rmSync, symlinkSync, type Stats } from 'node:fs';
import { chmod, lchown, lstat, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Ctx } from '../core/context.ts';
import { berthError, hasErrno } from '../core/errors.ts';
import { resolveInRoot } from '../runtime/oci/rootfs-files.ts';
import type { FileHashCache } from './hash-cache.ts';

/**
 * COPY and ADD on the file system: sources matched in a root (the context,
 * or another stage's or image's rootfs for `--from`) with Go's
 * `filepath.Match` wildcards, the content digest the cache keys on (names,
 * types, modes, sizes, contents and link targets; never times), and the
 * copy into a container's mounted rootfs. Every path, source or
 * destination, resolves inside its root: a symlink can never lead out.
 */
export interface SourceEntry {
  /** Host path, resolved inside the root. */
  abs: string;
  /** The path as matched, relative to the root. */
  rel: string;
  st: Stats;
}

function matchRegExp(component: string): RegExp {
  let re = '';
  for (let i = 0; i < component.length; i++) {
    const ch = component[i];
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '\\' && i + 1 < component.length) re += escapeRe(component[++i]);
    else if (ch === '[') {
      const end = component.indexOf(']', i + 1);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let cls = component.slice(i + 1, end);
      if (cls.startsWith('^') || cls.startsWith('!')) cls = '^' + cls.slice(1);
      re += `[${cls}]`;
      i = end;
    } else re += escapeRe(ch);
  }
  return new RegExp(`^${re}$`);
}

function escapeRe(ch: string): string {
  return /[.+^${}()|[\]\\/*?]/.test(ch) ? `\\${ch}` : ch;
}

const hasWildcard = (s: string) => /[*?[]/.test(s);

/** The entries `pattern` names in `root`; none is NotFound naming the pattern. */
export async function matchSources(ctx: Ctx, root: string, pattern: string, what: string, ignored?: (rel: string) => boolean): Promise<SourceEntry[]> {
  const parts = pattern.split('/').filter((p) => p && p !== '.');
  const clean: string[] = [];
  for (const p of parts) {
    if (p === '..') clean.pop();
    else clean.push(p);
  }
  const notFound = () => berthError('NotFound', `${what}: "${pattern}": not found${what.startsWith('build context') ? ' (or excluded by .dockerignore)' : ''}`);
  if (!clean.some(hasWildcard)) {
    const rel = clean.join('/');
    // A context read in place: what .dockerignore leaves out is not there.
    if (rel && ignored?.(rel)) throw notFound();
    const abs = await resolveInRoot(ctx, root, '/' + rel);
    try {
      return [{ abs, rel, st: await lstat(abs) }];
    } catch (err) {
      if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ENOTDIR')) throw notFound();
      throw err;
    }
  }
  let current = [''];
  for (const part of clean) {
    const next: string[] = [];
    for (const dir of current) {
      if (!hasWildcard(part)) {
        next.push(dir ? `${dir}/${part}` : part);
        continue;
      }
      const re = matchRegExp(part);
      const abs = await resolveInRoot(ctx, root, '/' + dir);
      const names = await readdir(abs).catch(() => [] as string[]);
      for (const n of names.sort()) {
        const rel = dir ? `${dir}/${n}` : n;
        if (re.test(n) && !ignored?.(rel)) next.push(rel);
      }
    }
    current = next;
  }
  const out: SourceEntry[] = [];
  for (const rel of current) {
    if (ignored?.(rel)) continue;
    const abs = await resolveInRoot(ctx, root, '/' + rel);
    const st = await lstat(abs).catch(() => undefined);
    if (st) out.push({ abs, rel, st });
  }
  if (out.length === 0) throw notFound();
  return out;
}

export interface DigestOptions {
  /** `--exclude` and `.dockerignore`: true for a path (relative to the entry being walked) to leave out. */
  exclude?: (rel: string) => boolean;
  /** Hashes of files read in place, kept between builds (a context directory on berthd's host). */
  hashes?: FileHashCache;
  /**
   * Owners as the copy will see them: a context's files are copied as
   * root's (or `--chown`'s), and a context sent as a tar is 0:0 already, so
   * one read in place hashes as 0:0 too.
   */
  ownersAsRoot?: boolean;
}

/**
 * A digest of what copying `entries` would write, independent of times and
 * of where the root is: each entry's name, mode, owner, type, link target,
 * and a file's size and the sha256 of its bytes.
 */
export async function contentDigest(ctx: Ctx, entries: SourceEntry[], opts: DigestOptions = {}): Promise<string> {
  const h = createHash('sha256');
  const { exclude, hashes, ownersAsRoot } = opts;
  let n = 0;
  // One buffer for every small file: an allocation per file kept the garbage collector busy.
  let buf: Buffer | undefined;
  const add = async (abs: string, name: string, st: Stats, rel = '') => {
    if (rel && exclude?.(rel)) return;
    if (++n % 256 === 0) {
      await new Promise((r) => setImmediate(r));
      ctx.signal.throwIfAborted();
    }
    h.update(`${name}\0${st.mode}\0${ownersAsRoot ? 0 : st.uid}:${ownersAsRoot ? 0 : st.gid}\0`);
    if (st.isSymbolicLink()) h.update(`link:${readlinkSync(abs)}\0`);
    else if (st.isFile()) {
      let sum = hashes?.get(abs, st);
      if (sum === undefined) {
        const readAt = Date.now();
        const fh = createHash('sha256');
        // Small files in one read; big ones streamed, so a large file is never held whole.
        if (st.size <= SMALL_FILE) fh.update(readSmall(abs, st.size, (buf ??= Buffer.allocUnsafe(SMALL_FILE))));
        else for await (const c of createReadStream(abs)) fh.update(c as Buffer);
        sum = fh.digest('hex');
        hashes?.put(abs, st, sum, readAt);
      }
      h.update(`file:${st.size}:${sum}\0`);
    } else if (st.isDirectory()) {
      h.update('dir\0');
      for (const child of readdirSync(abs).sort()) {
        const p = under(abs, child);
        await add(p, `${name}/${child}`, lstatSync(p), rel ? `${rel}/${child}` : child);
      }
    }
  };
  for (const e of entries) await add(e.abs, path.basename(e.rel) || '.', e.st);
  return `sha256:${h.digest('hex')}`;
}

const SMALL_FILE = 1 << 20;

/** `name` in directory `dir`; a join without path.join's normalising, which cost more than the copy in loops over thousands of entries. */
function under(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

/** A file of `size` bytes (at most buf's length) read into `buf`; the bytes read. */
function readSmall(file: string, size: number, buf: Buffer): Buffer {
  const fd = openSync(file, 'r');
  try {
    let off = 0;
    while (off < size) {
      const got = readSync(fd, buf, off, size - off, off);
      if (got === 0) break;
      off += got;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

export interface CopyOptions {
  /** Owner of everything written; undefined keeps the source's (`--from`). */
  owner?: { uid: number; gid: number };
  /** `--chmod`: mode of everything written. */
  mode?: number;
  /** `--exclude`: true for a path (relative to the copied directory) to leave out. */
  exclude?: (rel: string) => boolean;
}

/**
 * Copy `entries` to `dest` (a path in the image, absolute) inside the
 * mounted `rootfs`, Docker's rules: a directory's contents go into the
 * destination; a file goes to `dest` itself unless `dest` ends in `/` or is
 * an existing directory, then into it; several sources need a directory.
 */
export async function copyInto(ctx: Ctx, rootfs: string, entries: SourceEntry[], dest: string, opts: CopyOptions): Promise<void> {
  const destIsDir = dest.endsWith('/') || entries.length > 1 || (await isDirInRoot(ctx, rootfs, dest));
  if (entries.length > 1 && !dest.endsWith('/') && !(await isDirInRoot(ctx, rootfs, dest))) {
    throw berthError('InvalidArgument', `When using COPY with more than one source file, the destination must be a directory and end with a /`);
  }
  for (const e of entries) {
    if (e.st.isDirectory()) {
      const dir = await mkdirInRoot(ctx, rootfs, dest, opts);
      await copyChildren(ctx, rootfs, e.abs, dir.host, dir.inner, opts, { n: 0 }, '', dir.made > 0);
    } else {
      const target = destIsDir ? path.posix.join(dest, path.posix.basename(e.rel)) : dest;
      await mkdirInRoot(ctx, rootfs, path.posix.dirname(target), opts, true);
      await copyOne(ctx, rootfs, e.abs, e.st, target, opts);
    }
  }
}

/** Write a file (a heredoc's content) at `dest`. */
export async function writeInto(ctx: Ctx, rootfs: string, dest: string, content: string, opts: CopyOptions): Promise<void> {
  await mkdirInRoot(ctx, rootfs, path.posix.dirname(dest), opts, true);
  const host = await hostTarget(ctx, rootfs, dest);
  await rm(host, { force: true, recursive: false }).catch(() => {});
  await writeFile(host, content, { mode: 0o644 });
  setMetaSync(host, { uid: opts.owner?.uid ?? 0, gid: opts.owner?.gid ?? 0, mode: opts.mode ?? 0o644 });
}

async function isDirInRoot(ctx: Ctx, rootfs: string, inner: string): Promise<boolean> {
  const host = await resolveInRoot(ctx, rootfs, inner);
  return (await lstat(host).catch(() => undefined))?.isDirectory() ?? false;
}

/** The host path of image path `inner`: its parent resolved in the root, its own name not followed. */
async function hostTarget(ctx: Ctx, rootfs: string, inner: string): Promise<string> {
  const clean = path.posix.normalize('/' + inner);
  if (clean === '/') return resolveInRoot(ctx, rootfs, '/');
  return path.join(await resolveInRoot(ctx, rootfs, path.posix.dirname(clean)), path.posix.basename(clean));
}

/** `mkdir -p` inside the root: missing directories are root's 0755 (the copy's owner when `--chown` asks). */
async function mkdirInRoot(ctx: Ctx, rootfs: string, inner: string, opts: CopyOptions, parentsOnly = false, what = 'copy to'): Promise<{ host: string; inner: string; made: number }> {
  const clean = path.posix.normalize('/' + inner);
  let cur = '/';
  let made = 0;
  for (const part of clean.split('/').filter(Boolean)) {
    cur = path.posix.join(cur, part);
    const host = await resolveInRoot(ctx, rootfs, cur);
    const st = await lstat(host).catch(() => undefined);
    if (st?.isDirectory()) continue;
    if (st) throw berthError('InvalidArgument', `cannot ${what} ${clean}: ${cur} exists in the image and is not a directory`);
    await mkdir(host, { mode: 0o755 });
    made++;
    const owner = parentsOnly ? { uid: 0, gid: 0 } : (opts.owner ?? { uid: 0, gid: 0 });
    await lchown(host, owner.uid, owner.gid);
    await chmod(host, 0o755);
  }
  return { host: await resolveInRoot(ctx, rootfs, clean), inner: clean, made };
}

/**
 * WORKDIR's directory: `inner` and its missing parents made inside the
 * root, 0755 and owned by `owner` (the USER at that point), as BuildKit
 * makes it; resolves to how many directories it made.
 */
export async function makeWorkdir(ctx: Ctx, rootfs: string, inner: string, owner: { uid: number; gid: number }): Promise<number> {
  return (await mkdirInRoot(ctx, rootfs, inner, { owner }, false, 'make the working directory')).made;
}

/**
 * The tree under `srcDir` into the directory `destHost` (already resolved in
 * the root, a real directory). A directory meets a symlink in the image that
 * leads (inside the root) to a directory: it is copied into that directory,
 * as Docker follows it; anything else in the way of a directory, or in the
 * way of a file or link, is replaced, never written through. The calls
 * are synchronous, as the layer applier's are (a thread-pool round trip per
 * small call costs more than the call), with a yield to the event loop
 * every few hundred entries. In a directory made by this copy (`fresh`)
 * nothing can be in the way, and nothing is looked up.
 */
async function copyChildren(ctx: Ctx, rootfs: string, srcDir: string, destHost: string, destInner: string, opts: CopyOptions, tick: { n: number }, relDir = '', fresh = false): Promise<void> {
  for (const name of readdirSync(srcDir).sort()) {
    if (++tick.n % 256 === 0) {
      await new Promise((r) => setImmediate(r));
      ctx.signal.throwIfAborted();
    }
    const abs = under(srcDir, name);
    const rel = relDir ? `${relDir}/${name}` : name;
    if (opts.exclude?.(rel)) continue;
    const st = lstatSync(abs);
    const host = under(destHost, name);
    if (st.isDirectory()) {
      const existing = fresh ? undefined : lstatOrUndefined(host);
      if (existing?.isSymbolicLink()) {
        const inner = path.posix.join(destInner, name);
        const target = await resolveInRoot(ctx, rootfs, inner);
        if (lstatOrUndefined(target)?.isDirectory()) {
          await copyChildren(ctx, rootfs, abs, target, `/${path.relative(rootfs, target)}`, opts, tick, rel);
          continue;
        }
      }
      if (existing && !existing.isDirectory()) rmSync(host, { force: true });
      if (!existing?.isDirectory()) mkdirSync(host, { mode: 0o700 });
      await copyChildren(ctx, rootfs, abs, host, under(destInner, name), opts, tick, rel, !existing?.isDirectory());
      setMetaSync(host, meta(st, opts));
      lutimesSync(host, st.atime, st.mtime);
    } else {
      copyOneSync(abs, st, host, under(destInner, name), opts, fresh);
    }
  }
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

function meta(st: Stats, opts: CopyOptions): { uid: number; gid: number; mode: number } {
  return { uid: opts.owner ? opts.owner.uid : st.uid, gid: opts.owner ? opts.owner.gid : st.gid, mode: opts.mode ?? st.mode & 0o7777 };
}

function setMetaSync(host: string, m: { uid: number; gid: number; mode: number }): void {
  // Owner before mode: chown clears setuid and setgid bits.
  lchownSync(host, m.uid, m.gid);
  chmodSync(host, m.mode);
}

async function copyOne(ctx: Ctx, rootfs: string, abs: string, st: Stats, inner: string, opts: CopyOptions): Promise<void> {
  copyOneSync(abs, st, await hostTarget(ctx, rootfs, inner), inner, opts);
}

/**
 * One file or symlink to `host` (its parent resolved); what is in the way is
 * replaced, a directory refused. In a directory made by this copy
 * (`fresh`) nothing is in the way, and a file for root keeps the owner and
 * mode copyFile gave it (root's, the source's).
 */
function copyOneSync(abs: string, st: Stats, host: string, inner: string, opts: CopyOptions, fresh = false): void {
  const existing = fresh ? undefined : lstatOrUndefined(host);
  if (existing?.isDirectory()) throw berthError('InvalidArgument', `cannot copy a file over the directory ${inner}`);
  if (existing) rmSync(host, { force: true });
  const m = meta(st, opts);
  if (st.isSymbolicLink()) {
    symlinkSync(readlinkSync(abs), host);
    lchownSync(host, m.uid, m.gid);
    lutimesSync(host, st.atime, st.mtime);
    return;
  }
  if (!st.isFile()) return;
  copyFileSync(abs, host);
  if (!fresh || m.uid !== 0 || m.gid !== 0) setMetaSync(host, m);
  else if (m.mode !== (st.mode & 0o7777)) chmodSync(host, m.mode);
  lutimesSync(host, st.atime, st.mtime);
}
