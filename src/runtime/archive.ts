import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Ctx } from '../core/context.ts';
import { berthError, hasErrno } from '../core/errors.ts';
import type { TarItem } from '../core/tar-write.ts';
import { tarStream } from '../core/tar-write.ts';
import { applyLayer } from '../snapshots/apply.ts';
import { resolveInRoot } from './rootfs-files.ts';

/**
 * `cp` both ways, docker's semantics: reading `PATH` from a container gives a
 * tar whose entries are named from PATH's base name; writing extracts a tar
 * into a directory of the container. Paths resolve inside the rootfs (a
 * symlink can never lead out), and extraction goes through the layer
 * applier, which refuses any entry that would land outside the target.
 */
export interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

/**
 * Where `p` is in `rootfs`, docker cp's way: the parent directories are
 * resolved in the root but a final symlink is the link itself, so it is
 * copied as a link; a trailing `/` or `/.` asks for what it points to.
 */
async function resolveEntry(rootfs: string, p: string): Promise<string> {
  if (/\/\.?$/.test(p)) return resolveInRoot(rootfs, p);
  const parts = p.split('/');
  const last = parts.pop()!;
  if (last === '' || last === '.' || last === '..') return resolveInRoot(rootfs, p);
  return path.join(await resolveInRoot(rootfs, parts.join('/')), last);
}

export async function statInRoot(rootfs: string, p: string): Promise<PathStat> {
  const real = await resolveEntry(rootfs, p);
  try {
    const st = await lstat(real);
    return { name: path.basename(p), size: st.size, mode: st.mode, mtime: st.mtime.toISOString(), linkTarget: st.isSymbolicLink() ? await readlink(real) : '' };
  } catch (err) {
    if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ENOTDIR')) throw berthError('NotFound', `Could not find the file ${p} in container`);
    throw err;
  }
}

/** A tar of `p` (file or directory tree) inside `rootfs`. */
export async function packFromRoot(rootfs: string, p: string): Promise<Readable> {
  const real = await resolveEntry(rootfs, p);
  await statInRoot(rootfs, p);
  const base = path.basename(path.posix.normalize('/' + p)) || '.';
  const seen = new Map<string, string>();
  async function* walk(abs: string, name: string): AsyncGenerator<TarItem> {
    const st = await lstat(abs);
    const common = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
    if (st.isDirectory()) {
      yield { entry: { name: name + '/', type: 'dir', ...common } };
      for (const child of (await readdir(abs)).sort()) yield* walk(path.join(abs, child), `${name}/${child}`);
    } else if (st.isSymbolicLink()) {
      yield { entry: { name, type: 'symlink', linkname: await readlink(abs), ...common } };
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? seen.get(key) : undefined;
      if (first) {
        yield { entry: { name, type: 'hardlink', linkname: first, ...common } };
      } else {
        if (st.nlink > 1) seen.set(key, name);
        yield { entry: { name, type: 'file', size: st.size, ...common }, body: createReadStream(abs) };
      }
    } else if (st.isFIFO()) {
      yield { entry: { name, type: 'fifo', ...common } };
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      yield { entry: { name, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: devMajor(st.rdev), devminor: devMinor(st.rdev), ...common } };
    }
  }
  return tarStream(walk(real, base));
}

/** Extract a tar into directory `p` of `rootfs`; the directory must exist. */
export async function extractIntoRoot(ctx: Ctx, rootfs: string, p: string, tar: AsyncIterable<Uint8Array>): Promise<void> {
  const real = await resolveInRoot(rootfs, p);
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
