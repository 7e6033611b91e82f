import { createReadStream, readFileSync, type Stats } from 'node:fs';
import { lstat, readdir, readlink, stat } from 'node:fs/promises';
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
  return tarStream(walkTree(real, base, new Map()));
}

/** `export`: the whole root file system as one tar, entries named from the root ("bin/", "etc/passwd"). */
export async function packRootfs(rootfs: string): Promise<Readable> {
  const seen = new Map<string, string>();
  async function* children(): AsyncGenerator<TarItem> {
    for (const child of (await readdir(rootfs)).sort()) yield* walkTree(path.join(rootfs, child), child, seen);
  }
  return tarStream(children());
}

/** Tar entries of a tree, never following symlinks; `seen` pairs hard links with their first name. */
async function* walkTree(abs: string, name: string, seen: Map<string, string>): AsyncGenerator<TarItem> {
  const st = await lstat(abs);
  const item = await tarItemOf(abs, name, st, seen);
  if (item) yield item;
  if (st.isDirectory()) for (const child of (await readdir(abs)).sort()) yield* walkTree(path.join(abs, child), `${name}/${child}`, seen);
}

/** Files up to this size are read whole into a tar item; larger ones are streamed. */
const SMALL_FILE = 1 << 20;

/**
 * The tar entry of one file-system object (a directory's alone, without its
 * children); `links` pairs hard links with the first name they were written
 * under; undefined for what a tar cannot hold (a socket).
 */
export async function tarItemOf(abs: string, name: string, st: Stats, links: Map<string, string>, xattrs?: Record<string, Buffer>): Promise<TarItem | undefined> {
  const common = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000), ...(xattrs ? { xattrs } : {}) };
  if (st.isDirectory()) return { entry: { name: `${name}/`, type: 'dir', ...common } };
  if (st.isSymbolicLink()) return { entry: { name, type: 'symlink', linkname: await readlink(abs), ...common } };
  if (st.isFile()) {
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 ? links.get(key) : undefined;
    if (first) return { entry: { name, type: 'hardlink', linkname: first, ...common } };
    if (st.nlink > 1) links.set(key, name);
    // A small file in one read: a stream per file (open, reads, close on the thread pool) costs more than the file.
    return { entry: { name, type: 'file', size: st.size, ...common }, body: st.size <= SMALL_FILE ? readFileSync(abs) : createReadStream(abs) };
  }
  if (st.isFIFO()) return { entry: { name, type: 'fifo', ...common } };
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    return { entry: { name, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: devMajor(st.rdev), devminor: devMinor(st.rdev), ...common } };
  }
  return undefined;
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
