import { readdir, unlink } from 'node:fs/promises';
import { mkdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Ctx } from '../core/context.ts';
import { berthError, hasErrno } from '../core/errors.ts';
import { createNetnsFile, MNT, umount2Async } from '../core/sys.ts';

/**
 * Network namespaces kept as files: `<dir>/<id>` is an nsfs bind mount that
 * holds the namespace alive with no process in it (what `ip netns add` and
 * CRI runtimes do). The namespace is made in-process by core/sys.ts
 * (unshare(2) on the calling thread, loopback up, bind mount, setns(2)
 * back), which costs microseconds where a child process (`unshare`, then
 * the CNI loopback plugin) cost tens of milliseconds per container.
 * Removal is umount + unlink; the kernel frees the namespace (and the
 * container end of every veth in it) once nothing else holds it. Neither
 * reads the mount table: a namespace is known mounted by its file system
 * type (nsfs), and an unmount is repeated until the kernel says nothing is
 * mounted there (EINVAL). Parsing /proc/self/mountinfo cost more than the
 * rest of both together, growing with every mount on the host.
 */
export class NetnsStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  pathOf(id: string): string {
    return path.join(this.dir, id);
  }

  /** Create the namespace file for `id`; AlreadyExists if it is mounted already. */
  async create(ctx: Ctx, id: string): Promise<string> {
    if (!/^[A-Za-z0-9_.-]+$/.test(id)) throw berthError('InvalidArgument', `invalid netns id "${id}"`);
    // On every container start, and each step costs microseconds: done in place, not through the thread pool.
    mkdirSync(this.dir, { recursive: true, mode: 0o711 });
    const file = this.pathOf(id);
    if (isMounted(file)) throw berthError('AlreadyExists', `network namespace ${file} already exists`);
    writeFileSync(file, '', { mode: 0o644 });
    try {
      createNetnsFile(file);
    } catch (err) {
      rmSync(file, { force: true });
      throw berthError('Unknown', `create network namespace ${file}: ${(err as Error).message}`, err);
    }
    return file;
  }

  /** Unmount and unlink; a missing namespace is not an error. */
  async remove(ctx: Ctx, id: string): Promise<void> {
    await removeNetnsFile(ctx, this.pathOf(id));
  }

  /** Ids of every namespace file in the directory. */
  async list(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((n) => !n.startsWith('.'));
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) return [];
      throw err;
    }
  }
}

export async function removeNetnsFile(_ctx: Ctx, file: string): Promise<void> {
  // A file can be mounted more than once (a racing create): unmount until nothing is (EINVAL).
  // Off the event loop: an unmount waits for the mount table's lock, which other mounts on a busy
  // host hold for milliseconds.
  for (let i = 0; i < 8; i++) {
    try {
      await umount2Async(file, i < 4 ? 0 : MNT.DETACH);
    } catch (err) {
      if (hasErrno(err, 'EINVAL') || hasErrno(err, 'ENOENT')) break;
      if (!hasErrno(err, 'EBUSY')) throw err;
    }
  }
  await unlink(file).catch((err: unknown) => {
    if (!hasErrno(err, 'ENOENT')) throw err;
  });
}

const NSFS_MAGIC = 0x6e736673;

/** True when a namespace is mounted on `file` (what the file system there says: nsfs). */
export function isMounted(file: string): boolean {
  try {
    return statfsSync(file).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}
