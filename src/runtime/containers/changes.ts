import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { lstat, readdir, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Ctx } from '../../core/context.ts';
import { berthError, hasErrno } from '../../core/errors.ts';
import { lgetxattr, llistxattr } from '../../core/sys.ts';
import type { TarItem } from '../../core/tar-write.ts';
import { tarItemOf } from './archive.ts';
import type { Mount } from '../../snapshots/types.ts';

/**
 * `diff`: what a container changed in its file system, read from the
 * writable layer of its overlay (docker's kinds: 0 changed, 1 added, 2
 * deleted). A whiteout (character device 0/0) is a deletion; an entry
 * present in a lower layer is a change, any other an addition. Paths in
 * `hidden` are the mount targets the runtime creates when the image lacks
 * them (/etc/hosts, /proc, /dev and the like, empty), which docker keeps out
 * of the container's layer (its init layer) and so out of its diff; a
 * directory changed only to hold them is left out too.
 */
export interface Change {
  Path: string;
  Kind: 0 | 1 | 2;
}

export async function layerChanges(ctx: Ctx, mounts: readonly Mount[], hidden: ReadonlySet<string>, hasLayers: boolean): Promise<Change[]> {
  const { upper, lowers } = layersOf(mounts, hasLayers);
  const inLower = async (rel: string) => {
    for (const l of lowers) {
      try {
        await lstat(path.join(l, rel));
        return true;
      } catch (err) {
        if (!hasErrno(err, 'ENOENT') && !hasErrno(err, 'ENOTDIR')) throw err;
      }
    }
    return false;
  };
  const out: Change[] = [];
  // Returns whether anything under `rel` (itself included) is reported.
  const walk = async (rel: string): Promise<boolean> => {
    ctx.signal.throwIfAborted();
    let any = false;
    for (const name of (await readdir(path.join(upper, rel))).sort()) {
      const child = rel === '/' ? `/${name}` : `${rel}/${name}`;
      const abs = path.join(upper, child);
      const st = await lstat(abs);
      if (st.isCharacterDevice() && st.rdev === 0) {
        out.push({ Path: child, Kind: 2 });
        any = true;
        continue;
      }
      if (await isHiddenTarget(hidden, child, abs, st)) continue;
      const kind = (await inLower(child)) ? 0 : 1;
      if (!st.isDirectory()) {
        out.push({ Path: child, Kind: kind });
        any = true;
        continue;
      }
      const at = out.length;
      out.push({ Path: child, Kind: kind });
      const inside = await walk(child);
      // A directory copied up (or made) only to hold hidden mount targets changed nothing the user made.
      if (!inside && (kind === 0 || hidden.has(child)) && !isOpaque(abs)) out.splice(at, 1);
      else any = true;
    }
    return any;
  };
  await walk('/');
  return out;
}

function layersOf(mounts: readonly Mount[], hasLayers: boolean): { upper: string; lowers: string[] } {
  const m = mounts[0];
  if (m?.type === 'overlay') {
    const opt = (k: string) => m.options.find((o) => o.startsWith(`${k}=`))?.slice(k.length + 1);
    const upper = opt('upperdir');
    if (upper) return { upper, lowers: (opt('lowerdir') ?? '').split(':').filter(Boolean) };
  }
  // A container on an image without layers is a plain directory: everything in it was added.
  // (A copying snapshotter's container on layers is a plain directory too, but holds them all.)
  if (m?.type === 'bind' && mounts.length === 1 && !hasLayers) return { upper: m.source, lowers: [] };
  throw berthError('FailedPrecondition', 'diff and commit need a container on the overlayfs snapshotter');
}

function isOpaque(dir: string): boolean {
  try {
    return lgetxattr(dir, 'trusted.overlay.opaque').toString() === 'y';
  } catch {
    return false;
  }
}

/**
 * The container's writable layer as an OCI layer tar (for `commit`):
 * overlayfs whiteouts become `.wh.NAME` entries, an opaque directory gets a
 * `.wh..wh..opq` entry, hard links inside the layer stay links, and the
 * runtime's own empty mount targets (`hidden`) are left out, as `diff`
 * leaves them out. Extended attributes travel, but overlayfs' own
 * (`trusted.overlay.*`) never do.
 */
export async function* layerTarItems(ctx: Ctx, mounts: readonly Mount[], hidden: ReadonlySet<string>, hasLayers: boolean): AsyncGenerator<TarItem> {
  const { upper } = layersOf(mounts, hasLayers);
  const links = new Map<string, string>();
  // Synchronous calls, as the layer applier's: a thread-pool round trip per
  // entry cost more than the entry (a layer of 2,000 small files took ~2 s).
  // Depth first with a stack of our own: a recursive generator passed each
  // entry through one more generator per level. Names joined by hand:
  // path.join's normalising cost more than the entry.
  const stack: Array<{ rel: string; names: string[]; next: number }> = [{ rel: '', names: readdirSync(upper).sort(), next: 0 }];
  while (stack.length) {
    const dir = stack[stack.length - 1];
    if (dir.next >= dir.names.length) {
      stack.pop();
      continue;
    }
    const { rel } = dir;
    const name = dir.names[dir.next++];
    const child = rel ? `${rel}/${name}` : name;
    const abs = `${upper}/${child}`;
    const st = lstatSync(abs);
    if (st.isCharacterDevice() && st.rdev === 0) {
      yield { entry: { name: rel ? `${rel}/.wh.${name}` : `.wh.${name}`, type: 'file', size: 0, mode: 0o644 } };
      continue;
    }
    if (hidden.has(`/${child}`) && (await isHiddenTarget(hidden, `/${child}`, abs, st))) continue;
    const item = await tarItemOf(abs, child, st, links, xattrsOf(abs));
    if (item) yield item;
    if (st.isDirectory()) {
      ctx.signal.throwIfAborted();
      if (isOpaque(abs)) yield { entry: { name: `${child}/.wh..wh..opq`, type: 'file', size: 0, mode: 0o644 } };
      stack.push({ rel: child, names: readdirSync(abs).sort(), next: 0 });
    }
  }
}

/**
 * Takes the runtime's own mount targets that are still as it made them
 * (`hidden`, see layerTarItems) out of the writable layer itself, deepest
 * first, so a directory left empty by them goes too: a commit that makes
 * the layer's snapshot of the writable layer (rather than unpacking the
 * tar again) then holds what the tar walked after it does.
 */
export async function dropHiddenTargets(ctx: Ctx, mounts: readonly Mount[], hidden: ReadonlySet<string>, hasLayers: boolean): Promise<void> {
  const { upper } = layersOf(mounts, hasLayers);
  for (const rel of [...hidden].sort((a, b) => b.length - a.length)) {
    ctx.signal.throwIfAborted();
    const abs = path.join(upper, rel);
    const st = await lstat(abs).catch(() => undefined);
    if (!st || !(await isHiddenTarget(hidden, rel, abs, st))) continue;
    await (st.isDirectory() ? rmdir(abs) : unlink(abs));
  }
}

/** One of the runtime's own mount targets, still as it made it: an empty file or directory. */
async function isHiddenTarget(hidden: ReadonlySet<string>, rel: string, abs: string, st: Stats): Promise<boolean> {
  return hidden.has(rel) && ((st.isFile() && st.size === 0) || (st.isDirectory() && (await readdir(abs)).length === 0));
}

function xattrsOf(p: string): Record<string, Buffer> | undefined {
  let names: string[];
  try {
    names = llistxattr(p);
  } catch {
    return undefined;
  }
  const out: Record<string, Buffer> = {};
  for (const n of names) {
    if (n.startsWith('trusted.overlay.')) continue;
    try {
      out[n] = lgetxattr(p, n);
    } catch {
      // Gone meanwhile.
    }
  }
  return Object.keys(out).length ? out : undefined;
}
