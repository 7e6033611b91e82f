import { closeSync, readFileSync } from 'node:fs';
import { mkdtemp, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Ctx } from '../core/context.ts';
import { cleanupCtx } from '../core/context.ts';
import { berthError, hasErrno } from '../core/errors.ts';
import { FSCONFIG, MNT, MOUNT_ATTR, MS, fsconfig, fsmount, fsopen, mount, moveMount, umount2, umount2Async } from '../core/sys.ts';
import type { Mount } from './types.ts';

/** How mount(2) is called for one Mount: flags, file-system data, and what must follow it. */
export interface MountPlan {
  flags: number;
  data: string;
  /** Propagation flags (MS_PRIVATE, ...) applied by a second call. */
  propagation: number;
  /** Bind mounts take most flags only on a remount. */
  remountFlags: number;
}

const flagOptions: Record<string, [clear: boolean, flag: number]> = {
  async: [true, MS.SYNCHRONOUS], atime: [true, MS.NOATIME], bind: [false, MS.BIND], defaults: [false, 0], dev: [true, MS.NODEV],
  diratime: [true, MS.NODIRATIME], dirsync: [false, MS.DIRSYNC], exec: [true, MS.NOEXEC], mand: [false, MS.MANDLOCK],
  noatime: [false, MS.NOATIME], nodev: [false, MS.NODEV], nodiratime: [false, MS.NODIRATIME], noexec: [false, MS.NOEXEC],
  nomand: [true, MS.MANDLOCK], norelatime: [true, MS.RELATIME], nostrictatime: [true, MS.STRICTATIME], nosuid: [false, MS.NOSUID],
  rbind: [false, MS.BIND | MS.REC], relatime: [false, MS.RELATIME], remount: [false, MS.REMOUNT], ro: [false, MS.RDONLY],
  rw: [true, MS.RDONLY], strictatime: [false, MS.STRICTATIME], suid: [true, MS.NOSUID], sync: [false, MS.SYNCHRONOUS],
};

const propagationOptions: Record<string, number> = {
  private: MS.PRIVATE, rprivate: MS.PRIVATE | MS.REC, shared: MS.SHARED, rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE, rslave: MS.SLAVE | MS.REC, unbindable: MS.UNBINDABLE, runbindable: MS.UNBINDABLE | MS.REC,
};

/** Split a Mount's options into mount(2) flags and data, as containerd's mount_linux.go does. */
export function planMount(m: Mount): MountPlan {
  let flags = 0;
  let propagation = 0;
  const data: string[] = [];
  for (const o of m.options) {
    const f = flagOptions[o];
    if (f) {
      flags = f[0] ? flags & ~f[1] : flags | f[1];
    } else if (propagationOptions[o] !== undefined) {
      propagation |= propagationOptions[o];
    } else {
      data.push(o);
    }
  }
  if (m.type === 'bind') flags |= MS.BIND;
  const isBind = (flags & MS.BIND) !== 0;
  const remountFlags = isBind && (flags & ~(MS.BIND | MS.REC | MS.REMOUNT)) !== 0 ? (flags & ~MS.REC) | MS.REMOUNT : 0;
  return { flags, data: data.join(','), propagation, remountFlags };
}

const PAGE = 4096;

const attrOfFlag: Array<[number, number]> = [
  [MS.RDONLY, MOUNT_ATTR.RDONLY], [MS.NOSUID, MOUNT_ATTR.NOSUID], [MS.NODEV, MOUNT_ATTR.NODEV], [MS.NOEXEC, MOUNT_ATTR.NOEXEC],
  [MS.NOATIME, MOUNT_ATTR.NOATIME], [MS.STRICTATIME, MOUNT_ATTR.STRICTATIME], [MS.NODIRATIME, MOUNT_ATTR.NODIRATIME],
];

/**
 * Mount through the new mount API, for data that does not fit in the one
 * page mount(2) takes (an overlay with many long lowerdirs). Each option is
 * its own fsconfig call and each lower directory is appended with
 * "lowerdir+" (Linux 6.8+), so there is no length limit short of overlay's
 * own layer limit. containerd solves the same limit by mounting from a
 * child process that chdirs to the snapshots directory; this needs neither.
 */
function mountLong(m: Mount, p: MountPlan, target: string): void {
  const fd = fsopen(m.type);
  try {
    fsconfig(fd, FSCONFIG.SET_STRING, 'source', m.source);
    for (const o of m.options) {
      if (flagOptions[o] || propagationOptions[o] !== undefined) continue;
      const eq = o.indexOf('=');
      if (eq < 0) fsconfig(fd, FSCONFIG.SET_FLAG, o);
      else if (o.startsWith('lowerdir=')) for (const d of o.slice(eq + 1).split(':')) fsconfig(fd, FSCONFIG.SET_STRING, 'lowerdir+', d);
      else fsconfig(fd, FSCONFIG.SET_STRING, o.slice(0, eq), o.slice(eq + 1));
    }
    fsconfig(fd, FSCONFIG.CMD_CREATE);
    let attrs = 0;
    for (const [flag, attr] of attrOfFlag) if (p.flags & flag) attrs |= attr;
    const mfd = fsmount(fd, undefined, attrs);
    try {
      moveMount(mfd, target);
    } finally {
      closeSync(mfd);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Mount `mounts` on `target`, in order (stacked, as containerd does). For a
 * bind the read-only and other flags take a remount. If one fails, the ones
 * already mounted are undone.
 */
export async function mountAll(ctx: Ctx, mounts: Mount[], target: string): Promise<void> {
  let done = 0;
  try {
    for (const m of mounts) {
      ctx.signal.throwIfAborted();
      const p = planMount(m);
      const bind = (p.flags & MS.BIND) !== 0;
      if (!bind && p.data.length >= PAGE) mountLong(m, p, target);
      else mount(m.source, target, bind ? null : m.type, bind ? p.flags & (MS.BIND | MS.REC) : p.flags, p.data || null);
      done++;
      if (p.remountFlags) mount(null, target, null, p.remountFlags, null);
      if (p.propagation) mount(null, target, null, p.propagation, null);
    }
  } catch (err) {
    if (done > 0) await unmountAll(cleanupCtx(ctx), target).catch(() => {});
    throw err;
  }
}

/** Unmount everything mounted on `target` (stacked mounts too); a target with no mount is fine. */
export async function unmountAll(ctx: Ctx, target: string): Promise<void> {
  for (let i = 0, busy = 0; i < 64; ) {
    try {
      // The first unmount may sync a file system: off the event loop. Once one succeeded, the next
      // attempt almost always finds nothing mounted (EINVAL, at once): in place, without a round trip.
      if (i === 0) await umount2Async(target, MNT.NOFOLLOW);
      else umount2(target, MNT.NOFOLLOW);
      i++;
    } catch (err) {
      if (hasErrno(err, 'EINVAL') || hasErrno(err, 'ENOENT')) return;
      // Something briefly holds the mount (a process exiting, a scan): retry, as containerd does.
      if (!hasErrno(err, 'EBUSY') || ++busy > 50 || ctx.signal.aborted) throw err;
      await sleep(50);
    }
  }
  throw berthError('Internal', `unmount "${target}": still mounted after 64 unmounts`);
}

/** The directory to write to directly when `mounts` is a single read-write bind (no mount needed). */
export function writableDir(mounts: Mount[]): string | undefined {
  if (mounts.length !== 1) return undefined;
  const p = planMount(mounts[0]);
  return (p.flags & MS.BIND) !== 0 && (p.flags & MS.RDONLY) === 0 ? mounts[0].source : undefined;
}

/**
 * Run `fn` with `mounts` available as a directory: the source itself for a
 * read-write bind, otherwise mounted on a temporary directory under
 * `tmpParent`, unmounted and removed afterwards.
 */
export async function withMounts<T>(ctx: Ctx, mounts: Mount[], tmpParent: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const direct = writableDir(mounts);
  if (direct !== undefined) return fn(direct);
  const dir = await mkdtemp(join(tmpParent, 'mount-'));
  try {
    await mountAll(ctx, mounts, dir);
    try {
      return await fn(dir);
    } finally {
      await unmountAll(cleanupCtx(ctx), dir);
    }
  } finally {
    await rmdir(dir);
  }
}

/** The mount points of berthd's mount namespace, as /proc/self/mountinfo lists them (octal escapes undone). */
export function* mountPoints(): Generator<string> {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const field = line.split(' ')[4];
    if (field !== undefined) yield field.includes('\\') ? field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) : field;
  }
}

/** Mount points at or below `dir`, deepest first. */
export function mountPointsUnder(dir: string): string[] {
  return [...mountPoints()].filter((p) => p === dir || p.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
}
