import { lstat, open, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { Ctx } from '../../core/context.ts';
import { berthError, hasErrno } from '../../core/errors.ts';
import { resolveUser } from './user.ts';
import type { ResolvedUser } from './user.ts';

/**
 * Reading files of a container's rootfs from the host without leaving it:
 * an image may ship /etc/passwd as a symlink to /../../etc/shadow of the
 * host. Paths are resolved component by component with every symlink taken
 * relative to the rootfs (the semantics of securejoin / openat2
 * RESOLVE_IN_ROOT), so ".." and absolute targets stop at the rootfs.
 */

const MAX_LINKS = 255;

/** The host path of `inner` inside `rootfs`, symlinks resolved within it. */
export async function resolveInRoot(ctx: Ctx, rootfs: string, inner: string): Promise<string> {
  const root = path.resolve(rootfs);
  const todo = inner.split('/').filter((s) => s && s !== '.');
  const done: string[] = [];
  let links = 0;
  // Past a missing component nothing can be a symlink: the rest is joined
  // lexically, still clamping `..` at the root.
  let missingAt = -1;
  while (todo.length) {
    ctx.signal.throwIfAborted();
    const part = todo.shift() as string;
    if (part === '..') {
      done.pop();
      // Climbing back above the missing component: the path exists again.
      if (done.length <= missingAt) missingAt = -1;
      continue;
    }
    if (missingAt >= 0) {
      done.push(part);
      continue;
    }
    const host = path.join(root, ...done, part);
    let st;
    try {
      st = await lstat(host);
    } catch (e) {
      if (hasErrno(e, 'ENOENT') || hasErrno(e, 'ENOTDIR')) {
        missingAt = done.length;
        done.push(part);
        continue;
      }
      throw e;
    }
    if (!st.isSymbolicLink()) {
      done.push(part);
      continue;
    }
    if (++links > MAX_LINKS) throw berthError('InvalidArgument', `${inner}: too many levels of symbolic links in the image`);
    const target = await readlink(host);
    if (target.startsWith('/')) done.length = 0;
    todo.unshift(...target.split('/').filter((s) => s && s !== '.'));
  }
  return path.join(root, ...done);
}

/** A regular file of the rootfs, or undefined when it is missing; at most `maxBytes`. */
export async function readRootfsFile(ctx: Ctx, rootfs: string, inner: string, maxBytes = 4 << 20): Promise<string | undefined> {
  const host = await resolveInRoot(ctx, rootfs, inner);
  let fh;
  try {
    fh = await open(host, 'r');
  } catch (e) {
    if (hasErrno(e, 'ENOENT') || hasErrno(e, 'ENOTDIR')) return undefined;
    throw e;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return undefined;
    if (st.size > maxBytes) throw berthError('InvalidArgument', `${inner} in the image is larger than ${maxBytes} bytes`);
    return await fh.readFile({ encoding: 'utf8', signal: ctx.signal });
  } finally {
    await fh.close();
  }
}

/** resolveUser against the rootfs's own /etc/passwd and /etc/group. */
export async function resolveUserInRootfs(ctx: Ctx, rootfs: string, user: string | undefined, groupAdd?: readonly string[], opts: { memberGroupsAlways?: boolean } = {}): Promise<ResolvedUser> {
  const [passwd, group] = await Promise.all([readRootfsFile(ctx, rootfs, '/etc/passwd'), readRootfsFile(ctx, rootfs, '/etc/group')]);
  return resolveUser({ user, groupAdd, passwd, group, memberGroupsAlways: opts.memberGroupsAlways });
}
