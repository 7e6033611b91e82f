import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Ctx } from '../../core/context.ts';
import { cleanupCtx, withCtx } from '../../core/context.ts';
import { berthError, hasErrno, isNotFound, kindOf } from '../../core/errors.ts';
import type { ExitStatus, MonitorStatus } from './monitor.ts';
import { connectUnix, control, defaultMonitorPath, launchMonitor, monitorFiles, monitorPid, readExit, readStatus, waitExit } from './monitor.ts';
import type { LinuxResources } from './runc.ts';
import { OciRuntime } from './runc.ts';
import { networkCounters, normaliseStats, oomKilled, removeCgroup } from './task-stats.ts';
import type { AttachOptions, CreateTaskRequest, ExecInfo, OciProcess, TaskInfo, TaskService, TaskStats, TaskStdio } from './task-types.ts';
import { removeTree } from '../../core/remove-tree.ts';
import { mountPointsUnder } from '../../snapshots/mount.ts';

export type * from './task-types.ts';
export { normaliseStats } from './task-stats.ts';

export interface MonitorTaskServiceOptions {
  /** berth's state directory (`/run/berth`): tasks/ and runtime/ go below it. */
  stateDir: string;
  /** Runtime name -> binary; e.g. { runc: 'runc', crun: 'crun' }. */
  runtimes?: Record<string, string>;
  defaultRuntime?: string;
  monitorPath?: string;
}

/** What berthd records about a task before its monitor starts (task.json). */
interface TaskRecord {
  id: string;
  namespace: string;
  bundle: string;
  runtime: string;
  stdio: TaskStdio;
  log?: CreateTaskRequest['log'];
  createdAt: string;
}

const idPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** InvalidArgument with docker's exit code for a process that could not start. */
function startFailure(subject: string, st: MonitorStatus): Error {
  const err = berthError('InvalidArgument', `${subject}: ${st.error ?? 'the runtime failed'}`);
  return Object.assign(err, { exitCode: st.exitCode ?? 128 });
}

/** A signal for process.kill: numbers and "9" as numbers, "HUP" as "SIGHUP" (runc takes all three forms). */
export function processSignal(signal: string | number): string | number {
  if (typeof signal === 'number' || /^\d+$/.test(signal)) return Number(signal);
  const name = signal.toUpperCase();
  const full = name.startsWith('SIG') ? name : `SIG${name}`;
  if (!(full in osConstants.signals)) throw berthError('InvalidArgument', `invalid signal "${signal}"`);
  return full;
}

/** 127 (not found) or 126 (not executable) for a start failure, else undefined. */
export function startFailureCode(err: unknown): number | undefined {
  for (let e: unknown = err, d = 0; e && d < 16; e = (e as { cause?: unknown }).cause, d++) {
    const code = (e as { exitCode?: unknown }).exitCode;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

/**
 * TaskService on berth-monitor and an OCI runtime CLI. Holds no state of its
 * own beyond the directory tree, so a fresh instance after a daemon restart
 * sees every task (see `recover`).
 */
export class MonitorTaskService implements TaskService {
  private readonly stateDir: string;
  private readonly runtimes: Map<string, OciRuntime>;
  private readonly defaultRuntime: string;
  private readonly monitorPath: string;

  constructor(opts: MonitorTaskServiceOptions) {
    this.stateDir = opts.stateDir;
    this.monitorPath = opts.monitorPath ?? defaultMonitorPath;
    this.defaultRuntime = opts.defaultRuntime ?? 'runc';
    const bins = opts.runtimes ?? { runc: 'runc', crun: 'crun' };
    this.runtimes = new Map(Object.entries(bins).map(([name, bin]) => [name, new OciRuntime({ name, path: bin, stateDir: opts.stateDir })]));
  }

  private runtime(name: string): OciRuntime {
    const rt = this.runtimes.get(name);
    if (!rt) throw berthError('InvalidArgument', `unknown OCI runtime "${name}" (configured: ${[...this.runtimes.keys()].join(', ')})`);
    return rt;
  }

  private taskDir(ns: string, id: string): string {
    return path.join(this.stateDir, 'tasks', ns, id);
  }

  private execDir(ns: string, id: string, execId: string): string {
    return path.join(this.taskDir(ns, id), 'exec', execId);
  }

  private async record(ctx: Ctx, id: string): Promise<TaskRecord> {
    try {
      // A small file on tmpfs, read on every task call: in place, not through the thread pool.
      return JSON.parse(readFileSync(path.join(this.taskDir(ctx.namespace, id), 'task.json'), 'utf8')) as TaskRecord;
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) throw berthError('NotFound', `task "${id}" not found`);
      throw err;
    }
  }

  async create(ctx: Ctx, req: CreateTaskRequest): Promise<TaskInfo> {
    if (!idPattern.test(req.id)) throw berthError('InvalidArgument', `invalid task id "${req.id}"`);
    const rt = this.runtime(req.runtime ?? this.defaultRuntime);
    const dir = this.taskDir(ctx.namespace, req.id);
    // Private: task.json, the monitor's sockets and the runtime's state are root's alone.
    // Task files are small and live on the state tmpfs: written in place (see readJson in monitor.ts).
    mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });
    try {
      mkdirSync(dir);
    } catch (err) {
      if (hasErrno(err, 'EEXIST')) throw berthError('AlreadyExists', `task "${req.id}" already exists`);
      throw err;
    }
    const rec: TaskRecord = {
      id: req.id,
      namespace: ctx.namespace,
      bundle: req.bundle,
      runtime: rt.name,
      stdio: req.stdio ?? {},
      log: req.log,
      createdAt: new Date().toISOString(),
    };
    try {
      mkdirSync(rt.root(ctx.namespace), { recursive: true, mode: 0o700 });
      if (req.log) mkdirSync(path.dirname(req.log.path), { recursive: true });
      writeFileSync(path.join(dir, 'task.json.tmp'), JSON.stringify(rec));
      renameSync(path.join(dir, 'task.json.tmp'), path.join(dir, 'task.json'));
      const st = await launchMonitor(ctx, {
        monitorPath: this.monitorPath,
        dir,
        runtimePath: rt.path,
        runtimeRoot: rt.root(ctx.namespace),
        id: req.id,
        bundle: req.bundle,
        ...rec.stdio,
        log: req.log,
      });
      if (!st.ok) throw startFailure(`container "${req.id}"`, st);
      return { ...rec, status: 'created', pid: st.pid ?? 0 };
    } catch (err) {
      await this.remove(cleanupCtx(ctx), rt, req.id, dir);
      throw err;
    }
  }

  /** Undo a create: the runtime's state, a monitor still waiting, the directory. */
  private async remove(ctx: Ctx, rt: OciRuntime | undefined, id: string, dir: string): Promise<void> {
    await rt?.delete(ctx, id, { force: true }).catch(() => {});
    const pid = await monitorPid(dir);
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await removeTree(dir);
  }

  async start(ctx: Ctx, id: string): Promise<TaskInfo> {
    const rec = await this.record(ctx, id);
    const dir = this.taskDir(ctx.namespace, id);
    // Taken before the runtime call so it never follows a quick process's finishedAt.
    const startedAt = new Date().toISOString();
    // The pid is the one create reported; asking the runtime again would cost a process spawn.
    const status = await readStatus(dir);
    await this.runtime(rec.runtime).start(ctx, id, { pid: status?.pid });
    writeFileSync(path.join(dir, 'started'), startedAt);
    return { ...rec, status: 'running', pid: status?.pid ?? 0, startedAt };
  }

  async kill(ctx: Ctx, id: string, signal: string | number, opts: { all?: boolean; execId?: string } = {}): Promise<void> {
    const rec = await this.record(ctx, id);
    if (opts.execId) {
      const info = await this.execState(ctx, id, opts.execId);
      if (info.status !== 'running') throw berthError('Conflict', `exec "${opts.execId}" in container "${id}" is not running`);
      process.kill(info.pid, processSignal(signal));
      return;
    }
    const dir = this.taskDir(ctx.namespace, id);
    if (await readExit(dir)) throw berthError('Conflict', `container "${id}" is not running`);
    if (rec.runtime === 'runc' && (await signalInit(dir, signal, !!opts.all))) return;
    await this.runtime(rec.runtime).kill(ctx, id, signal, { all: opts.all });
  }

  async wait(ctx: Ctx, id: string, execId?: string): Promise<ExitStatus> {
    const dir = execId ? this.execDir(ctx.namespace, id, execId) : this.taskDir(ctx.namespace, id);
    const exit = await waitExit(ctx, dir, execId ? `${id}/exec/${execId}` : id);
    if (execId) return exit;
    return { ...exit, oomKilled: await oomKilled((await this.record(ctx, id)).bundle) };
  }

  async state(ctx: Ctx, id: string): Promise<TaskInfo> {
    const rec = await this.record(ctx, id);
    return this.describe(withCtx(ctx, { namespace: rec.namespace }), rec);
  }

  /**
   * The task's state from its files: no process is spawned, so listing many
   * tasks stays cheap. `precise` asks the runtime as well (at recovery, when
   * berthd may have died between a runtime call and its marker file) and
   * brings the `started` and `paused` markers in line with it.
   */
  private async describe(ctx: Ctx, rec: TaskRecord, precise = false): Promise<TaskInfo> {
    const dir = this.taskDir(rec.namespace, rec.id);
    let startedAt: string | undefined;
    try {
      // Small files on the state tmpfs are read in place (see readJson in monitor.ts).
      startedAt = readFileSync(path.join(dir, 'started'), 'utf8');
    } catch {
      startedAt = undefined;
    }
    const base = { ...rec, pid: 0 };
    const exited = async (exit: ExitStatus): Promise<TaskInfo> => ({
      ...base,
      startedAt,
      status: 'stopped',
      pid: exit.pid,
      exit: { ...exit, oomKilled: await oomKilled(rec.bundle) },
    });
    const exit = await readExit(dir);
    if (exit) return exited(exit);
    const status = await readStatus(dir);
    const mon = await monitorPid(dir);
    if (!mon) {
      // The monitor may have written its exit file just now.
      const late = await readExit(dir);
      return late ? exited(late) : { ...base, startedAt, status: 'unknown', pid: status?.pid ?? 0 };
    }
    if (!status || !status.ok) return { ...base, status: 'created', pid: 0 };
    const pid = status.pid ?? 0;
    const paused = existsSync(path.join(dir, 'paused'));
    if (!precise) return { ...base, startedAt, status: startedAt ? (paused ? 'paused' : 'running') : 'created', pid };
    try {
      const st = await this.runtime(rec.runtime).state(ctx, rec.id);
      // "stopped" without an exit file: the monitor is still draining output.
      const s = st.status === 'creating' ? 'created' : st.status === 'stopped' ? 'running' : st.status;
      if (s !== 'created' && !startedAt) {
        startedAt = st.created;
        await writeFile(path.join(dir, 'started'), startedAt);
      }
      if (s === 'paused' && !paused) await writeFile(path.join(dir, 'paused'), '');
      if (s !== 'paused' && paused) await rm(path.join(dir, 'paused'), { force: true });
      return { ...base, startedAt, status: s, pid: st.pid || pid };
    } catch (err) {
      if (!isNotFound(err)) throw err;
      return { ...base, startedAt, status: 'unknown', pid };
    }
  }

  async list(ctx: Ctx): Promise<TaskInfo[]> {
    const root = path.join(this.stateDir, 'tasks', ctx.namespace);
    const ids = await readdir(root).catch((err) => (hasErrno(err, 'ENOENT') ? [] : Promise.reject(err)));
    const out: TaskInfo[] = [];
    for (const id of ids) {
      try {
        out.push(await this.state(ctx, id));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return out;
  }

  async exec(ctx: Ctx, id: string, execId: string, proc: OciProcess, stdio: TaskStdio = {}): Promise<void> {
    if (!idPattern.test(execId)) throw berthError('InvalidArgument', `invalid exec id "${execId}"`);
    const rec = await this.record(ctx, id);
    const info = await this.describe(ctx, rec);
    if (info.status !== 'running') throw berthError('Conflict', `container "${id}" is not running`);
    const rt = this.runtime(rec.runtime);
    const dir = this.execDir(ctx.namespace, id, execId);
    await mkdir(path.dirname(dir), { recursive: true, mode: 0o700 });
    try {
      await mkdir(dir);
    } catch (err) {
      if (hasErrno(err, 'EEXIST')) throw berthError('AlreadyExists', `exec "${execId}" already exists in container "${id}"`);
      throw err;
    }
    try {
      const processFile = path.join(dir, 'process.json');
      // An exec'd process runs at once: its terminal size must be set by the runtime, not resized after.
      const consoleSize = stdio.tty && stdio.rows && stdio.cols ? { height: stdio.rows, width: stdio.cols } : proc.consoleSize;
      await writeFile(processFile, JSON.stringify({ ...proc, terminal: !!stdio.tty, consoleSize }));
      const st = await launchMonitor(ctx, {
        monitorPath: this.monitorPath,
        dir,
        runtimePath: rt.path,
        runtimeRoot: rt.root(ctx.namespace),
        id,
        processFile,
        ...stdio,
      });
      if (!st.ok) throw startFailure(`exec "${execId}" in container "${id}"`, st);
    } catch (err) {
      await this.removeExec(dir);
      throw err;
    }
  }

  async startExec(ctx: Ctx, id: string, execId: string): Promise<{ pid: number }> {
    const dir = this.execDir(ctx.namespace, id, execId);
    const status = await readStatus(dir);
    if (!status) throw berthError('NotFound', `exec "${execId}" in container "${id}" not found`);
    if (status.pid) throw berthError('Conflict', `exec "${execId}" in container "${id}" already started`);
    const st = await control(ctx, dir, 'start');
    if (!st.ok) throw startFailure(`exec "${execId}" in container "${id}"`, st);
    return { pid: st.pid ?? 0 };
  }

  async execState(ctx: Ctx, id: string, execId: string): Promise<ExecInfo> {
    const dir = this.execDir(ctx.namespace, id, execId);
    const status = await readStatus(dir);
    if (!status) throw berthError('NotFound', `exec "${execId}" in container "${id}" not found`);
    const exit = await readExit(dir);
    if (exit) return { id, execId, status: 'stopped', pid: exit.pid, exit };
    const mon = await monitorPid(dir);
    if (!mon) return { id, execId, status: 'unknown', pid: status.pid ?? 0 };
    return { id, execId, status: status.pid ? 'running' : 'created', pid: status.pid ?? 0 };
  }

  async listExecs(ctx: Ctx, id: string): Promise<ExecInfo[]> {
    await this.record(ctx, id);
    const ids = await readdir(path.join(this.taskDir(ctx.namespace, id), 'exec')).catch(() => [] as string[]);
    const out: ExecInfo[] = [];
    for (const e of ids) out.push(await this.execState(ctx, id, e).catch(() => ({ id, execId: e, status: 'unknown' as const, pid: 0 })));
    return out;
  }

  /**
   * Remove an exec session's dir and monitor, killing its process if still
   * running. `graceful`: for an exec that exited, give its monitor the time it
   * takes to flush the last output to attached clients and leave by itself.
   */
  async deleteExec(ctx: Ctx, id: string, execId: string, opts: { graceful?: boolean } = {}): Promise<void> {
    const dir = this.execDir(ctx.namespace, id, execId);
    const info = await this.execState(ctx, id, execId);
    if (opts.graceful && info.status === 'stopped') {
      // The monitor flushes clients for at most 2 s after writing the exit file.
      for (let i = 0; i < 50 && (await monitorPid(dir)); i++) await new Promise((r) => setTimeout(r, 100));
    }
    if (info.status === 'running') {
      try {
        process.kill(info.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
      await waitExit(cleanupCtx(ctx, 10_000), dir, execId).catch(() => {});
    }
    await this.removeExec(dir);
  }

  private async removeExec(dir: string): Promise<void> {
    const pid = await monitorPid(dir);
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await removeTree(dir);
  }

  async attach(ctx: Ctx, id: string, execId?: string, opts: AttachOptions = {}): Promise<Duplex> {
    const dir = execId ? this.execDir(ctx.namespace, id, execId) : this.taskDir(ctx.namespace, id);
    if (!execId) await this.record(ctx, id);
    try {
      if (opts.all && !execId) {
        // A monitor started by an earlier berthd has only attach.sock.
        const held = await connectUnix(ctx, path.join(dir, monitorFiles.attachAll)).catch((err) => {
          if (hasErrno(err, 'ENOENT')) return undefined;
          throw err;
        });
        if (held) return held;
      }
      return await connectUnix(ctx, path.join(dir, monitorFiles.attach));
    } catch (err) {
      if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ECONNREFUSED')) {
        throw berthError('Conflict', `${execId ? `exec "${execId}" in ` : ''}container "${id}" is not running`, err);
      }
      throw err;
    }
  }

  private async ctl(ctx: Ctx, id: string, execId: string | undefined, command: string): Promise<void> {
    const dir = execId ? this.execDir(ctx.namespace, id, execId) : this.taskDir(ctx.namespace, id);
    if (!execId) await this.record(ctx, id);
    let st: MonitorStatus;
    try {
      st = await control(ctx, dir, command);
    } catch (err) {
      if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ECONNREFUSED')) throw berthError('Conflict', `container "${id}" is not running`, err);
      throw err;
    }
    if (!st.ok) throw berthError('FailedPrecondition', `container "${id}": ${command}: ${st.error}`);
  }

  resize(ctx: Ctx, id: string, size: { rows: number; cols: number }, execId?: string): Promise<void> {
    if (!(size.rows > 0 && size.cols > 0 && size.rows < 65536 && size.cols < 65536)) {
      return Promise.reject(berthError('InvalidArgument', `invalid terminal size ${size.rows}x${size.cols}`));
    }
    return this.ctl(ctx, id, execId, `resize ${size.rows} ${size.cols}`);
  }

  closeStdin(ctx: Ctx, id: string, execId?: string): Promise<void> {
    return this.ctl(ctx, id, execId, 'close-stdin');
  }

  reopenLog(ctx: Ctx, id: string): Promise<void> {
    return this.ctl(ctx, id, undefined, 'reopen-log');
  }

  async pause(ctx: Ctx, id: string): Promise<void> {
    const rec = await this.record(ctx, id);
    const marker = path.join(this.taskDir(ctx.namespace, id), 'paused');
    // Marked first: a crash in between leaves "paused" on a task recover() then checks with the runtime.
    await writeFile(marker, '');
    try {
      await this.runtime(rec.runtime).pause(ctx, id);
    } catch (err) {
      await rm(marker, { force: true });
      throw err;
    }
  }

  async resume(ctx: Ctx, id: string): Promise<void> {
    const rec = await this.record(ctx, id);
    await this.runtime(rec.runtime).resume(ctx, id);
    await rm(path.join(this.taskDir(ctx.namespace, id), 'paused'), { force: true });
  }

  async update(ctx: Ctx, id: string, resources: LinuxResources): Promise<void> {
    await this.runtime((await this.record(ctx, id)).runtime).update(ctx, id, resources);
  }

  async pids(ctx: Ctx, id: string): Promise<number[]> {
    return this.runtime((await this.record(ctx, id)).runtime).ps(ctx, id);
  }

  async stats(ctx: Ctx, id: string): Promise<TaskStats> {
    const rec = await this.record(ctx, id);
    const [raw, info] = await Promise.all([this.runtime(rec.runtime).stats(ctx, id), this.describe(ctx, rec)]);
    const networks = await networkCounters(info.pid);
    return { ...normaliseStats(raw), ...(networks ? { networks } : {}) };
  }

  async delete(ctx: Ctx, id: string, opts: { force?: boolean; onStopped?: () => void } = {}): Promise<ExitStatus | undefined> {
    const rec = await this.record(ctx, id);
    const rt = this.runtime(rec.runtime);
    const dir = this.taskDir(ctx.namespace, id);
    // A recorded exit is all the removal of an ended task needs (the usual case, at every exit):
    // its state is not worked out from the other files.
    let exit = await readExit(dir);
    if (!exit) {
      const info = await this.describe(ctx, rec);
      if ((info.status === 'running' || info.status === 'paused') && !opts.force) {
        throw berthError('Conflict', `container "${id}" is ${info.status}: stop it first or force the removal`);
      }
      exit = info.exit;
      if (!exit && info.status !== 'unknown') {
        // Kill through the runtime, then let the monitor drain the output and write the exit file.
        if (info.status === 'paused') await rt.resume(ctx, id).catch(() => {});
        await rt.kill(ctx, id, 'SIGKILL', { all: true }).catch(() => {});
        exit = await waitExit(cleanupCtx(ctx, 10_000), dir, id).catch(() => undefined);
      }
    }
    const removeTask = async () => {
      for (const e of readdirOrEmpty(path.join(dir, 'exec'))) await this.removeExec(path.join(dir, 'exec', e));
      await this.remove(ctx, undefined, id, dir);
    };
    const notFoundOk = (err: unknown) => {
      if (!isNotFound(err)) throw err;
    };
    if (exit) {
      // With the exit recorded the init is gone: the runtime's state can go without a runtime
      // process, and beside the task's directory (runtime state left without one is removed at
      // recovery, see removeGhosts).
      const taskFiles = removeTask();
      taskFiles.catch(() => {});
      const deleted = await rt.deleteStopped(ctx, id).catch(notFoundOk);
      if (!deleted?.cgroupsRemoved) await removeCgroup(rec.bundle);
      opts.onStopped?.();
      await Promise.all([deleted?.stateRemoved, taskFiles]);
    } else {
      await rt.delete(ctx, id, { force: true }).catch(notFoundOk);
      await removeCgroup(rec.bundle);
      opts.onStopped?.();
      await removeTask();
    }
    return exit;
  }

  async recover(ctx: Ctx): Promise<TaskInfo[]> {
    await this.sweep(ctx);
    const tasksRoot = path.join(this.stateDir, 'tasks');
    const out: TaskInfo[] = [];
    for (const ns of await readdir(tasksRoot).catch(() => [] as string[])) {
      const nctx = withCtx(ctx, { namespace: ns, log: ctx.log.child({ namespace: ns }) });
      for (const id of await readdir(path.join(tasksRoot, ns)).catch(() => [] as string[])) {
        const rec = await this.record(nctx, id).catch(() => undefined);
        if (!rec) continue;
        try {
          out.push(await this.describe(nctx, rec, true));
        } catch (err) {
          nctx.log.warn('cannot read task state', { id, err, kind: kindOf(err) });
        }
      }
    }
    return out;
  }

  /**
   * At daemon start, before the tasks are read: what a crash left half made
   * goes, and no live task is touched. A task directory without task.json
   * (berthd died before the monitor was started: empty, or only the temp
   * file) is removed. A task whose create has not reported is given its
   * monitor's answer first (the monitor outlives berthd and finishes the
   * runtime's create; removing the task under it would leave a created
   * container with no task), then removed unless it was created. Exec
   * sessions whose monitor died without an exit go, and so does runtime
   * state that has no task directory.
   */
  async sweep(ctx: Ctx): Promise<void> {
    const tasksRoot = path.join(this.stateDir, 'tasks');
    for (const ns of await readdir(tasksRoot).catch(() => [] as string[])) {
      const nctx = withCtx(ctx, { namespace: ns, log: ctx.log.child({ namespace: ns }) });
      for (const id of await readdir(path.join(tasksRoot, ns)).catch(() => [] as string[])) {
        const dir = this.taskDir(ns, id);
        const rec = await this.record(nctx, id).catch(() => undefined);
        const status = rec ? await settledStatus(dir) : undefined;
        if (!rec || !status || !status.ok) {
          nctx.log.info('removing half-created task', { id });
          const rt = rec ? (this.runtimes.get(rec.runtime) ?? this.runtime(this.defaultRuntime)) : undefined;
          await this.remove(cleanupCtx(nctx), rt, id, dir).catch((err) => nctx.log.warn('cannot remove a half-created task', { id, err }));
          continue;
        }
        for (const e of await readdir(path.join(dir, 'exec')).catch(() => [] as string[])) {
          const edir = path.join(dir, 'exec', e);
          if (!(await monitorPid(edir)) && !(await readExit(edir))) await this.removeExec(edir);
        }
      }
    }
    await this.removeGhosts(ctx);
  }

  /**
   * Runtime state with no task directory (a removal that failed half-way,
   * or a create cut short): runc's containers are deleted through runc; a
   * directory runc never finished (no state.json, so `runc list` skips it)
   * is removed, unless something is mounted in it.
   */
  private async removeGhosts(ctx: Ctx): Promise<void> {
    for (const rt of this.runtimes.values()) {
      const base = path.join(this.stateDir, 'runtime', rt.name);
      for (const ns of await readdir(base).catch(() => [] as string[])) {
        const nctx = withCtx(ctx, { namespace: ns });
        const found = await rt.list(nctx).catch(() => []);
        for (const c of found) {
          if (existsSync(this.taskDir(ns, c.id))) continue;
          nctx.log.info('removing runtime state without a task', { id: c.id, runtime: rt.name });
          await rt.delete(cleanupCtx(nctx), c.id, { force: true }).catch(() => {});
        }
        for (const id of await readdir(rt.root(ns)).catch(() => [] as string[])) {
          const dir = path.join(rt.root(ns), id);
          if (existsSync(this.taskDir(ns, id)) || existsSync(path.join(dir, 'state.json'))) continue;
          if (mountPointsUnder(dir).length) continue;
          nctx.log.info('removing unfinished runtime state', { id, runtime: rt.name });
          await removeTree(dir).catch((err) => nctx.log.warn('cannot remove runtime state', { id, err }));
        }
      }
    }
  }
}

/**
 * A task's create result once its monitor has given one: a live monitor
 * that has not reported yet is still running the runtime's create, which
 * is waited for (bounded: a monitor stuck past it is treated as failed).
 */
async function settledStatus(dir: string, limitMs = 30_000): Promise<MonitorStatus | undefined> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const status = await readStatus(dir);
    if (status) return status;
    if (!(await monitorPid(dir))) return readStatus(dir);
    if (Date.now() > deadline) return undefined;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * What `runc kill` does, without spawning runc, when it is safe to: a signal
 * for the init alone goes to it directly, and so does SIGKILL for "all" when
 * the init is pid 1 of its own pid namespace (the kernel then kills every
 * process in it). The init is known by the pid its monitor reported and must
 * still be the monitor's child, so a reused pid is never signalled. False
 * when the runtime has to do it.
 */
async function signalInit(dir: string, signal: string | number, all: boolean): Promise<boolean> {
  const sig = processSignal(signal);
  if (all && sig !== 9 && sig !== 'SIGKILL') return false;
  const pid = (await readStatus(dir))?.pid;
  const monitor = await monitorPid(dir);
  if (!pid || !monitor) return false;
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return false;
  }
  if (Number(/^PPid:\s*(\d+)/m.exec(status)?.[1]) !== monitor) return false;
  if (all && /^NSpid:.*\s(\d+)$/m.exec(status)?.[1] !== '1') return false;
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** The names in a directory of the state tmpfs, read in place; none when it is missing. */
function readdirOrEmpty(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
