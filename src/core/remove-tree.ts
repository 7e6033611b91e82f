import { lstatSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { rm, rmdir, unlink } from 'node:fs/promises';

/**
 * Remove a directory tree, like `rm -rf`. A small tree (a few dozen
 * entries, as task, runtime-state and bundle directories are) on a tmpfs is
 * removed in place: node's asynchronous `rm` makes a thread-pool round trip
 * per entry and step (lstat, readdir, unlink, rmdir), which costs far more
 * than those syscalls on a tmpfs. On a journaled file system each unlink
 * may wait for the journal's commit, so there the asynchronous removal
 * (several entries at once, off the event loop) is faster; so it is for a
 * larger tree or one that cannot be walked. `maxBytes` also bounds the
 * bytes of its files. A missing directory is fine.
 */
export async function removeTree(dir: string, limits: { maxEntries?: number; maxBytes?: number } = {}): Promise<void> {
  const tree = walkSmallTree(dir, limits.maxEntries ?? 256, limits.maxBytes);
  if (tree && onTmpfs(dir)) {
    try {
      rmSync(dir, { recursive: true, force: true });
      return;
    } catch {
      // Retried below, where errors reach the caller.
    }
  } else if (tree) {
    // Every file at once, then the directories a level at a time, deepest first: a handful of
    // rounds where a recursive rm takes several per level.
    try {
      await Promise.all(tree.files.map((f) => unlink(f).catch(ignoreMissing)));
      for (const level of tree.dirs.reverse()) await Promise.all(level.map((d) => rmdir(d).catch(ignoreMissing)));
      return;
    } catch {
      // Something changed under us: the plain way below.
    }
  }
  await rm(dir, { recursive: true, force: true });
}

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}

/** Whether `dir` holds at most `maxEntries` entries (and `maxBytes` bytes of files) in all; a missing one is small. */
export function isSmallTree(dir: string, maxEntries: number, maxBytes = Infinity): boolean {
  return walkSmallTree(dir, maxEntries, maxBytes) !== undefined;
}

/**
 * The files and the directories (by depth, `dir` first) of a tree of at
 * most `maxEntries` entries and `maxBytes` bytes of files; undefined when it
 * is larger or cannot be read. A missing `dir` is an empty tree.
 */
function walkSmallTree(dir: string, maxEntries: number, maxBytes = Infinity): { files: string[]; dirs: string[][] } | undefined {
  let entriesLeft = maxEntries;
  let bytesLeft = maxBytes;
  const files: string[] = [];
  const dirs: string[][] = [];
  const walk = (d: string, depth: number): boolean => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT' && depth === 0;
    }
    (dirs[depth] ??= []).push(d);
    entriesLeft -= entries.length;
    if (entriesLeft < 0) return false;
    for (const e of entries) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory()) {
        if (!walk(p, depth + 1)) return false;
        continue;
      }
      files.push(p);
      if (bytesLeft !== Infinity && e.isFile()) {
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
  return walk(dir, 0) ? { files, dirs } : undefined;
}

const TMPFS_MAGIC = 0x01021994;

/** Whether `dir` lies on a tmpfs (false when it cannot be told, e.g. it does not exist). */
export function onTmpfs(dir: string): boolean {
  try {
    return statfsSync(dir).type === TMPFS_MAGIC;
  } catch {
    return false;
  }
}
