import { readdirSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';

/**
 * Remove a directory tree, like `rm -rf`. A small tree (the usual task,
 * bundle or container-layer directory: a few dozen entries) is removed in
 * place, since node's asynchronous `rm` makes a thread-pool round trip per
 * entry and per step (lstat, readdir, unlink, rmdir), which costs far more
 * than the syscalls themselves. A larger tree, or one that cannot be walked,
 * is removed asynchronously so the event loop never stalls on it. A missing
 * directory is fine.
 */
export async function removeTree(dir: string, maxInPlace = 256): Promise<void> {
  if (isSmallTree(dir, maxInPlace)) {
    try {
      rmSync(dir, { recursive: true, force: true });
      return;
    } catch {
      // Retried below, where errors reach the caller.
    }
  }
  await rm(dir, { recursive: true, force: true });
}

/** Whether `dir` holds at most `limit` entries in all (walking stops as soon as it holds more). */
export function isSmallTree(dir: string, limit: number): boolean {
  let left = limit;
  const walk = (d: string): boolean => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR';
    }
    left -= entries.length;
    if (left < 0) return false;
    for (const e of entries) if (e.isDirectory() && !walk(`${d}/${e.name}`)) return false;
    return true;
  };
  return walk(dir);
}
