import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';

/**
 * Remove a directory tree, like `rm -rf`. A small tree (the usual task,
 * bundle or container-layer directory: a few dozen entries) is removed in
 * place, since node's asynchronous `rm` makes a thread-pool round trip per
 * entry and per step (lstat, readdir, unlink, rmdir), which costs far more
 * than the syscalls themselves. A larger tree, or one that cannot be walked,
 * is removed asynchronously so the event loop never stalls on it.
 * `maxBytes` also bounds the bytes of its files (freeing a large file's
 * blocks takes its time too). A missing directory is fine.
 */
export async function removeTree(dir: string, limits: { maxEntries?: number; maxBytes?: number } = {}): Promise<void> {
  if (isSmallTree(dir, limits.maxEntries ?? 256, limits.maxBytes)) {
    try {
      rmSync(dir, { recursive: true, force: true });
      return;
    } catch {
      // Retried below, where errors reach the caller.
    }
  }
  await rm(dir, { recursive: true, force: true });
}

/** Whether `dir` holds at most `maxEntries` entries (and `maxBytes` bytes of files) in all; walking stops past either. */
export function isSmallTree(dir: string, maxEntries: number, maxBytes = Infinity): boolean {
  let entriesLeft = maxEntries;
  let bytesLeft = maxBytes;
  const walk = (d: string): boolean => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR';
    }
    entriesLeft -= entries.length;
    if (entriesLeft < 0) return false;
    for (const e of entries) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory()) {
        if (!walk(p)) return false;
      } else if (bytesLeft !== Infinity && e.isFile()) {
        try {
          bytesLeft -= lstatSync(p).size;
        } catch {
          // Gone meanwhile.
        }
        if (bytesLeft < 0) return false;
      }
    }
    return true;
  };
  return walk(dir);
}
