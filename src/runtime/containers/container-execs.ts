import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { ContainerRecord } from '../../core/containers.ts';
import type { Ctx } from '../../core/context.ts';
import { cleanupCtx, withCtx } from '../../core/context.ts';
import { berthError } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { demux, Streams } from '../../core/stdcopy.ts';
import type { ContainerBasics, ExecConfig, RuntimeState } from './types.ts';
import type { Spec } from '../oci/oci-types.ts';
import { resolveUserInRootfs } from '../oci/rootfs-files.ts';
import { buildExecProcess } from '../oci/spec-exec.ts';
import type { OciProcess, TaskService } from '../tasks/task-types.ts';

/**
 * Processes run in a container beside its own: docker's exec sessions
 * (create, start attached or detached, inspect, resize, wait), recorded in
 * the container's state with the most recent exited ones kept, and
 * `execSync` for health checks and the CRI, which records nothing. The
 * container service hands in its records, state and events as functions
 * (`ContainerBasics`).
 */
export interface ContainerExecsDeps extends Pick<ContainerBasics, 'resolve' | 'list' | 'state' | 'patch' | 'event' | 'bundleDir'> {
  tasks: TaskService;
  host: { capabilities?: readonly string[] };
}

export class ContainerExecs {
  readonly #d: ContainerExecsDeps;

  constructor(deps: ContainerExecsDeps) {
    this.#d = deps;
  }

  async execCreate(ctx: Ctx, idOrName: string, exec: ExecConfig): Promise<string> {
    const rec = await this.#d.resolve(ctx, idOrName);
    const st = await this.#d.state(ctx, rec.id);
    if (st.status === 'paused') throw berthError('Conflict', `Container ${rec.id} is paused, unpause the container before exec`);
    if (st.status !== 'running') throw berthError('Conflict', `Container ${rec.id} is not running`);
    if (!exec.cmd?.length) throw berthError('InvalidArgument', 'No exec command specified');
    const bundle = this.#d.bundleDir(rec);
    // The exec's process is the container's (as started) with the exec's own args, env, cwd and user.
    const spec = JSON.parse(await readFile(path.join(bundle, 'config.json'), 'utf8')) as Spec;
    const user = exec.user ? await resolveUserInRootfs(ctx, path.join(bundle, 'rootfs'), exec.user) : undefined;
    const process: OciProcess = buildExecProcess(spec, {
      cmd: exec.cmd,
      env: exec.env,
      tty: exec.tty,
      workingDir: exec.workingDir,
      user,
      privileged: exec.privileged,
      availableCapabilities: this.#d.host.capabilities,
    });
    const execId = newId();
    const dim = (n: unknown) => Number.isInteger(n) && (n as number) > 0 && (n as number) < 65536;
    const size = exec.tty && exec.consoleSize && dim(exec.consoleSize.height) && dim(exec.consoleSize.width) ? { rows: exec.consoleSize.height, cols: exec.consoleSize.width } : {};
    await this.#d.tasks.exec(ctx, rec.id, execId, process, { tty: !!exec.tty, stdin: !!exec.attachStdin, stdinOnce: !!exec.attachStdin && !!exec.stdinOnce, ...size });
    await this.#d.patch(ctx, rec.id, (cur) => ({ execs: { ...(cur.execs ?? {}), [execId]: { config: exec, running: false } } }));
    this.#d.event(ctx, 'exec_create', rec.id, { name: rec.name, execID: execId });
    return execId;
  }

  async #findExec(ctx: Ctx, execId: string): Promise<{ rec: ContainerRecord; st: RuntimeState }> {
    for (const c of await this.#d.list(ctx)) {
      if (c.state.execs?.[execId]) return { rec: c.record, st: c.state };
    }
    throw berthError('NotFound', `No such exec instance: ${execId}`);
  }

  async execStart(ctx: Ctx, execId: string, opts: { detach?: boolean } = {}): Promise<{ stream?: Duplex; tty: boolean }> {
    const { rec, st } = await this.#findExec(ctx, execId);
    const info = st.execs![execId];
    if (info.running || info.exitCode !== undefined) throw berthError('Conflict', `exec ${execId} has already been started`);
    const stream = opts.detach ? undefined : await this.#d.tasks.attach(ctx, rec.id, execId);
    let pid: number;
    try {
      ({ pid } = await this.#d.tasks.startExec(ctx, rec.id, execId));
    } catch (err) {
      // A command that cannot be started (not found: 127, not executable: 126) is an exec that
      // ended at once: inspect reports that code, as docker's does, and nothing of it stays.
      stream?.destroy();
      const cctx = cleanupCtx(ctx);
      const exitCode = (err as { exitCode?: unknown }).exitCode;
      await this.#patchExec(cctx, rec.id, execId, { running: false, exitCode: typeof exitCode === 'number' ? exitCode : 126 }).catch(() => {});
      await this.#d.tasks.deleteExec(cctx, rec.id, execId, { graceful: false }).catch(() => {});
      throw err;
    }
    await this.#patchExec(ctx, rec.id, execId, { running: true, pid });
    this.#d.event(ctx, 'exec_start', rec.id, { name: rec.name, execID: execId });
    const bg = withCtx(ctx, { signal: new AbortController().signal });
    void this.#d.tasks
      .wait(bg, rec.id, execId)
      .then(async (exit) => {
        await this.#patchExec(bg, rec.id, execId, { running: false, exitCode: exit.exitCode });
        this.#d.event(bg, 'exec_die', rec.id, { execID: execId, exitCode: String(exit.exitCode) });
        // The exit code now lives in the container's state: the session's dir
        // and monitor can go, or a long-running container gathers one per exec.
        await this.#d.tasks.deleteExec(bg, rec.id, execId, { graceful: true });
      })
      .catch(() => {});
    return { stream, tty: !!info.config.tty };
  }

  async execInspect(ctx: Ctx, execId: string): Promise<{ id: string; containerId: string; running: boolean; exitCode?: number; pid?: number; config: ExecConfig }> {
    const { rec, st } = await this.#findExec(ctx, execId);
    const info = st.execs![execId];
    if (info.running) {
      const t = await this.#d.tasks.execState(ctx, rec.id, execId).catch(() => undefined);
      if (t?.exit) return { id: execId, containerId: rec.id, running: false, exitCode: t.exit.exitCode, pid: info.pid, config: info.config };
    }
    return { id: execId, containerId: rec.id, running: info.running, exitCode: info.exitCode, pid: info.pid, config: info.config };
  }

  async execResize(ctx: Ctx, execId: string, rows: number, cols: number): Promise<void> {
    const { rec } = await this.#findExec(ctx, execId);
    await this.#d.tasks.resize(ctx, rec.id, { rows, cols }, execId);
  }

  /** End an exec's stdin (the client's input ended), so a command that reads it to its end finishes. */
  async execCloseStdin(ctx: Ctx, execId: string): Promise<void> {
    const { rec } = await this.#findExec(ctx, execId);
    await this.#d.tasks.closeStdin(ctx, rec.id, execId);
  }

  /**
   * Run a command in a running container and collect its output, without an
   * exec record: health checks and the CRI's ExecSync. Past `timeoutMs` the
   * command is killed and `timedOut` set; output beyond `maxOutput` bytes a
   * stream is dropped.
   */
  async execSync(ctx: Ctx, idOrName: string, cmd: string[], opts: { timeoutMs: number; maxOutput?: number; user?: string }): Promise<{ exitCode: number; stdout: Buffer; stderr: Buffer; timedOut: boolean }> {
    const rec = await this.#d.resolve(ctx, idOrName);
    const st = await this.#d.state(ctx, rec.id);
    if (st.status !== 'running') throw berthError('Conflict', `Container ${rec.id} is not running`);
    if (!cmd.length) throw berthError('InvalidArgument', 'No exec command specified');
    const bundle = this.#d.bundleDir(rec);
    const spec = JSON.parse(await readFile(path.join(bundle, 'config.json'), 'utf8')) as Spec;
    const user = opts.user ? await resolveUserInRootfs(ctx, path.join(bundle, 'rootfs'), opts.user) : undefined;
    const proc = buildExecProcess(spec, { cmd, user, availableCapabilities: this.#d.host.capabilities });
    const execId = newId();
    const max = opts.maxOutput ?? 1 << 20;
    const out: Buffer[][] = [[], []];
    const sizes = [0, 0];
    const bg = withCtx(ctx, { signal: new AbortController().signal });
    await this.#d.tasks.exec(ctx, rec.id, execId, proc, { tty: false, stdin: false });
    try {
      const stream = await this.#d.tasks.attach(ctx, rec.id, execId);
      const drained = demux(stream, (n, data) => {
        const i = n === Streams.stderr ? 1 : 0;
        if (sizes[i] >= max) return;
        out[i].push(data.subarray(0, max - sizes[i]));
        sizes[i] += data.length;
      }).catch(() => {});
      await this.#d.tasks.startExec(ctx, rec.id, execId);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        void this.#d.tasks.kill(bg, rec.id, 'SIGKILL', { execId }).catch(() => {});
      }, opts.timeoutMs);
      try {
        const exit = await this.#d.tasks.wait(ctx, rec.id, execId);
        await drained;
        return { exitCode: exit.exitCode, stdout: Buffer.concat(out[0]), stderr: Buffer.concat(out[1]), timedOut };
      } finally {
        clearTimeout(timer);
      }
    } finally {
      await this.#d.tasks.deleteExec(cleanupCtx(ctx), rec.id, execId).catch(() => {});
    }
  }

  /** Signal a running exec's process: the CRI kills an exec whose client went away, as containerd does. */
  async execKill(ctx: Ctx, execId: string, signal: string): Promise<void> {
    const { rec, st } = await this.#findExec(ctx, execId);
    if (!st.execs![execId].running) return;
    await this.#d.tasks.kill(ctx, rec.id, signal, { execId });
  }

  async execWait(ctx: Ctx, execId: string): Promise<number> {
    const { rec, st } = await this.#findExec(ctx, execId);
    const known = st.execs![execId].exitCode;
    if (known !== undefined) return known;
    try {
      return (await this.#d.tasks.wait(ctx, rec.id, execId)).exitCode;
    } catch (err) {
      // The session was removed once its exit code was recorded.
      const again = (await this.#findExec(ctx, execId)).st.execs![execId].exitCode;
      if (again === undefined) throw err;
      return again;
    }
  }

  async #patchExec(ctx: Ctx, id: string, execId: string, patch: Partial<NonNullable<RuntimeState['execs']>[string]>): Promise<void> {
    await this.#d.patch(ctx, id, (cur) => {
      const e = cur.execs?.[execId];
      return e ? { execs: keepRecentExecs({ ...cur.execs, [execId]: { ...e, ...patch } }) } : {};
    });
  }
}

/**
 * Exited execs stay inspectable, but only the most recent ones: the state of
 * a container that lives for months must not grow with every exec.
 */
const keptExitedExecs = 32;

function keepRecentExecs(execs: NonNullable<RuntimeState['execs']>): NonNullable<RuntimeState['execs']> {
  const exited = Object.keys(execs).filter((k) => execs[k].exitCode !== undefined);
  if (exited.length <= keptExitedExecs) return execs;
  const drop = new Set(exited.slice(0, exited.length - keptExitedExecs));
  return Object.fromEntries(Object.entries(execs).filter(([k]) => !drop.has(k)));
}

