import { execFile } from 'node:child_process';
import { accessSync, constants as fsConstants, openSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { rmdir, unlink } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Ctx } from '../../core/context.ts';
import type { ErrorKind } from '../../core/errors.ts';
import { berthError } from '../../core/errors.ts';
import type { Resources } from '../oci/oci-types.ts';
import { removeTree } from '../../core/remove-tree.ts';

/**
 * An OCI runtime (runc, crun) driven through its command line. Every call
 * passes `--root <stateDir>/runtime/<name>/<namespace>`, so berth never
 * touches the host's default runtime state and two namespaces may reuse an
 * id. `create` and `exec` are not here: the monitor runs those so that the
 * container process becomes the monitor's child (see monitor.ts).
 *
 * Errors: a missing container is NotFound; an operation the container's
 * state forbids (start a running one, delete a running one without force,
 * resume one that is not paused) is Conflict; anything else is Unknown.
 * Messages name the container: `container "web": container not running`.
 */
export interface OciRuntimeOptions {
  /** Name in the configuration, e.g. "runc" or "crun". */
  name: string;
  /** The binary; defaults to the name (looked up in PATH). */
  path?: string;
  /** berth's state directory (`/run/berth`). */
  stateDir: string;
}

/** `runc state` output. */
export interface RuntimeState {
  ociVersion: string;
  id: string;
  pid: number;
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
  bundle: string;
  rootfs?: string;
  created: string;
  annotations?: Record<string, string>;
}

/** `runc events --stats` data (cgroup v1 or v2, normalised by the runtime). */
export interface RuntimeStats {
  cpu?: {
    usage?: { total?: number; percpu?: number[]; kernel?: number; user?: number };
    throttling?: { periods?: number; throttled_periods?: number; throttled_time?: number };
  };
  memory?: {
    cache?: number;
    usage?: { limit?: number; usage?: number; max?: number; failcnt?: number };
    swap?: { limit?: number; usage?: number };
    raw?: Record<string, number>;
  };
  pids?: { current?: number; limit?: number };
  blkio?: { ioServiceBytesRecursive?: Array<{ major: number; minor: number; op: string; value: number }> };
  network_interfaces?: unknown[];
}

/** OCI `linux.resources` as accepted by `runc update --resources`. */
export type LinuxResources = Resources;

export class OciRuntime {
  readonly name: string;
  readonly path: string;
  readonly stateDir: string;

  constructor(opts: OciRuntimeOptions) {
    this.name = opts.name;
    // Looked up in PATH once: every create and runtime call would otherwise try each PATH entry in turn.
    this.path = lookPath(opts.path || opts.name);
    this.stateDir = opts.stateDir;
  }

  /** The `--root` for a namespace. */
  root(namespace: string): string {
    return path.join(this.stateDir, 'runtime', this.name, namespace);
  }

  async state(ctx: Ctx, id: string): Promise<RuntimeState> {
    return JSON.parse(await this.run(ctx, id, ['state', id])) as RuntimeState;
  }

  /** All containers under this runtime's root for ctx.namespace. */
  async list(ctx: Ctx): Promise<RuntimeState[]> {
    const out = await this.run(ctx, '', ['list', '--format', 'json']);
    return (JSON.parse(out.trim() || 'null') as RuntimeState[] | null) ?? [];
  }

  /**
   * Start a created container. For runc with the init's pid known, this does
   * what `runc start` does without spawning it (a Go binary, tens of ms):
   * read runc's exec fifo, which releases the waiting `runc init` into the
   * user's process, then remove the fifo (runc tells "created" from
   * "running" by its presence). berth writes no poststart hooks, the only
   * other work of `runc start`. Anything unexpected falls back to the CLI.
   */
  async start(ctx: Ctx, id: string, opts: { pid?: number } = {}): Promise<void> {
    if (this.name === 'runc' && opts.pid && (await releaseFifo(path.join(this.root(ctx.namespace), id, 'exec.fifo'), opts.pid))) return;
    await this.run(ctx, id, ['start', id]);
  }

  /** Send `signal` (name or number) to the init process, or to every process with `all`. */
  async kill(ctx: Ctx, id: string, signal: string | number, opts: { all?: boolean } = {}): Promise<void> {
    await this.run(ctx, id, ['kill', ...(opts.all ? ['--all'] : []), id, String(signal)]);
  }

  /**
   * Remove a container whose init has exited, as `runc delete` does for a
   * stopped container (remove its cgroups, then its state directory) but
   * without spawning runc: that spawn was a quarter of a `run --rm`. Only
   * for runc, whose state.json lists the cgroup paths; a cgroup that stays
   * busy (processes outliving init in a shared pid namespace) or anything
   * unexpected falls back to `runc delete --force`, which kills them.
   * `cgroupsRemoved`: every cgroup of the container is known to be gone;
   * `stateRemoved` settles once the state directory is (it goes on meanwhile).
   */
  async deleteStopped(ctx: Ctx, id: string): Promise<{ cgroupsRemoved: boolean; stateRemoved: Promise<void> }> {
    const dir = path.join(this.root(ctx.namespace), id);
    if (this.name === 'runc' && (await this.#removeCgroups(id, dir))) return { cgroupsRemoved: true, stateRemoved: removeTree(dir) };
    await this.delete(ctx, id, { force: true });
    return { cgroupsRemoved: false, stateRemoved: Promise.resolve() };
  }

  /** The cgroups of a stopped runc container, removed as `runc delete` would; false when runc has to do it. */
  async #removeCgroups(id: string, dir: string): Promise<boolean> {
    let st: { init_process_pid?: number; cgroup_paths?: Record<string, string>; config?: { cgroups?: { Systemd?: boolean } } };
    try {
      st = JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8')) as typeof st;
    } catch {
      return false;
    }
    // systemd-managed cgroups are a unit to stop through systemd: runc's business.
    if (!st.init_process_pid || processExists(st.init_process_pid) || st.config?.cgroups?.Systemd) return false;
    const paths = Object.values(st.cgroup_paths ?? {});
    if (paths.some((p) => !p.startsWith('/sys/fs/cgroup/') || !p.includes(id))) return false;
    // One cgroup per v1 controller: removed side by side, each a kernel round of its own.
    const removed = await Promise.all(paths.map((p) => removeCgroup(p)));
    return !removed.includes(false);
  }

  /** Remove the runtime's state (and with `force`, kill the container first). */
  async delete(ctx: Ctx, id: string, opts: { force?: boolean } = {}): Promise<void> {
    await this.run(ctx, id, ['delete', ...(opts.force ? ['--force'] : []), id]);
  }

  async pause(ctx: Ctx, id: string): Promise<void> {
    await this.run(ctx, id, ['pause', id]);
  }

  async resume(ctx: Ctx, id: string): Promise<void> {
    await this.run(ctx, id, ['resume', id]);
  }

  /** Change cgroup limits of a running container; `resources` is OCI linux.resources. */
  async update(ctx: Ctx, id: string, resources: LinuxResources): Promise<void> {
    await this.run(ctx, id, ['update', '--resources', '-', id], JSON.stringify(resources));
  }

  /** Host pids of every process in the container. */
  async ps(ctx: Ctx, id: string): Promise<number[]> {
    return JSON.parse((await this.run(ctx, id, ['ps', '--format', 'json', id])).trim() || '[]') as number[];
  }

  /** One sample of the container's cgroup statistics. */
  async stats(ctx: Ctx, id: string): Promise<RuntimeStats> {
    const out = await this.run(ctx, id, ['events', '--stats', id]);
    const ev = JSON.parse(out) as { data?: RuntimeStats };
    return ev.data ?? {};
  }

  private run(ctx: Ctx, id: string, args: string[], input?: string): Promise<string> {
    const argv = ['--root', this.root(ctx.namespace), ...args];
    return new Promise((resolve, reject) => {
      const child = execFile(this.path, argv, { signal: ctx.signal, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        if ((err as { name?: string }).name === 'AbortError') return reject(err);
        if ((err as { code?: unknown }).code === 'ENOENT') {
          return reject(berthError('FailedPrecondition', `OCI runtime "${this.name}": ${this.path} not found`, err));
        }
        reject(runtimeError(this.name, id, args[0], stderr, err));
      });
      if (input !== undefined) child.stdin?.end(input);
    });
  }
}

/** The last error message of runc's log output (logrus text or JSON lines). */
export function lastRuntimeMessage(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i];
    if (l.startsWith('{')) {
      try {
        const rec = JSON.parse(l) as { level?: string; msg?: string };
        if (rec.msg && (rec.level === 'error' || rec.level === 'fatal')) return rec.msg;
      } catch {
        // Not a JSON line; fall through to the text forms.
      }
    }
    const m = /level=(?:error|fatal) msg="((?:[^"\\]|\\.)*)"/.exec(l);
    if (m) return m[1].replace(/\\(.)/g, '$1');
  }
  return lines.at(-1)?.trim() ?? '';
}

const conflictPatterns = [/not running/, /not paused/, /not stopped/, /already running/, /already paused/, /cannot start/, /is paused/, /that is not stopped/];

/** Map a runtime failure to a berth error kind, naming the container. */
export function runtimeError(runtime: string, id: string, op: string, stderr: string, cause?: unknown): Error {
  const msg = lastRuntimeMessage(stderr) || `${runtime} ${op} failed`;
  let kind: ErrorKind = 'Unknown';
  if (/does not exist|not found|no such container/i.test(msg)) kind = 'NotFound';
  else if (/already exists/.test(msg)) kind = 'AlreadyExists';
  else if (conflictPatterns.some((p) => p.test(msg))) kind = 'Conflict';
  const subject = id ? `container "${id}"` : `OCI runtime "${runtime}"`;
  return berthError(kind, `${subject}: ${runtime} ${op}: ${msg}`, cause);
}

/** Read runc's exec fifo to its end (runc init writes "0" and execs); false when nothing came. */
async function releaseFifo(fifo: string, pid: number): Promise<boolean> {
  let fd: number;
  try {
    // Non-blocking: opening never waits, and a read end opened before any writer sees no hang-up.
    fd = openSync(fifo, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch {
    return false;
  }
  const sock = new net.Socket({ fd, readable: true, writable: false });
  let got = 0;
  await new Promise<void>((resolve) => {
    // The init died before opening its end: no writer will ever come.
    const timer = setInterval(() => {
      try {
        process.kill(pid, 0);
      } catch {
        done();
      }
    }, 100);
    function done() {
      clearInterval(timer);
      resolve();
    }
    sock.on('data', (d: Buffer) => (got += d.length));
    sock.once('end', done);
    sock.once('close', done);
    sock.once('error', done);
  });
  sock.destroy();
  if (got === 0) return false;
  await unlink(fifo).catch(() => {});
  return true;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** rmdir a cgroup, waiting briefly for exiting processes to leave it; false if it stays busy. */
async function removeCgroup(p: string): Promise<boolean> {
  // An empty cgroup goes at once: removed in place, as a thread-pool round trip costs more than the rmdir.
  try {
    rmdirSync(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
  }
  for (let attempt = 0; ; attempt++) {
    try {
      await rmdir(p);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
      if ((err as NodeJS.ErrnoException).code !== 'EBUSY' || attempt >= 4) return false;
      await new Promise((r) => setTimeout(r, 10 * (attempt + 1)));
    }
  }
}

/** The executable `bin` names: itself when it has a slash, else the first match in PATH (or `bin` when none). */
export function lookPath(bin: string, pathEnv = process.env.PATH ?? ''): string {
  if (bin.includes('/')) return bin;
  for (const dir of pathEnv.split(':')) {
    if (!dir.startsWith('/')) continue;
    const file = path.join(dir, bin);
    try {
      accessSync(file, fsConstants.X_OK);
      if (statSync(file).isFile()) return file;
    } catch {
      // Not here.
    }
  }
  return bin;
}
