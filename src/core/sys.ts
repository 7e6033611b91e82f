import { closeSync, existsSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { getSystemErrorMap } from 'node:util';
import type Koffi from 'koffi';

/**
 * The Linux syscalls Node lacks, through libc via the `koffi` FFI. This is the
 * only module that touches native code.
 *
 * Contract of every wrapper: check the arguments, make exactly one call, and
 * either return its result or throw an Error shaped like a node:fs error
 * (`code` such as 'ENOENT', negative `errno`, `syscall`, `path`, and `dest`
 * where a call has two paths). No policy and no logging: the caller knows
 * what ENOENT means in its situation and picks the error kind.
 *
 * koffi and libc load on first use, so importing core/ stays cheap for the
 * CLI. All calls are synchronous; each is a single short syscall.
 */

/** mount(2) flags (linux/mount.h). */
export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  SYNCHRONOUS: 0x10,
  REMOUNT: 0x20,
  MANDLOCK: 0x40,
  DIRSYNC: 0x80,
  NOSYMFOLLOW: 0x100,
  NOATIME: 0x400,
  NODIRATIME: 0x800,
  BIND: 0x1000,
  MOVE: 0x2000,
  REC: 0x4000,
  SILENT: 0x8000,
  UNBINDABLE: 0x20000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
  SHARED: 0x100000,
  RELATIME: 0x200000,
  STRICTATIME: 0x1000000,
} as const;

/** umount2(2) flags. */
export const MNT = { FORCE: 0x1, DETACH: 0x2, EXPIRE: 0x4, NOFOLLOW: 0x8 } as const;

/** The new mount API (fsopen, fsconfig, fsmount, move_mount; linux/mount.h). */
export const FSOPEN_CLOEXEC = 0x1;
export const FSMOUNT_CLOEXEC = 0x1;
export const FSCONFIG = { SET_FLAG: 0, SET_STRING: 1, CMD_CREATE: 6 } as const;
export const MOUNT_ATTR = { RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, NOATIME: 0x10, STRICTATIME: 0x20, NODIRATIME: 0x80 } as const;
export const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
const AT_FDCWD = -100;

/** File type bits of st_mode, for mknod. */
export const S_IF = { MT: 0o170000, SOCK: 0o140000, LNK: 0o120000, REG: 0o100000, BLK: 0o060000, DIR: 0o040000, CHR: 0o020000, FIFO: 0o010000 } as const;

/** setxattr(2) flags. */
export const XATTR = { CREATE: 0x1, REPLACE: 0x2 } as const;

interface Libc {
  mount: (source: string | null, target: string, fstype: string | null, flags: number, data: string | null) => number;
  umount2: (target: string, flags: number) => number;
  syncfs: (fd: number) => number;
  mknod: (path: string, mode: number, dev: bigint) => number;
  lsetxattr: (path: string, name: string, value: Buffer, size: number, flags: number) => number;
  lgetxattr: (path: string, name: string, value: Buffer | null, size: number) => number;
  llistxattr: (path: string, list: Buffer | null, size: number) => number;
  lremovexattr: (path: string, name: string) => number;
  fsopen: (fsname: string, flags: number) => number;
  fsconfig: (fd: number, cmd: number, key: string | null, value: string | null, aux: number) => number;
  fsmount: (fd: number, flags: number, attrs: number) => number;
  move_mount: (fromDfd: number, fromPath: string, toDfd: number, toPath: string, flags: number) => number;
  unshare: (flags: number) => number;
  setns: (fd: number, nstype: number) => number;
  socket: (domain: number, type: number, protocol: number) => number;
  ioctl: (fd: number, req: number, ...args: unknown[]) => number;
  close: (fd: number) => number;
  pipe2: (fds: Buffer, flags: number) => number;
  posix_spawn: (pid: Buffer, path: string, actions: Buffer, attr: Buffer, argv: (string | null)[], envp: (string | null)[]) => number;
  posix_spawn_file_actions_init: (a: Buffer) => number;
  posix_spawn_file_actions_destroy: (a: Buffer) => number;
  posix_spawn_file_actions_adddup2: (a: Buffer, fd: number, newfd: number) => number;
  posix_spawn_file_actions_addopen: (a: Buffer, fd: number, path: string, oflag: number, mode: number) => number;
  posix_spawnattr_init: (a: Buffer) => number;
  posix_spawnattr_destroy: (a: Buffer) => number;
  posix_spawnattr_setflags: (a: Buffer, flags: number) => number;
  posix_spawnattr_setsigdefault: (a: Buffer, set: Buffer) => number;
  posix_spawnattr_setsigmask: (a: Buffer, set: Buffer) => number;
  sigfillset: (set: Buffer) => number;
  sigemptyset: (set: Buffer) => number;
  waitpid: (pid: number, status: Buffer, options: number) => number;
  malloc_trim: (pad: number) => number;
  getsockopt: (fd: number, level: number, name: number, value: Buffer, len: Buffer) => number;
  pidfd_open: (pid: number, flags: number) => number;
  pidfd_getfd: (pidfd: number, targetfd: number, flags: number) => number;
  fcntl: (fd: number, cmd: number, ...args: unknown[]) => number;
  poll: (fds: Buffer, nfds: number, timeout: number) => number;
  syscall: (nr: number, ...args: unknown[]) => number;
  errno: () => number;
}

let libc: Libc | undefined;

/**
 * koffi's native module itself where the package ships one for this
 * platform. The package's entry also loads its prebuilt-binary downloader,
 * which requires node:https and node:zlib: every berthd paid for TLS (~7 ms
 * of start, ~4.7 MiB of RSS) at its overlayfs check. The entry adds only
 * deprecated aliases around the same object; the version check is its own.
 */
function loadKoffi(): typeof Koffi {
  const req = createRequire(import.meta.url);
  const pkgDir = path.dirname(req.resolve('koffi/package.json'));
  const native = path.join(pkgDir, 'build', 'koffi', `${process.platform}_${process.arch}`, 'koffi.node');
  const pkg = req('koffi/package.json') as { version: string };
  if (existsSync(native)) {
    const mod = req(native) as typeof Koffi & { version?: string };
    if (mod.version === pkg.version) return mod;
  }
  return req('koffi') as typeof Koffi;
}

function load(): Libc {
  if (libc) return libc;
  const koffi = loadKoffi();
  const lib = koffi.load('libc.so.6');
  libc = {
    mount: lib.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
    umount2: lib.func('int umount2(const char *target, int flags)'),
    syncfs: lib.func('int syncfs(int fd)'),
    mknod: lib.func('int mknod(const char *path, uint32_t mode, uint64_t dev)'),
    lsetxattr: lib.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)'),
    lgetxattr: lib.func('intptr_t lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)'),
    llistxattr: lib.func('intptr_t llistxattr(const char *path, _Out_ void *list, size_t size)'),
    lremovexattr: lib.func('int lremovexattr(const char *path, const char *name)'),
    fsopen: lib.func('int fsopen(const char *fsname, unsigned int flags)'),
    fsconfig: lib.func('int fsconfig(int fd, unsigned int cmd, const char *key, const char *value, int aux)'),
    fsmount: lib.func('int fsmount(int fd, unsigned int flags, unsigned int attrs)'),
    move_mount: lib.func('int move_mount(int from_dfd, const char *from_path, int to_dfd, const char *to_path, unsigned int flags)'),
    unshare: lib.func('int unshare(int flags)'),
    setns: lib.func('int setns(int fd, int nstype)'),
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    ioctl: lib.func('int ioctl(int fd, unsigned long req, ...)'),
    close: lib.func('int close(int fd)'),
    pipe2: lib.func('int pipe2(void *fds, int flags)'),
    posix_spawn: lib.func('int posix_spawn(void *pid, const char *path, void *actions, void *attr, const char **argv, const char **envp)'),
    posix_spawn_file_actions_init: lib.func('int posix_spawn_file_actions_init(void *a)'),
    posix_spawn_file_actions_destroy: lib.func('int posix_spawn_file_actions_destroy(void *a)'),
    posix_spawn_file_actions_adddup2: lib.func('int posix_spawn_file_actions_adddup2(void *a, int fd, int newfd)'),
    posix_spawn_file_actions_addopen: lib.func('int posix_spawn_file_actions_addopen(void *a, int fd, const char *path, int oflag, uint32_t mode)'),
    posix_spawnattr_init: lib.func('int posix_spawnattr_init(void *a)'),
    posix_spawnattr_destroy: lib.func('int posix_spawnattr_destroy(void *a)'),
    posix_spawnattr_setflags: lib.func('int posix_spawnattr_setflags(void *a, short flags)'),
    posix_spawnattr_setsigdefault: lib.func('int posix_spawnattr_setsigdefault(void *a, void *set)'),
    posix_spawnattr_setsigmask: lib.func('int posix_spawnattr_setsigmask(void *a, void *set)'),
    sigfillset: lib.func('int sigfillset(void *set)'),
    sigemptyset: lib.func('int sigemptyset(void *set)'),
    waitpid: lib.func('int waitpid(int pid, void *status, int options)'),
    malloc_trim: lib.func('int malloc_trim(size_t pad)'),
    getsockopt: lib.func('int getsockopt(int fd, int level, int name, _Inout_ void *value, _Inout_ void *len)'),
    pidfd_open: lib.func('int pidfd_open(int pid, unsigned int flags)'),
    pidfd_getfd: lib.func('int pidfd_getfd(int pidfd, int targetfd, unsigned int flags)'),
    fcntl: lib.func('int fcntl(int fd, int cmd, ...)'),
    poll: lib.func('int poll(_Inout_ void *fds, unsigned long nfds, int timeout)'),
    syscall: lib.func('long syscall(long nr, ...)'),
    errno: () => koffi.errno(),
  };
  return libc;
}

/** An Error shaped like node:fs errors for `errno` (positive, as libc sets it). */
export function errnoError(errno: number, syscall: string, path?: string, dest?: string): NodeJS.ErrnoException {
  const [code, desc] = getSystemErrorMap().get(-errno) ?? [`E${errno}`, `errno ${errno}`];
  let message = `${code}: ${desc}, ${syscall}`;
  if (path !== undefined) message += ` '${path}'`;
  if (dest !== undefined) message += ` -> '${dest}'`;
  const err = new Error(message) as NodeJS.ErrnoException & { dest?: string };
  err.errno = -errno;
  err.code = code;
  err.syscall = syscall;
  if (path !== undefined) err.path = path;
  if (dest !== undefined) err.dest = dest;
  Error.captureStackTrace(err, errnoError);
  return err;
}

function checkPath(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || value.includes('\0')) {
    throw new TypeError(`${name} must be a non-empty string without NUL bytes`);
  }
}

function checkInt(name: string, value: unknown, max = 0xffffffff): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new TypeError(`${name} must be an integer in [0, ${max}]`);
  }
}

/** mount(2). `source` and `fstype` may be null (bind remounts, propagation changes). */
export function mount(source: string | null, target: string, fstype: string | null, flags: number, data?: string | null): void {
  if (source !== null) checkPath('source', source);
  checkPath('target', target);
  if (fstype !== null) checkPath('fstype', fstype);
  checkInt('flags', flags);
  if (data != null && (typeof data !== 'string' || data.includes('\0'))) throw new TypeError('data must be a string without NUL bytes');
  const c = load();
  if (c.mount(source, target, fstype, flags, data ?? null) !== 0) throw errnoError(c.errno(), 'mount', source ?? undefined, target);
}

/**
 * umount2(2) on a libuv worker thread: unmounting an overlay syncs its
 * upper file system, tens of milliseconds that must not stall the event
 * loop. A worker's errno is not ours to read, so a failure is repeated here
 * to learn it (a failing umount2 returns at once).
 */
export function umount2Async(target: string, flags = 0): Promise<void> {
  checkPath('target', target);
  checkInt('flags', flags);
  const fn = load().umount2 as unknown as { async: (t: string, f: number, cb: (err: unknown, res: number) => void) => void };
  return new Promise((resolve, reject) => {
    fn.async(target, flags, (err, res) => {
      if (err) return reject(err instanceof Error ? err : new Error(String(err)));
      if (res === 0) return resolve();
      try {
        umount2(target, flags);
        resolve();
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  });
}

/** umount2(2). */
export function umount2(target: string, flags = 0): void {
  checkPath('target', target);
  checkInt('flags', flags);
  const c = load();
  if (c.umount2(target, flags) !== 0) throw errnoError(c.errno(), 'umount2', target);
}

/**
 * syncfs(2) on a libuv worker thread: it waits for the file system's dirty
 * data to reach the disk, up to seconds, which must not stall the event
 * loop. As for umount2Async, a failure is repeated here to learn its errno.
 */
export function syncfsAsync(fd: number): Promise<void> {
  checkInt('fd', fd, 0x7fffffff);
  const fn = load().syncfs as unknown as { async: (fd: number, cb: (err: unknown, res: number) => void) => void };
  return new Promise((resolve, reject) => {
    fn.async(fd, (err, res) => {
      if (err) return reject(err instanceof Error ? err : new Error(String(err)));
      if (res === 0) return resolve();
      const c = load();
      if (c.syncfs(fd) === 0) resolve();
      else reject(errnoError(c.errno(), 'syncfs'));
    });
  });
}

/** glibc's makedev: the dev_t of a device number pair. */
export function makedev(major: number, minor: number): bigint {
  checkInt('major', major);
  checkInt('minor', minor);
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

/** mknod(2): `mode` includes the file type (S_IF.CHR, S_IF.BLK, S_IF.FIFO, ...); the umask applies. */
export function mknod(path: string, mode: number, dev: bigint = 0n): void {
  checkPath('path', path);
  checkInt('mode', mode, 0o177777);
  if (typeof dev !== 'bigint' || dev < 0n) throw new TypeError('dev must be a non-negative bigint');
  const c = load();
  if (c.mknod(path, mode, dev) !== 0) throw errnoError(c.errno(), 'mknod', path);
}

function checkXattrName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.includes('\0') || !name.includes('.')) {
    throw new TypeError('xattr name must be "namespace.name" without NUL bytes');
  }
}

/** lsetxattr(2): set `name` on `path` itself (symlinks are not followed). */
export function lsetxattr(path: string, name: string, value: Uint8Array | string, flags = 0): void {
  checkPath('path', path);
  checkXattrName(name);
  checkInt('flags', flags);
  const buf = typeof value === 'string' ? Buffer.from(value) : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const c = load();
  if (c.lsetxattr(path, name, buf, buf.length, flags) !== 0) throw errnoError(c.errno(), 'lsetxattr', path);
}

/** lgetxattr(2): the value of `name`; throws ENODATA when the attribute is absent. */
export function lgetxattr(path: string, name: string): Buffer {
  checkPath('path', path);
  checkXattrName(name);
  const c = load();
  // Sized by a first guess; ERANGE means the value grew or is larger, so ask the size and retry once.
  let buf = Buffer.allocUnsafe(256);
  let n = c.lgetxattr(path, name, buf, buf.length);
  if (n < 0 && c.errno() === 34 /* ERANGE */) {
    n = c.lgetxattr(path, name, null, 0);
    if (n >= 0) {
      buf = Buffer.allocUnsafe(n);
      n = c.lgetxattr(path, name, buf, buf.length);
    }
  }
  if (n < 0) throw errnoError(c.errno(), 'lgetxattr', path);
  return Buffer.from(buf.subarray(0, n));
}

/** llistxattr(2): the attribute names of `path` itself. */
export function llistxattr(path: string): string[] {
  checkPath('path', path);
  const c = load();
  let buf = Buffer.allocUnsafe(1024);
  let n = c.llistxattr(path, buf, buf.length);
  if (n < 0 && c.errno() === 34 /* ERANGE */) {
    n = c.llistxattr(path, null, 0);
    if (n >= 0) {
      buf = Buffer.allocUnsafe(n);
      n = c.llistxattr(path, buf, buf.length);
    }
  }
  if (n < 0) throw errnoError(c.errno(), 'llistxattr', path);
  return n === 0 ? [] : buf.toString('latin1', 0, n).split('\0').filter(Boolean).map((s) => Buffer.from(s, 'latin1').toString());
}

/** lremovexattr(2). */
export function lremovexattr(path: string, name: string): void {
  checkPath('path', path);
  checkXattrName(name);
  const c = load();
  if (c.lremovexattr(path, name) !== 0) throw errnoError(c.errno(), 'lremovexattr', path);
}

/** fsopen(2): a file-system context fd for `fsname`; close it with fs.closeSync. */
export function fsopen(fsname: string, flags = FSOPEN_CLOEXEC): number {
  checkPath('fsname', fsname);
  checkInt('flags', flags);
  const c = load();
  const fd = c.fsopen(fsname, flags);
  if (fd < 0) throw errnoError(c.errno(), 'fsopen', fsname);
  return fd;
}

/**
 * fsconfig(2) for the commands that take no fd or binary value:
 * SET_FLAG (key only), SET_STRING (key and value) and CMD_CREATE (neither).
 * Unlike mount(2)'s one-page data string, each value may be a full path.
 */
export function fsconfig(fd: number, cmd: number, key: string | null = null, value: string | null = null): void {
  checkInt('fd', fd, 0x7fffffff);
  checkInt('cmd', cmd);
  if (key !== null) checkPath('key', key);
  if (value !== null && (typeof value !== 'string' || value.includes('\0'))) throw new TypeError('value must be a string without NUL bytes');
  const c = load();
  if (c.fsconfig(fd, cmd, key, value, 0) !== 0) throw errnoError(c.errno(), 'fsconfig', key ?? undefined);
}

/** fsmount(2): a detached mount fd for a created context; `attrs` are MOUNT_ATTR flags. */
export function fsmount(fd: number, flags = FSMOUNT_CLOEXEC, attrs = 0): number {
  checkInt('fd', fd, 0x7fffffff);
  checkInt('flags', flags);
  checkInt('attrs', attrs);
  const c = load();
  const mfd = c.fsmount(fd, flags, attrs);
  if (mfd < 0) throw errnoError(c.errno(), 'fsmount');
  return mfd;
}

/** move_mount(2) of the detached mount `fd` onto `target` (MOVE_MOUNT_F_EMPTY_PATH). */
export function moveMount(fd: number, target: string): void {
  checkInt('fd', fd, 0x7fffffff);
  checkPath('target', target);
  const c = load();
  if (c.move_mount(fd, '', AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) !== 0) throw errnoError(c.errno(), 'move_mount', target);
}

const CLONE_NEWNET = 0x40000000;
const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const IFF_UP = 0x1;

/**
 * A new network namespace, its loopback up, kept alive by a bind mount on
 * `file` (an existing empty file), made without a child process: what
 * `unshare --net=FILE` plus the CNI loopback plugin do, in a few syscalls.
 * Namespaces belong to threads, so the calling thread alone enters the new
 * namespace and returns to its own before this returns; it all runs
 * synchronously, so no other JavaScript (nor any I/O of this thread) runs
 * in between.
 */
export function createNetnsFile(file: string): void {
  checkPath('file', file);
  const c = load();
  const own = openSync('/proc/thread-self/ns/net', 'r');
  try {
    if (c.unshare(CLONE_NEWNET) !== 0) throw errnoError(c.errno(), 'unshare', file);
    try {
      loopbackUp(c);
      if (c.mount('/proc/thread-self/ns/net', file, null, MS.BIND, null) !== 0) throw errnoError(c.errno(), 'mount', '/proc/thread-self/ns/net', file);
    } finally {
      // Staying in the new namespace would move every later socket of this thread: that must never happen.
      if (c.setns(own, CLONE_NEWNET) !== 0) {
        process.stderr.write(`fatal: cannot return to the original network namespace: errno ${c.errno()}\n`);
        process.abort();
      }
    }
  } finally {
    closeSync(own);
  }
}

const AF_NETLINK = 16;
const NETLINK_ROUTE = 0;
const SOCK_RAW_NONBLOCK_CLOEXEC = 3 | 0o4000 | 0o2000000;

/**
 * A route netlink socket (non-blocking, close-on-exec) of the network
 * namespace mounted on `file`: a socket belongs to the namespace it was made
 * in, so the calling thread enters that namespace for the socket(2) call
 * alone and returns to its own before anything else runs. Requests written
 * to it act in that namespace from any thread; the caller closes it.
 */
export function netlinkRouteSocketIn(file: string): number {
  checkPath('file', file);
  const c = load();
  const own = openSync('/proc/thread-self/ns/net', 'r');
  try {
    const target = openSync(file, 'r');
    try {
      if (c.setns(target, CLONE_NEWNET) !== 0) throw errnoError(c.errno(), 'setns', file);
    } finally {
      closeSync(target);
    }
    const fd = c.socket(AF_NETLINK, SOCK_RAW_NONBLOCK_CLOEXEC, NETLINK_ROUTE);
    const errno = fd < 0 ? c.errno() : 0;
    if (c.setns(own, CLONE_NEWNET) !== 0) {
      process.stderr.write(`fatal: cannot return to the original network namespace: errno ${c.errno()}\n`);
      process.abort();
    }
    if (fd < 0) throw errnoError(errno, 'socket', file);
    return fd;
  } finally {
    closeSync(own);
  }
}

function loopbackUp(c: Libc): void {
  const fd = c.socket(2 /* AF_INET */, 2 | 0o2000000 /* SOCK_DGRAM | SOCK_CLOEXEC */, 0);
  if (fd < 0) throw errnoError(c.errno(), 'socket');
  try {
    const ifr = Buffer.alloc(40);
    ifr.write('lo', 0, 'latin1');
    if (c.ioctl(fd, SIOCGIFFLAGS, 'void *', ifr) !== 0) throw errnoError(c.errno(), 'ioctl SIOCGIFFLAGS', 'lo');
    ifr.writeUInt16LE(ifr.readUInt16LE(16) | IFF_UP, 16);
    if (c.ioctl(fd, SIOCSIFFLAGS, 'void *', ifr) !== 0) throw errnoError(c.errno(), 'ioctl SIOCSIFFLAGS', 'lo');
  } finally {
    c.close(fd);
  }
}

const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const O_CLOEXEC = 0o2000000;

/**
 * Start `file` with stdin, stdout and stderr on /dev/null and fd 3 the write
 * end of a new pipe, whose read end is returned; signals default, none
 * blocked. posix_spawn(3) starts the child with vfork semantics, where
 * Node's spawn forks berthd's whole address space first: tens of
 * milliseconds on the event loop for every container start. The caller
 * must reap the child with `childStatusAsync`.
 */
export async function spawnWithSyncPipe(file: string, args: string[]): Promise<{ pid: number; syncFd: number }> {
  checkPath('file', file);
  const c = load();
  const [rd, wr] = pipePair(c);
  try {
    const env = Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ''}`);
    const pid = await posixSpawn(c, file, args, env, (actions) => {
      for (const fd of [0, 1, 2]) c.posix_spawn_file_actions_addopen(actions, fd, '/dev/null', 2 /* O_RDWR */, 0);
      c.posix_spawn_file_actions_adddup2(actions, wr, 3);
    });
    return { pid, syncFd: rd };
  } catch (err) {
    c.close(rd);
    throw err;
  } finally {
    c.close(wr);
  }
}

/**
 * Start `file` with exactly `env` and its stdin, stdout and stderr on three
 * new pipes; returns the parent's ends (close-on-exec, for the caller to
 * wrap, e.g. in a net.Socket, and close). Signals default, none blocked.
 * posix_spawn(3) for the reason spawnWithSyncPipe gives: Node's spawn
 * blocks the event loop for several milliseconds per child (tens on a
 * loaded host), and short-lived helpers (CNI plugins, iptables-restore)
 * run on every container start. The caller must reap the child with
 * `childStatusAsync`.
 */
export async function spawnPiped(file: string, args: string[], env: Record<string, string>): Promise<{ pid: number; stdin: number; stdout: number; stderr: number }> {
  checkPath('file', file);
  const c = load();
  const opened: number[] = [];
  try {
    const [inR, inW] = pipePair(c, opened);
    const [outR, outW] = pipePair(c, opened);
    const [errR, errW] = pipePair(c, opened);
    const pid = await posixSpawn(c, file, args, Object.entries(env).map(([k, v]) => `${k}=${v}`), (actions) => {
      // dup2 drops close-on-exec on the copy only: the child keeps 0-2 and nothing else of ours.
      c.posix_spawn_file_actions_adddup2(actions, inR, 0);
      c.posix_spawn_file_actions_adddup2(actions, outW, 1);
      c.posix_spawn_file_actions_adddup2(actions, errW, 2);
    });
    for (const fd of [inR, outW, errW]) c.close(fd);
    return { pid, stdin: inW, stdout: outR, stderr: errR };
  } catch (err) {
    for (const fd of opened) c.close(fd);
    throw err;
  }
}

/** A close-on-exec pipe: [read end, write end], also recorded in `opened`. */
function pipePair(c: Libc, opened: number[] = []): [number, number] {
  const fds = Buffer.alloc(8);
  if (c.pipe2(fds, O_CLOEXEC) !== 0) throw errnoError(c.errno(), 'pipe2');
  const ends: [number, number] = [fds.readInt32LE(0), fds.readInt32LE(4)];
  opened.push(...ends);
  return ends;
}

/**
 * posix_spawn(3) with every signal at its default and none blocked; `setFds`
 * lays out the child's descriptors. Resolves with the pid. The call runs on
 * a libuv worker thread: with vfork semantics the calling thread waits
 * until the child has exec'd, which on a busy host is the child's wait for
 * a CPU, several milliseconds (tens when both cores are taken) that would
 * otherwise stall the event loop at every plugin and monitor started.
 */
function posixSpawn(c: Libc, file: string, args: string[], env: string[], setFds: (actions: Buffer) => void): Promise<number> {
  // glibc's posix_spawn_file_actions_t is 80 bytes, posix_spawnattr_t 336, sigset_t 128: room to spare.
  const actions = Buffer.alloc(256);
  const attr = Buffer.alloc(512);
  const all = Buffer.alloc(256);
  const none = Buffer.alloc(256);
  c.posix_spawn_file_actions_init(actions);
  c.posix_spawnattr_init(attr);
  const release = () => {
    c.posix_spawn_file_actions_destroy(actions);
    c.posix_spawnattr_destroy(attr);
  };
  try {
    setFds(actions);
    c.sigfillset(all);
    c.sigemptyset(none);
    c.posix_spawnattr_setsigdefault(attr, all);
    c.posix_spawnattr_setsigmask(attr, none);
    c.posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  } catch (err) {
    release();
    throw err;
  }
  const pid = Buffer.alloc(4);
  const spawn = c.posix_spawn as unknown as { async: (...args: unknown[]) => void };
  return new Promise((resolve, reject) => {
    // posix_spawn returns its error number instead of setting errno, so a worker's call reports it whole.
    spawn.async(pid, file, actions, attr, [file, ...args, null], [...env, null], (err: unknown, rc: number) => {
      release();
      if (err) return reject(err instanceof Error ? err : new Error(String(err)));
      if (rc !== 0) return reject(errnoError(rc, 'posix_spawn', file));
      resolve(pid.readInt32LE(0));
    });
  });
}

/**
 * waitpid(2) without blocking, on a libuv worker thread: undefined while
 * `pid` runs; once reaped, its exit code, or 128 + the signal that killed it.
 * Reaping a child that has just exited (a CNI plugin, whose threads are
 * still being torn down) took the calling thread 1-20 ms here.
 */
export function childStatusAsync(pid: number): Promise<number | undefined> {
  checkInt('pid', pid, 0x7fffffff);
  const wait = load().waitpid as unknown as { async: (pid: number, status: Buffer, options: number, cb: (err: unknown, r: number) => void) => void };
  const status = Buffer.alloc(4);
  return new Promise((resolve, reject) => {
    wait.async(pid, status, 1 /* WNOHANG */, (err, r) => {
      if (err) return reject(err instanceof Error ? err : new Error(String(err)));
      if (r === 0) return resolve(undefined);
      // A worker's errno is not ours to read: a failure (no such child) is repeated here, where it returns at once.
      if (r < 0) {
        try {
          return resolve(childStatus(pid));
        } catch (e) {
          return reject(e instanceof Error ? e : new Error(String(e)));
        }
      }
      const s = status.readInt32LE(0);
      resolve((s & 0x7f) === 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f));
    });
  });
}

/** waitpid(2) without blocking: undefined while `pid` runs; once reaped, its exit code, or 128 + the signal that killed it. */
export function childStatus(pid: number): number | undefined {
  const c = load();
  const status = Buffer.alloc(4);
  const r = c.waitpid(pid, status, 1 /* WNOHANG */);
  if (r === 0) return undefined;
  if (r < 0) throw errnoError(c.errno(), 'waitpid');
  const s = status.readInt32LE(0);
  return (s & 0x7f) === 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f);
}

/**
 * Give the C heap's free pages back to the kernel. Decompressing and
 * unpacking a large image leaves tens of MB free but held in glibc's arenas
 * (native zlib/zstd buffers, stream chunks), and glibc returns them only from
 * the top of each heap: without this, berthd's RSS stays at its pull-time peak.
 */
export function mallocTrim(): void {
  load().malloc_trim(0);
}

/** The process at the other end of a connected unix socket, as the kernel recorded it at connect(2) (SO_PEERCRED). */
export function peerCredentials(fd: number): { pid: number; uid: number; gid: number } {
  checkInt('fd', fd, 0x7fffffff);
  const c = load();
  const cred = Buffer.alloc(12);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(cred.length);
  if (c.getsockopt(fd, 1 /* SOL_SOCKET */, 17 /* SO_PEERCRED */, cred, len) !== 0) throw errnoError(c.errno(), 'getsockopt SO_PEERCRED');
  return { pid: cred.readInt32LE(0), uid: cred.readUInt32LE(4), gid: cred.readUInt32LE(8) };
}

/** pidfd_open(2): a descriptor that names the process `pid` for as long as it is open, never a later one with the same number. */
export function pidfdOpen(pid: number): number {
  checkInt('pid', pid, 0x7fffffff);
  const c = load();
  const fd = c.pidfd_open(pid, 0);
  if (fd < 0) throw errnoError(c.errno(), 'pidfd_open');
  return fd;
}

/**
 * pidfd_getfd(2): a copy of another process's descriptor `targetFd`, sharing
 * its open file description (offset, flags) as dup(2) would. Needs ptrace
 * rights over the process. The copy is close-on-exec.
 */
export function pidfdGetfd(pidfd: number, targetFd: number): number {
  checkInt('pidfd', pidfd, 0x7fffffff);
  checkInt('targetFd', targetFd, 0x7fffffff);
  const c = load();
  const fd = c.pidfd_getfd(pidfd, targetFd, 0);
  if (fd < 0) throw errnoError(c.errno(), 'pidfd_getfd');
  return fd;
}

const F_GETFL = 3;
const F_SETFL = 4;

/** The file status flags of `fd` (fcntl F_GETFL): O_APPEND, O_NONBLOCK, ... */
export function fileStatusFlags(fd: number): number {
  checkInt('fd', fd, 0x7fffffff);
  const c = load();
  const flags = c.fcntl(fd, F_GETFL);
  if (flags < 0) throw errnoError(c.errno(), 'fcntl F_GETFL');
  return flags;
}

/** Set the file status flags of `fd` (fcntl F_SETFL); they belong to the open file description, shared with every copy of it. */
export function setFileStatusFlags(fd: number, flags: number): void {
  checkInt('fd', fd, 0x7fffffff);
  checkInt('flags', flags, 0x7fffffff);
  const c = load();
  if (c.fcntl(fd, F_SETFL, 'int', flags) !== 0) throw errnoError(c.errno(), 'fcntl F_SETFL');
}

const POLLOUT = 0x4;
const POLLERR = 0x8;
const POLLHUP = 0x10;

/**
 * Whether the peer of a connected socket has closed it altogether, without
 * waiting (poll(2) with a zero timeout). A unix socket whose peer only shut
 * down its writing side (a half-close) is not hung up: POLLHUP comes when
 * both directions are shut, which is how a client that half-closed and then
 * went away is told from one still reading.
 */
export function peerHungUp(fd: number): boolean {
  checkInt('fd', fd, 0x7fffffff);
  const c = load();
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(POLLOUT, 4);
  if (c.poll(pfd, 1, 0) < 0) throw errnoError(c.errno(), 'poll');
  return (pfd.readInt16LE(6) & (POLLHUP | POLLERR)) !== 0;
}

const X32_SYSCALL_BIT = 0x40000000;
const NR_GETPID = 39;
const ENOSYS = 38;

/**
 * Whether this kernel runs x32 system calls: false only when an x32
 * getpid(2) fails with ENOSYS (a kernel built without CONFIG_X86_X32_ABI,
 * or with it switched off at boot) and on other architectures; true on
 * x86_64 kernels that run it, and whenever the answer is not certain (a
 * seccomp filter of our own that refuses the call with another errno).
 */
export function kernelRunsX32(): boolean {
  if (process.arch !== 'x64') return false;
  const c = load();
  if (c.syscall(X32_SYSCALL_BIT | NR_GETPID) >= 0) return true;
  return c.errno() !== ENOSYS;
}
