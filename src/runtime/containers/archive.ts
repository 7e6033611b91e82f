import { createReadStream, type Stats } from 'node:fs';
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
  const base = path.basename(path.posix.normalize('/' + p)) || '.';
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
    return { entry: { name, type: 'file', size: st.size, ...common }, body: createReadStream(abs) };
  }
  if (st.isFIFO()) return { entry: { name, type: 'fifo', ...common } };
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    return { entry: { name, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: devMajor(st.rdev), devminor: devMinor(st.rdev), ...common } };
  }
  return undefined;
}

/** Extract a tar into directory `p` of `rootfs`; the directory must exist. */
export async function extractIntoRoot(ctx: Ctx, rootfs: string, mounts: readonly ResolvedMount[], p: string, tar: AsyncIterable<Uint8Array>): Promise<void> {
  const real = await hostPath(ctx, rootfs, mounts, p);
  let st;
  try {
    st = await stat(real);
  } catch {
    throw berthError('NotFound', `Could not find the file ${p} in container`);
  }
  if (!st.isDirectory()) throw berthError('InvalidArgument', `extraction point is not a directory: ${p}`);
  await applyLayer(ctx, real, tar, { format: 'plain' });
}

// Linux's dev_t: the minor's low 8 bits, then 12 bits of major, then the minor's upper bits.
function devMajor(rdev: number): number {
  return (rdev >>> 8) & 0xfff;
}

function devMinor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
}
