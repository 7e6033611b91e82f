import { lstat, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { berthError, hasErrno } from '../core/errors.ts';

/**
 * Resolve `p` inside `root` as the container would see it: symlinks are
 * followed but evaluated relative to `root`, so a link to /etc/shadow or to
 * ../../x can never leave the rootfs (runc's securejoin, in spirit).
 */
export async function resolveInRoot(root: string, p: string): Promise<string> {
  const parts = p.split('/').filter((s) => s && s !== '.');
  const out: string[] = [];
  let hops = 0;
  // Past a missing component nothing can be a symlink: the rest is joined
  // lexically, still clamping `..` at the root.
  let missingAt = -1;
  while (parts.length) {
    const seg = parts.shift()!;
    if (seg === '..') {
      out.pop();
      // Climbing back above the missing component: the path exists again.
      if (out.length <= missingAt) missingAt = -1;
      continue;
    }
    if (missingAt >= 0) {
      out.push(seg);
      continue;
    }
    const candidate = path.join(root, ...out, seg);
    let st;
    try {
      st = await lstat(candidate);
    } catch (err) {
      if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ENOTDIR')) {
        missingAt = out.length;
        out.push(seg);
        continue;
      }
      throw err;
    }
    if (st.isSymbolicLink()) {
      if (++hops > 40) throw berthError('InvalidArgument', `too many levels of symbolic links resolving ${p}`);
      const target = await readlink(candidate);
      if (target.startsWith('/')) out.length = 0;
      parts.unshift(...target.split('/').filter((s) => s && s !== '.'));
      continue;
    }
    out.push(seg);
  }
  return path.join(root, ...out);
}

/** Read a small file of the rootfs (e.g. /etc/passwd); undefined when it does not exist. */
export async function readRootfsFile(root: string, p: string, maxBytes = 4 << 20): Promise<string | undefined> {
  const real = await resolveInRoot(root, p);
  try {
    const st = await lstat(real);
    if (!st.isFile()) return undefined;
    if (st.size > maxBytes) throw berthError('InvalidArgument', `${p} in the image is larger than ${maxBytes} bytes`);
    return await readFile(real, 'utf8');
  } catch (err) {
    if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ENOTDIR')) return undefined;
    throw err;
  }
}
