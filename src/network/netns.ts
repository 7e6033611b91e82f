import { readdir, rm } from 'node:fs/promises';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Ctx } from '../core/context.ts';
import { berthError, hasErrno } from '../core/errors.ts';
import { createNetnsFile, MNT, umount2 } from '../core/sys.ts';
import { mountPoints } from '../snapshots/mount.ts';

/**
 * Network namespaces kept as files: `<dir>/<id>` is an nsfs bind mount that
 * holds the namespace alive with no process in it (what `ip netns add` and
 * CRI runtimes do). The namespace is made in-process by core/sys.ts
 * (unshare(2) on the calling thread, loopback up, bind mount, setns(2)
 * back), which costs microseconds where a child process (`unshare`, then
 * the CNI loopback plugin) cost tens of milliseconds per container.
 * Removal is umount + unlink; the kernel frees the namespace (and the
 * container end of every veth in it) once nothing else holds it.
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
  // A file can be mounted more than once (a racing create); unmount until it is not.
  for (let i = 0; i < 8 && isMounted(file); i++) {
    try {
      umount2(file, i < 4 ? 0 : MNT.DETACH);
    } catch (err) {
      if (!hasErrno(err, 'EINVAL') && !hasErrno(err, 'ENOENT') && !hasErrno(err, 'EBUSY')) throw err;
    }
  }
  await rm(file, { force: true });
}

/** True when `file` is a mount point in berthd's mount namespace. */
export function isMounted(file: string): boolean {
  for (const p of mountPoints()) if (p === file) return true;
  return false;
}
