import { closeSync, constants as fsConstants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { type FileHandle, lstat, open, readdir, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Ctx } from '../../core/context.ts';
import { berthError, hasErrno } from '../../core/errors.ts';
import type { TarItem } from '../../core/tar-write.ts';
import { tarStream } from '../../core/tar-write.ts';
import { applyLayer } from '../../snapshots/apply.ts';
import { resolveInRoot } from '../oci/rootfs-files.ts';
import type { ResolvedMount } from '../oci/spec-mounts.ts';

/**
 * `cp` both ways, docker's semantics: reading `PATH` from a container gives a
 * tar whose entries are named from PATH's base name; writing extracts a tar
 * into a directory of the container. Paths resolve inside the rootfs (a
 * symlink can never lead out), and extraction goes through the layer
 * applier, which refuses any entry that would land outside the target.
 */
/**
 * The host path of container path `p`: inside a bind or volume mount it is
 * under the mount's source (the container sees the volume there, not the
 * directory of the rootfs beneath it), otherwise under the rootfs.
 */
export async function hostPath(ctx: Ctx, rootfs: string, mounts: readonly ResolvedMount[], p: string): Promise<string> {
  const clean = path.posix.normalize('/' + p);
  let best: ResolvedMount | undefined;
  for (const m of mounts) {
    if (m.type !== 'bind' || !m.source) continue;
    const t = path.posix.normalize('/' + m.target).replace(/\/$/, '') || '/';
    if ((clean === t || clean.startsWith(t + '/')) && (!best || t.length > best.target.length)) best = { ...m, target: t };
  }
  if (!best) return resolveInRoot(ctx, rootfs, clean);
  return resolveInRoot(ctx, best.source!, clean.slice(best.target.length) || '/');
}

export interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

/**
 * Where `p` is, docker cp's way: the parent directories are resolved in the
 * root (and through the container's mounts) but a final symlink is the link
 * itself, so it is copied as a link; a trailing `/` or `/.` asks for what it
 * points to.
 */
async function resolveEntry(ctx: Ctx, rootfs: string, mounts: readonly ResolvedMount[], p: string): Promise<string> {
  const clean = path.posix.normalize('/' + p);
  if (/\/\.?$/.test(p) || clean === '/' || mounts.some((m) => path.posix.normalize('/' + m.target) === clean)) return hostPath(ctx, rootfs, mounts, p);
  return path.join(await hostPath(ctx, rootfs, mounts, path.posix.dirname(clean)), path.posix.basename(clean));
}

export async function statInRoot(ctx: Ctx, rootfs: string, mounts: readonly ResolvedMount[], p: string): Promise<PathStat> {
  const real = await resolveEntry(ctx, rootfs, mounts, p);
  try {
    const st = await lstat(real);
    return { name: path.basename(p), size: st.size, mode: st.mode, mtime: st.mtime.toISOString(), linkTarget: st.isSymbolicLink() ? await readlink(real) : '' };
  } catch (err) {
    if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ENOTDIR')) throw berthError('NotFound', `Could not find the file ${p} in container`);
    throw err;
  }
}

/** A tar of `p` (file or directory tree) inside `rootfs`. */
export async function packFromRoot(ctx: Ctx, rootfs: string, mounts: readonly ResolvedMount[], p: string): Promise<Readable> {
  const real = await resolveEntry(ctx, rootfs, mounts, p);
  await statInRoot(ctx, rootfs, mounts, p);
  // `DIR/.` asks for DIR's contents, as docker cp: the entries are named from `.` ("./a", "./sub/b").
  const base = /(^|\/)\.$/.test(p) ? '.' : path.basename(path.posix.normalize('/' + p)) || '.';
  return tarStream(walkTree(path.dirname(real), path.basename(real) || '.', base, new Map()));
}

/** `export`: the whole root file system as one tar, entries named from the root ("bin/", "etc/passwd"). */
export async function packRootfs(rootfs: string): Promise<Readable> {
  const seen = new Map<string, string>();
  async function* children(): AsyncGenerator<TarItem> {
    const root = await openNoFollow(rootfs);
    try {
      const at = fdPath(root);
      for (const child of (await readdir(at)).sort()) yield* walkTree(at, child, child, seen);
    } finally {
      await root.close();
    }
  }
  return tarStream(children());
}

// Not in node's fs.constants: a descriptor that names an object without opening it (open(2)).
const O_PATH = 0o10000000;

/**
 * A descriptor on `p` itself, never following a final symlink and never
 * opening it: a FIFO does not block, a device is not touched. The container
 * may swap anything in its tree at any time; what is described and read
 * afterwards is this one object, reached through its descriptor.
 */
function openNoFollow(p: string): Promise<FileHandle> {
  return open(p, O_PATH | fsConstants.O_NOFOLLOW);
}

/** The path that reaches an open object (a directory's children below it) without a lookup of its name again. */
function fdPath(h: FileHandle): string {
  return `/proc/self/fd/${h.fd}`;
}

/**
 * Tar entries of `name` (child `child` of the directory at `parent`) and,
 * for a directory, of its tree. Every object is reached relative to the
 * descriptor of the directory that held it, never by a path a swap of a
 * directory for a symlink could send out of the root; symlinks are never
 * followed, and only a regular file is ever opened for reading (by its
 * descriptor, so it is the object just looked at). `seen` pairs hard links
 * with their first name.
 */
async function* walkTree(parent: string, child: string, name: string, seen: Map<string, string>): AsyncGenerator<TarItem> {
  let h: FileHandle;
  try {
    h = await openNoFollow(path.join(parent, child));
  } catch (err) {
    // Gone since its directory was read: the container removed it meanwhile.
    if (hasErrno(err, 'ENOENT')) return;
    throw err;
  }
  try {
    const st = await h.stat();
    if (st.isFile()) {
      const file = await open(fdPath(h), fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY);
      try {
        const item = fileItem(name, st, seen, readUpTo(file, st.size));
        yield item;
      } finally {
        await file.close();
      }
      return;
    }
    let item: TarItem | undefined;
    try {
      item = await tarItemOf(path.join(parent, child), name, st, seen);
    } catch (err) {
      // A symlink's target is read by name: one the container removed or replaced meanwhile is left out, as if gone before.
      if (st.isSymbolicLink() && (hasErrno(err, 'ENOENT') || hasErrno(err, 'EINVAL'))) return;
      throw err;
    }
    if (item) yield item;
    if (st.isDirectory()) {
      const at = fdPath(h);
      const children = await readdir(at).catch((err: unknown) => {
        if (hasErrno(err, 'ENOENT')) return [] as string[];
        throw err;
      });
      for (const c of children.sort()) yield* walkTree(at, c, `${name}/${c}`, seen);
    }
  } finally {
    await h.close();
  }
}

/** At most `size` bytes of an open file, from its start. */
async function* readUpTo(file: FileHandle, size: number): AsyncGenerator<Buffer> {
  let pos = 0;
  while (pos < size) {
    const buf = Buffer.allocUnsafe(Math.min(size - pos, 256 * 1024));
    const { bytesRead } = await file.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) return;
    pos += bytesRead;
    yield buf.subarray(0, bytesRead);
  }
}

function commonOf(st: Stats, xattrs?: Record<string, Buffer>) {
  return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000), ...(xattrs ? { xattrs } : {}) };
}

/** A regular file's entry: a hard link to its first name, or the file with `body`. */
function fileItem(name: string, st: Stats, links: Map<string, string>, body: TarItem['body'], xattrs?: Record<string, Buffer>): TarItem {
  const common = commonOf(st, xattrs);
  const key = `${st.dev}:${st.ino}`;
  const first = st.nlink > 1 ? links.get(key) : undefined;
  if (first) return { entry: { name, type: 'hardlink', linkname: first, ...common } };
  if (st.nlink > 1) links.set(key, name);
  return { entry: { name, type: 'file', size: st.size, ...common }, body };
}

/** Files up to this size are read whole into a tar item; larger ones are streamed. */
const SMALL_FILE = 1 << 20;

/**
 * The tar entry of one file-system object (a directory's alone, without its
 * children) as `st` describes it; `links` pairs hard links with the first
 * name they were written under; undefined for what a tar cannot hold (a
 * socket). A regular file's body is read only if `abs` is still that
 * regular file: a small one at once (smallRegularFile), a larger one when
 * the tar reaches it (regularFileBody).
 */
export async function tarItemOf(abs: string, name: string, st: Stats, links: Map<string, string>, xattrs?: Record<string, Buffer>): Promise<TarItem | undefined> {
  const common = commonOf(st, xattrs);
  if (st.isDirectory()) return { entry: { name: `${name}/`, type: 'dir', ...common } };
  if (st.isSymbolicLink()) return { entry: { name, type: 'symlink', linkname: await readlink(abs), ...common } };
  if (st.isFile()) return fileItem(name, st, links, st.size <= SMALL_FILE ? smallRegularFile(abs, name, st) : regularFileBody(abs, name, st), xattrs);
  if (st.isFIFO()) return { entry: { name, type: 'fifo', ...common } };
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    return { entry: { name, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: devMajor(st.rdev), devminor: devMinor(st.rdev), ...common } };
  }
  return undefined;
}

/** Opened only if still a regular file: never through a symlink, and a FIFO swapped in does not block the open. */
const READ_REGULAR = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY;

function changedWhileCopied(name: string, cause?: unknown): Error {
  return berthError('Conflict', `"${name}" changed while it was being copied: it is no longer the regular file it was`, cause);
}

/**
 * A small regular file read whole at once (a stream per file, with its
 * open, reads and close on the thread pool, costs more than the file),
 * opened and checked as regularFileBody does.
 */
function smallRegularFile(abs: string, name: string, st: Stats): Buffer {
  let fd: number;
  try {
    fd = openSync(abs, READ_REGULAR);
  } catch (err) {
    throw hasErrno(err, 'ELOOP') || hasErrno(err, 'ENOENT') || hasErrno(err, 'ENXIO') ? changedWhileCopied(name, err) : err;
  }
  try {
    const now = fstatSync(fd);
    if (!now.isFile() || now.ino !== st.ino || now.dev !== st.dev) throw changedWhileCopied(name);
    const buf = Buffer.allocUnsafe(st.size);
    let pos = 0;
    while (pos < st.size) {
      const n = readSync(fd, buf, pos, st.size - pos, pos);
      if (n === 0) break;
      pos += n;
    }
    return buf.subarray(0, pos);
  } finally {
    closeSync(fd);
  }
}

/**
 * The bytes of the regular file `st` described at `abs`. Between that look
 * and this open a container may have put a FIFO there (an open would wait
 * for a writer, holding a thread of berthd's pool for good), a symlink (out
 * of the root) or another file: the open neither follows a final symlink
 * nor waits, and the descriptor must be that same regular file, or the
 * copy fails with Conflict.
 */
async function* regularFileBody(abs: string, name: string, st: Stats): AsyncGenerator<Buffer> {
  let file: FileHandle;
  try {
    file = await open(abs, READ_REGULAR);
  } catch (err) {
    throw hasErrno(err, 'ELOOP') || hasErrno(err, 'ENOENT') || hasErrno(err, 'ENXIO') ? changedWhileCopied(name, err) : err;
  }
  try {
    const now = await file.stat();
    if (!now.isFile() || now.ino !== st.ino || now.dev !== st.dev) throw changedWhileCopied(name);
    yield* readUpTo(file, st.size);
  } finally {
    await file.close();
  }
}

/**
 * Extract a tar into directory `p` of `rootfs`; the directory must exist.
 * With `noOverwriteDirNonDir` (what docker's CLI always asks), an entry
 * that would replace a directory with something else, or the reverse, is
 * refused (Conflict) before it is applied, as dockerd refuses it: the
 * entries before it stay, as with dockerd.
 */
export async function extractIntoRoot(ctx: Ctx, rootfs: string, mounts: readonly ResolvedMount[], p: string, tar: AsyncIterable<Uint8Array>, opts: { noOverwriteDirNonDir?: boolean } = {}): Promise<void> {
  const real = await hostPath(ctx, rootfs, mounts, p);
  let st;
  try {
    st = await stat(real);
  } catch {
    throw berthError('NotFound', `Could not find the file ${p} in container`);
  }
  if (!st.isDirectory()) throw berthError('InvalidArgument', `extraction point is not a directory: ${p}`);
  await applyLayer(ctx, real, opts.noOverwriteDirNonDir ? guardDirNonDir(ctx, real, p, tar) : tar, { format: 'plain' });
}

/**
 * Pass a tar through unchanged, holding each entry back until it is checked
 * against what the directory `real` (container path `p`) already has: a
 * directory entry where a non-directory is, or the reverse, ends the stream
 * with Conflict. Headers are read as ustar with pax `path` and GNU long
 * names; the extraction itself still refuses what would leave the root.
 */
export async function* guardDirNonDir(ctx: Ctx, real: string, p: string, tar: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let buf = Buffer.alloc(0);
  let skip = 0;
  let next: string | undefined;
  let meta: 'pax' | 'longname' | undefined;
  let metaData: Buffer[] = [];
  for await (const chunk of tar) {
    buf = buf.length ? Buffer.concat([buf, chunk]) : Buffer.from(chunk);
    let out = 0;
    for (;;) {
      if (skip > 0) {
        const n = Math.min(skip, buf.length - out);
        if (meta) metaData.push(buf.subarray(out, out + n));
        out += n;
        skip -= n;
        if (skip > 0) break;
        if (meta) {
          const data = Buffer.concat(metaData);
          next = meta === 'pax' ? (/(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString('utf8'))?.[1] ?? next) : data.toString('utf8').replace(/\0.*$/s, '');
          meta = undefined;
          metaData = [];
        }
      }
      if (buf.length - out < 512) break;
      const h = buf.subarray(out, out + 512);
      if (h.every((b) => b === 0)) {
        out = buf.length;
        break;
      }
      const type = String.fromCharCode(h[156] || 0x30);
      const size = tarNumber(h.subarray(124, 136));
      const field = (from: number, len: number) => h.subarray(from, from + len).toString('utf8').replace(/\0.*$/s, '');
      if (type === 'x' || type === 'L') {
        meta = type === 'x' ? 'pax' : 'longname';
      } else if (type !== 'g' && type !== 'K') {
        // POSIX ustar keeps a name prefix there; GNU tar's own format keeps times.
        const prefix = h.subarray(257, 263).toString('latin1') === 'ustar\0' ? field(345, 155) : '';
        const name = next ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
        next = undefined;
        // Everything above this entry's bytes goes out first: earlier entries may create what this one is checked against.
        if (out > 0) {
          yield buf.subarray(0, out);
          buf = buf.subarray(out);
          out = 0;
        }
        await checkDirNonDir(ctx, real, p, name, type === '5');
      }
      out += 512;
      skip = Math.ceil(size / 512) * 512;
    }
    if (out > 0) {
      yield buf.subarray(0, out);
      buf = buf.subarray(out);
    }
  }
  if (buf.length) yield buf;
}

async function checkDirNonDir(ctx: Ctx, real: string, p: string, name: string, isDir: boolean): Promise<void> {
  const clean = path.posix.normalize('/' + name).replace(/\/$/, '');
  if (clean === '' || clean === '/') return;
  let existing: Stats;
  try {
    existing = await lstat(path.join(await resolveInRoot(ctx, real, path.posix.dirname(clean)), path.posix.basename(clean)));
  } catch {
    return;
  }
  const inContainer = path.posix.join(p, clean);
  if (existing.isDirectory() && !isDir) throw berthError('Conflict', `cannot overwrite directory "${inContainer}" with non-directory "${name}"`);
  if (!existing.isDirectory() && isDir) throw berthError('Conflict', `cannot overwrite non-directory "${inContainer}" with directory "${name}"`);
}

/** A tar number field: octal text, or base-256 when the high bit is set. */
function tarNumber(f: Buffer): number {
  if (f[0] & 0x80) {
    let n = f[0] & 0x7f;
    for (let i = 1; i < f.length; i++) n = n * 256 + f[i];
    return n;
  }
  const text = f.toString('ascii').replace(/[\0 ]+$/g, '').trim();
  return text ? parseInt(text, 8) : 0;
}

// Linux's dev_t: the minor's low 8 bits, then 12 bits of major, then the minor's upper bits.
function devMajor(rdev: number): number {
  return (rdev >>> 8) & 0xfff;
}

function devMinor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
}
