import { constants as fsc, lstatSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

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
  try {
    await rm(dir, { recursive: true, force: true });
  } catch (err) {
    // node's recursive rm names every entry by its full path, which a deep enough tree makes
    // longer than PATH_MAX (a hostile layer can nest thousands of directories).
    if ((err as NodeJS.ErrnoException).code !== 'ENAMETOOLONG') throw err;
    await removeTreeAt(dir);
  }
}

const DIR_FLAGS = fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW;

/** A name inside the directory open on `fd`: a short path however deep that directory lies. */
function at(fd: number, name: string): string {
  return `/proc/self/fd/${fd}/${name}`;
}

/**
 * Remove a tree of any depth, `rm -rf --one-file-system` style, naming every
 * entry relative to a descriptor of its directory (as unlinkat(2) would,
 * through /proc/self/fd), so no path ever grows with the depth. One
 * directory is open at a time: it climbs back through `..`, so a tree
 * thousands of levels deep costs no more descriptors than a flat one. A
 * directory on another file system (a mount point) is not entered: that
 * fails with EBUSY, naming it, and what it shows stays untouched. Symlinks
 * are removed, never followed. A missing `dir` is fine.
 */
export async function removeTreeAt(dir: string): Promise<void> {
  let cur: FileHandle;
  try {
    cur = await open(dir, DIR_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    // Not a directory (or a symlink to one): the entry itself goes.
    if (code === 'ENOTDIR' || code === 'ELOOP') return unlink(dir).catch(ignoreMissing);
    throw err;
  }
  const dev = (await cur.stat()).dev;
  const names: string[] = [];
  try {
    for (;;) {
      const entries = await readdir(`/proc/self/fd/${cur.fd}`, { withFileTypes: true });
      const fd = cur.fd;
      await Promise.all(entries.filter((e) => !e.isDirectory()).map((e) => unlink(at(fd, e.name)).catch(ignoreMissing)));
      let full: string | undefined;
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        try {
          await rmdir(at(fd, e.name));
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') continue;
          if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
          full = e.name;
          break;
        }
      }
      if (full !== undefined) {
        const child = await open(at(fd, full), DIR_FLAGS);
        if ((await child.stat()).dev !== dev) {
          await child.close();
          const err = new Error(`EBUSY: a mount point inside the tree, "${full}" under ${dir}`) as NodeJS.ErrnoException;
          err.code = 'EBUSY';
          err.path = dir;
          throw err;
        }
        await cur.close();
        cur = child;
        names.push(full);
        continue;
      }
      const name = names.pop();
      if (name === undefined) break;
      const parent = await open(at(fd, '..'), DIR_FLAGS);
      await cur.close();
      cur = parent;
      await rmdir(at(cur.fd, name)).catch(ignoreMissing);
    }
  } finally {
    await cur.close().catch(() => {});
  }
  await rmdir(dir).catch(ignoreMissing);
}

/** What `removeOrSetAside` did with a tree it could not remove. */
export interface SetAside {
  /** Why the removal failed. */
  error: unknown;
  /** Where the tree went, or undefined when it could not even be moved (it stays where it was). */
  movedTo?: string;
}

/**
 * Remove `target`; when that fails, move it into `trash` (a directory on
 * the same file system, made when needed) under a fresh name, so the
 * caller can go on and a later start (`emptyTrash`) tries again. Resolves
 * to undefined once `target` is gone, else to what happened, for the caller
 * to log: a start-up clean-up must never stop the daemon over one tree it
 * cannot remove.
 */
export async function removeOrSetAside(target: string, trash: string): Promise<SetAside | undefined> {
  try {
    await removeTree(target);
    return undefined;
  } catch (error) {
    const movedTo = path.join(trash, `${path.basename(target)}-${randomBytes(4).toString('hex')}`);
    try {
      await mkdir(trash, { recursive: true, mode: 0o700 });
      await rename(target, movedTo);
      return { error, movedTo };
    } catch {
      return { error };
    }
  }
}

/** Try again to remove what `removeOrSetAside` moved into `trash`; resolves to what still cannot go, with why. */
export async function emptyTrash(trash: string): Promise<{ path: string; error: unknown }[]> {
  let names: string[];
  try {
    names = await readdir(trash);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    return [{ path: trash, error: err }];
  }
  const left: { path: string; error: unknown }[] = [];
  for (const name of names) {
    const p = path.join(trash, name);
    try {
      await removeTree(p);
    } catch (error) {
      left.push({ path: p, error });
    }
  }
  return left;
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
