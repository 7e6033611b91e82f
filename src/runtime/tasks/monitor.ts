import { spawn } from 'node:child_process';
import { closeSync, existsSync, constants as fsConstants, openSync, readFileSync, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Ctx } from '../../core/context.ts';
import { berthError, hasErrno } from '../../core/errors.ts';
import { childStatusAsync, spawnWithSyncPipe } from '../../core/sys.ts';

/**
 * The Node side of berth-monitor (native/monitor.c): starting a monitor,
 * reading the files it keeps in its task directory, and talking to its
 * attach and control sockets. One monitor serves one container or one exec
 * session; it is detached from berthd, so berthd can die and come back and
 * find it by its directory.
 */
export const defaultMonitorPath = path.resolve(import.meta.dirname, '../../../native/build/berth-monitor');
export const defaultInitPath = path.resolve(import.meta.dirname, '../../../native/build/berth-init');
export const defaultPausePath = path.resolve(import.meta.dirname, '../../../native/build/berth-pause');

/** What a monitor reports once the runtime's create (or exec start) has run. */
export interface MonitorStatus {
  ok: boolean;
  /** The container (or exec) process pid; 0 for an exec session not yet started. */
  pid?: number;
  /** docker's code for a process that could not be started: 127 not found, 126 not executable, 128 other. */
  exitCode?: number;
  error?: string;
}

/** The exit file: how the process ended. */
export interface ExitStatus {
  /** The exit code, or 128+N when killed by signal N. */
  exitCode: number;
  /** The signal that killed the process, 0 if it exited. */
  signal: number;
  pid: number;
  /** RFC 3339 with nanoseconds. */
  finishedAt: string;
  /** Set when the process never ran (the runtime's error). */
  error?: string;
  /** The kernel's OOM killer struck in the container's cgroup (added by the TaskService while the cgroup exists). */
  oomKilled?: boolean;
}

export interface MonitorLaunch {
  monitorPath: string;
  dir: string;
  runtimePath: string;
  runtimeRoot: string;
  id: string;
  /** A container: the OCI bundle. */
  bundle?: string;
  /** An exec session: the process.json path. */
  processFile?: string;
  tty?: boolean;
  stdin?: boolean;
  stdinOnce?: boolean;
  rows?: number;
  cols?: number;
  log?: { path: string; format: 'json-file' | 'cri'; maxSize?: number; maxFiles?: number };
}

export const monitorFiles = {
  status: 'status',
  exit: 'exit',
  monitorPid: 'monitor.pid',
  pid: 'pid',
  attach: 'attach.sock',
  attachAll: 'attach-all.sock',
  ctl: 'ctl.sock',
} as const;

/** Start a monitor and wait for its status (the result of the runtime's create, or readiness for exec). */
export async function launchMonitor(ctx: Ctx, l: MonitorLaunch): Promise<MonitorStatus> {
  const args = ['--dir', l.dir, '--runtime', l.runtimePath, '--root', l.runtimeRoot, '--id', l.id, '--sync-fd', '3'];
  if (l.processFile) args.push('--exec', '--process', l.processFile);
  else args.push('--bundle', l.bundle ?? '');
  if (l.tty) args.push('--tty');
  if (l.stdin) args.push('--stdin');
  if (l.stdinOnce) args.push('--stdin-once');
  if (l.rows && l.cols) args.push('--rows', String(l.rows), '--cols', String(l.cols));
  if (l.log) {
    args.push('--log-path', l.log.path, '--log-format', l.log.format);
    if (l.log.maxSize) args.push('--log-max-size', String(l.log.maxSize));
    if (l.log.maxFiles) args.push('--log-max-files', String(l.log.maxFiles));
  }
  // The monitor forks again and its child starts a new session, so neither
  // berthd's process group nor its death reaches the container.
  let child: { once(ev: 'error', fn: (err: Error) => void): void; unref(): void } | undefined;
  let sync: Readable;
  try {
    const { pid, syncFd } = await spawnWithSyncPipe(l.monitorPath, args);
    sync = new net.Socket({ fd: syncFd, readable: true, writable: false });
    reapLater(pid);
  } catch {
    const c = spawn(l.monitorPath, args, { stdio: ['ignore', 'ignore', 'ignore', 'pipe'], detached: true });
    child = c;
    sync = c.stdio[3] as Readable;
  }
  let text = '';
  sync.setEncoding('utf8');
  const onAbort = () => sync.destroy();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      child?.once('error', reject);
      sync.on('data', (d: string) => (text += d));
      sync.once('end', resolve);
      sync.once('close', resolve);
      sync.once('error', reject);
    });
  } catch (err) {
    if (hasErrno(err, 'ENOENT') || hasErrno(err, 'EACCES')) {
      throw berthError('FailedPrecondition', `monitor binary ${l.monitorPath} cannot run (build it with make -C native): ${(err as Error).message}`, err);
    }
    throw berthError('Internal', `monitor for "${l.id}": ${(err as Error).message}`, err);
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    child?.unref();
  }
  ctx.signal.throwIfAborted();
  const line = text.split('\n')[0];
  if (!line) {
    const log = await readFile(path.join(l.dir, 'monitor.log'), 'utf8').catch(() => '');
    throw berthError('Internal', `monitor for "${l.id}" exited without a status${log ? `: ${log.trim()}` : ''}`);
  }
  return JSON.parse(line) as MonitorStatus;
}

// The task files are a few bytes on the state directory's tmpfs: read in place,
// as a thread-pool round trip costs more than the read and stalls under load.
/** Reap a monitor's first process (it exits once it has forked the real monitor). */
function reapLater(pid: number, delay = 5): void {
  setTimeout(() => {
    childStatusAsync(pid).then(
      (code) => {
        if (code === undefined) reapLater(pid, Math.min(delay * 2, 1000));
      },
      () => {},
    );
  }, delay).unref();
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

export const readStatus = (dir: string) => readJson<MonitorStatus>(path.join(dir, monitorFiles.status));
export const readExit = (dir: string) => readJson<ExitStatus>(path.join(dir, monitorFiles.exit));

/** The monitor's pid if it is still running (checked against /proc so a reused pid does not count). */
export async function monitorPid(dir: string): Promise<number | undefined> {
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  const pid = Number.parseInt(read(path.join(dir, monitorFiles.monitorPid)), 10);
  if (!pid) return undefined;
  const cmdline = read(`/proc/${pid}/cmdline`);
  if (!cmdline.includes('berth-monitor') || !cmdline.includes(`\0--dir\0${dir}\0`)) return undefined;
  const stat = read(`/proc/${pid}/stat`);
  // A zombie monitor has finished its work.
  if (/\) Z /.test(stat)) return undefined;
  return pid;
}

/**
 * Resolve with the exit file once the monitor writes it. Watches the
 * directory and polls as a fallback (a watch can miss events, e.g. when the
 * directory is recreated); fails Unavailable when the monitor is gone
 * without writing one.
 */
export async function waitExit(ctx: Ctx, dir: string, id: string): Promise<ExitStatus> {
  let wake: () => void = () => {};
  let watcher: ReturnType<typeof watch> | undefined;
  try {
    watcher = watch(dir, { persistent: false }, (_ev, name) => {
      if (name === monitorFiles.exit) wake();
    });
    watcher.on('error', () => {});
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) throw berthError('NotFound', `task "${id}" not found`);
    throw err;
  }
  try {
    for (let round = 0; ; round++) {
      const exit = await readExit(dir);
      if (exit) return exit;
      if (round % 4 === 3 && !(await monitorPid(dir))) {
        const again = await readExit(dir);
        if (again) return again;
        if (!existsSync(dir)) throw berthError('NotFound', `task "${id}" not found (removed while waiting)`);
        throw berthError('Unavailable', `task "${id}": its monitor is gone and left no exit status`);
      }
      ctx.signal.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(done, 250 * Math.min(8, round + 1));
        function done() {
          clearTimeout(timer);
          ctx.signal.removeEventListener('abort', abort);
          resolve();
        }
        function abort() {
          clearTimeout(timer);
          reject(ctx.signal.reason);
        }
        wake = done;
        ctx.signal.addEventListener('abort', abort, { once: true });
      });
    }
  } finally {
    watcher.close();
  }
}

/**
 * Connect to a unix socket that may lie deeper than sun_path allows (108
 * bytes): such paths are reached through /proc/self/fd of their directory.
 */
export async function connectUnix(ctx: Ctx, sockPath: string): Promise<net.Socket> {
  let dirFd: number | undefined;
  let target = sockPath;
  if (Buffer.byteLength(sockPath) > 100) {
    dirFd = openSync(path.dirname(sockPath), fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    target = `/proc/self/fd/${dirFd}/${path.basename(sockPath)}`;
  }
  try {
    ctx.signal.throwIfAborted();
    // Not net.connect's `signal` option: its abort listener is never removed,
    // which keeps the socket (and whatever it references) alive as long as a
    // long-lived signal is, one per attach or control call.
    return await new Promise<net.Socket>((resolve, reject) => {
      const sock = net.connect({ path: target });
      const onAbort = () => sock.destroy(ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error('aborted'));
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      sock.once('close', () => ctx.signal.removeEventListener('abort', onAbort));
      sock.once('connect', () => {
        sock.removeListener('error', reject);
        // The abort above destroys the socket with an error, which must find a listener even when its
        // caller has not attached its own yet (a client that left while its attach or exec was opening).
        sock.on('error', () => {});
        resolve(sock);
      });
      sock.once('error', reject);
    });
  } finally {
    if (dirFd !== undefined) closeSync(dirFd);
  }
}

/** Send one control command ("resize 24 80", "close-stdin", "start") and return the monitor's reply. */
export async function control(ctx: Ctx, dir: string, command: string): Promise<MonitorStatus> {
  const sock = await connectUnix(ctx, path.join(dir, monitorFiles.ctl));
  try {
    sock.setEncoding('utf8');
    sock.write(command + '\n');
    const reply = await new Promise<string>((resolve, reject) => {
      let buf = '';
      sock.on('data', (d: string) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl >= 0) resolve(buf.slice(0, nl));
      });
      sock.once('error', reject);
      sock.once('close', () => reject(berthError('Unavailable', `monitor in ${dir} closed the control connection`)));
    });
    return JSON.parse(reply) as MonitorStatus;
  } finally {
    sock.destroy();
  }
}

export { Streams, demux } from '../../core/stdcopy.ts';
