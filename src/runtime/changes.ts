import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Ctx } from '../core/context.ts';
import { berthError, hasErrno } from '../core/errors.ts';
import { lgetxattr } from '../core/sys.ts';
import type { Mount } from '../snapshots/types.ts';

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

export async function layerChanges(ctx: Ctx, mounts: readonly Mount[], hidden: ReadonlySet<string>): Promise<Change[]> {
  const { upper, lowers } = layersOf(mounts);
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
      if (hidden.has(child) && ((st.isFile() && st.size === 0) || (st.isDirectory() && (await readdir(abs)).length === 0))) continue;
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

function layersOf(mounts: readonly Mount[]): { upper: string; lowers: string[] } {
  const m = mounts[0];
  if (m?.type === 'overlay') {
    const opt = (k: string) => m.options.find((o) => o.startsWith(`${k}=`))?.slice(k.length + 1);
    const upper = opt('upperdir');
    if (upper) return { upper, lowers: (opt('lowerdir') ?? '').split(':').filter(Boolean) };
  }
  // A container on an image without layers is a plain directory: everything in it was added.
  if (m?.type === 'bind' && mounts.length === 1) return { upper: m.source, lowers: [] };
  throw berthError('FailedPrecondition', 'diff needs a container on the overlayfs snapshotter');
}

function isOpaque(dir: string): boolean {
  try {
    return lgetxattr(dir, 'trusted.overlay.opaque').toString() === 'y';
  } catch {
    return false;
  }
}
