import {
  chmodSync, closeSync, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync,
  openSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeSync, constants as fsc,
} from 'node:fs';
import { berthError, wrap, hasErrno } from '../core/errors.ts';
import { S_IF, lsetxattr, makedev, mknod } from '../core/sys.ts';
import type { TarEntry } from '../core/tar-read.ts';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
const OVERLAY_XATTR = 'trusted.overlay.';
const MAX_SYMLINKS = 40;
const CREATE = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW;

/** Files up to this size are read whole (usually a slice of one decompressed chunk) and written with one call. */
const SMALL_FILE = 512 * 1024;

function writeAll(fd: number, data: Buffer): void {
  for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off);
}

/** Split a tar name into components, `.`/`..` resolved lexically; undefined if it climbs out. */
export function cleanPath(name: string): string[] | undefined {
  const absolute = name.startsWith('/');
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0) {
        // docker cleans "/../x" to "/x"; a relative name that climbs out is an escape.
        if (absolute) continue;
        return undefined;
      }
      out.pop();
      continue;
    }
    out.push(c);
  }
  return out;
}

interface DirTimes {
  path: string;
  atime: number;
  mtime: number;
}

/**
 * Writes tar entries into one directory (see applyLayer for the contract).
 *
 * File system calls are synchronous on purpose: each is a short call into
 * the page cache, and doing them in order on the main thread costs less
 * than a thread-pool round trip per call, while decompression (on the pool)
 * keeps running ahead of it.
 */
export class Extractor {
  readonly #root: string;
  readonly #plain: boolean;
  /** Relative paths known to be real directories (never symlinks). */
  readonly #dirs = new Set<string>(['']);
  /** Relative paths this layer wrote (for opaque directories in plain format). */
  readonly #written = new Set<string>();
  readonly #dirTimes: DirTimes[] = [];

  constructor(root: string, format: 'overlay' | 'plain') {
    this.#root = root.replace(/\/+$/, '') || '/';
    this.#plain = format === 'plain';
  }

  #abs(rel: string): string {
    return rel === '' ? this.#root : `${this.#root}/${rel}`;
  }

  /**
   * Resolve the directory `comps` names to a relative path of a real
   * directory, creating missing ones (0755, root-owned) when `create` is set.
   * Symlinks met on the way are followed only while they stay inside.
   */
  #resolveDir(comps: string[], create: boolean, depth = 0): string {
    let cur = '';
    for (let i = 0; i < comps.length; i++) {
      const next = cur === '' ? comps[i] : `${cur}/${comps[i]}`;
      if (this.#dirs.has(next)) {
        cur = next;
        continue;
      }
      let st;
      try {
        st = lstatSync(this.#abs(next));
      } catch (err) {
        if (!hasErrno(err, 'ENOENT') || !create) throw err;
        mkdirSync(this.#abs(next), 0o755);
        this.#dirs.add(next);
        this.#written.add(next);
        cur = next;
        continue;
      }
      if (st.isDirectory()) {
        this.#dirs.add(next);
        cur = next;
      } else if (st.isSymbolicLink()) {
        if (depth >= MAX_SYMLINKS) throw berthError('InvalidArgument', 'too many levels of symbolic links');
        const target = readlinkSync(this.#abs(next));
        if (target.startsWith('/')) throw berthError('InvalidArgument', `path goes through symlink "${next}" -> "${target}" which leads outside the snapshot`);
        const joined = cleanPath(`${cur}/${target}`.replace(/^\//, ''));
        if (joined === undefined) throw berthError('InvalidArgument', `path goes through symlink "${next}" -> "${target}" which leads outside the snapshot`);
        cur = this.#resolveDir(joined, create, depth + 1);
      } else {
        throw berthError('InvalidArgument', `"${next}" is not a directory`);
      }
    }
    return cur;
  }

  #forget(rel: string): void {
    // A known directory's descendants are known only through it (a symlink's are under its target).
    if (!this.#dirs.has(rel)) return;
    const prefix = `${rel}/`;
    for (const d of this.#dirs) if (d === rel || d.startsWith(prefix)) this.#dirs.delete(d);
  }

  #remove(rel: string): void {
    this.#forget(rel);
    rmSync(this.#abs(rel), { recursive: true, force: true });
  }

  /** Run `create`; if the path exists, remove what is there (never following it) and run it again. */
  #replace<T>(rel: string, create: () => T): T {
    try {
      return create();
    } catch (err) {
      if (!hasErrno(err, 'EEXIST')) throw err;
    }
    this.#remove(rel);
    return create();
  }

  async apply(e: TarEntry): Promise<void> {
    try {
      await this.#apply(e);
    } catch (err) {
      const name = e.path.length > 200 ? `${e.path.slice(0, 100)}...${e.path.slice(-60)}` : e.path;
      // A name longer than the kernel takes (PATH_MAX, or NAME_MAX per component) is the layer's fault.
      if (hasErrno(err, 'ENAMETOOLONG')) throw berthError('InvalidArgument', `layer entry "${name}" (${e.path.length} bytes): path too long to unpack`, err);
      throw wrap(err, `layer entry "${name}"`);
    }
  }

  async #apply(e: TarEntry): Promise<void> {
    const comps = cleanPath(e.path);
    if (comps === undefined) throw berthError('InvalidArgument', 'path escapes the snapshot');
    const base = comps.length ? comps[comps.length - 1] : '';
    const parent = this.#resolveDir(comps.slice(0, -1), true);

    if (base.startsWith(WHITEOUT)) {
      this.#whiteout(parent, base, e);
      return;
    }
    const rel = comps.length === 0 ? '' : parent === '' ? base : `${parent}/${base}`;
    const abs = this.#abs(rel);
    if (this.#plain) this.#written.add(rel);

    switch (e.type) {
      case 'directory': {
        if (rel !== '' && !this.#dirs.has(rel)) {
          this.#replace(rel, () => {
            try {
              mkdirSync(abs, 0o700);
            } catch (err) {
              if (hasErrno(err, 'EEXIST') && lstatSync(abs).isDirectory()) return;
              throw err;
            }
          });
          this.#dirs.add(rel);
        }
        lchownSync(abs, e.uid, e.gid);
        chmodSync(abs, e.mode);
        this.#xattrs(abs, e);
        this.#dirTimes.push({ path: abs, atime: e.atime ?? e.mtime, mtime: e.mtime });
        return;
      }
      case 'file': {
        const fd = this.#replace(rel, () => openSync(abs, CREATE, 0o600));
        try {
          if (e.size <= SMALL_FILE) writeAll(fd, await e.bytes());
          else for await (const chunk of e.chunks()) writeAll(fd, chunk);
          fchownSync(fd, e.uid, e.gid);
          fchmodSync(fd, e.mode);
          this.#xattrs(abs, e);
          futimesSync(fd, e.atime ?? e.mtime, e.mtime);
        } finally {
          closeSync(fd);
        }
        return;
      }
      case 'hardlink': {
        const target = this.#linkTarget(e.linkpath);
        this.#replace(rel, () => linkSync(this.#abs(target), abs));
        return;
      }
      case 'symlink':
        this.#replace(rel, () => symlinkSync(e.linkpath, abs));
        lchownSync(abs, e.uid, e.gid);
        this.#xattrs(abs, e);
        lutimesSync(abs, e.atime ?? e.mtime, e.mtime);
        return;
      case 'char':
      case 'block':
      case 'fifo': {
        const kind = e.type === 'char' ? S_IF.CHR : e.type === 'block' ? S_IF.BLK : S_IF.FIFO;
        const dev = e.type === 'fifo' ? 0n : makedev(e.devmajor, e.devminor);
        this.#replace(rel, () => mknod(abs, kind | 0o600, dev));
        lchownSync(abs, e.uid, e.gid);
        chmodSync(abs, e.mode);
        this.#xattrs(abs, e);
        lutimesSync(abs, e.atime ?? e.mtime, e.mtime);
        return;
      }
    }
  }

  #linkTarget(linkpath: string): string {
    const comps = cleanPath(linkpath);
    if (comps === undefined || comps.length === 0) throw berthError('InvalidArgument', `hard link target "${linkpath}" is outside the snapshot`);
    let dir: string;
    try {
      dir = this.#resolveDir(comps.slice(0, -1), false);
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) throw berthError('InvalidArgument', `hard link target "${linkpath}" is not in the layer`);
      throw err;
    }
    const rel = dir === '' ? comps[comps.length - 1] : `${dir}/${comps[comps.length - 1]}`;
    try {
      if (lstatSync(this.#abs(rel)).isDirectory()) throw berthError('InvalidArgument', `hard link target "${linkpath}" is a directory`);
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) throw berthError('InvalidArgument', `hard link target "${linkpath}" is not in the layer`);
      throw err;
    }
    return rel;
  }

  #whiteout(parent: string, base: string, e: TarEntry): void {
    if (base === OPAQUE) {
      if (this.#plain) this.#emptyExceptWritten(parent);
      else lsetxattr(this.#abs(parent), `${OVERLAY_XATTR}opaque`, 'y');
      return;
    }
    const name = base.slice(WHITEOUT.length);
    if (name === '' || name === '.' || name === '..') throw berthError('InvalidArgument', 'invalid whiteout name');
    const rel = parent === '' ? name : `${parent}/${name}`;
    if (this.#plain) {
      this.#remove(rel);
      return;
    }
    const abs = this.#abs(rel);
    this.#replace(rel, () => mknod(abs, S_IF.CHR, makedev(0, 0)));
    lchownSync(abs, e.uid, e.gid);
  }

  /** Plain-format opaque directory: drop everything under `dir` this layer did not write. */
  #emptyExceptWritten(dir: string): void {
    for (const d of readdirSync(this.#abs(dir), { withFileTypes: true })) {
      const rel = dir === '' ? d.name : `${dir}/${d.name}`;
      if (!this.#written.has(rel)) this.#remove(rel);
      else if (d.isDirectory()) this.#emptyExceptWritten(rel);
    }
  }

  #xattrs(abs: string, e: TarEntry): void {
    for (const [name, value] of e.xattrs) {
      // A layer must not forge overlay's own metadata (opaque, redirect, metacopy); whiteouts say that.
      if (name.startsWith(OVERLAY_XATTR)) continue;
      try {
        lsetxattr(abs, name, value);
      } catch (err) {
        // The kernel allows no user.* attributes on symlinks and devices; tar tools skip them too.
        if (!(hasErrno(err, 'EPERM') && name.startsWith('user.') && e.type !== 'file' && e.type !== 'directory')) throw err;
      }
    }
  }

  /** Directory times last, since writing into a directory changes its mtime. */
  finish(): void {
    for (let i = this.#dirTimes.length - 1; i >= 0; i--) {
      const d = this.#dirTimes[i];
      try {
        lutimesSync(d.path, d.atime, d.mtime);
      } catch (err) {
        // A later entry of the layer removed it.
        if (!hasErrno(err, 'ENOENT')) throw err;
      }
    }
  }
}
