import type { Duplex } from 'node:stream';
import type { Ctx } from '../../core/context.ts';
import type { ExitStatus } from './monitor.ts';
import type { LinuxResources } from './runc.ts';
import type { Process } from '../oci/oci-types.ts';

export type { ExitStatus } from './monitor.ts';

export interface AttachOptions {
  /** Hold the output while this client is behind, rather than disconnect it (see `attach`). */
  all?: boolean;
}

/**
 * Tasks: the running side of a container. A task is one OCI container
 * (created from a bundle by an OCI runtime) plus its monitor, a small native
 * process that is the container's parent, holds its stdio, writes its log
 * and records its exit status. Exec sessions are extra processes in a
 * task's container, each with a monitor of its own. Tasks are scoped by
 * ctx.namespace; their files live under `<state>/tasks/<namespace>/<id>/`.
 *
 * Lifecycle: create -> (attach) -> start -> running <-> paused -> stopped
 * (the exit file exists) -> delete. A stopped task keeps its exit status
 * until deleted. Nothing here knows images, names or restart policies: the
 * container service (and through it the CLI, the Docker API and the CRI)
 * owns those. For a pod, the CRI creates the sandbox's task first and
 * points the next containers' bundles at its namespaces (`/proc/PID/ns/*`
 * from `state().pid`); each still gets its own task and log.
 *
 * Error kinds: NotFound (no such task or exec), AlreadyExists (create of an
 * existing id), Conflict (the task's state forbids the operation, e.g.
 * delete of a running task without force, attach to a stopped one),
 * InvalidArgument (the process cannot be started: the error carries
 * `exitCode` 127 when the executable is missing, 126 when it is not
 * executable; see `startFailureCode`), Unavailable (the monitor died).
 *
 * Example:
 *   const t = await tasks.create(ctx, { id, bundle, stdio: {}, log: { path, format: 'json-file' } });
 *   const exited = tasks.wait(ctx, id);
 *   await tasks.start(ctx, id);
 *   const { exitCode } = await exited;
 *   await tasks.delete(ctx, id);
 */
export interface TaskService {
  /** Start a monitor that runs the runtime's create; resolves once the container exists (status "created"). */
  create(ctx: Ctx, req: CreateTaskRequest): Promise<TaskInfo>;
  /** Run the container's process (runtime start). */
  start(ctx: Ctx, id: string): Promise<TaskInfo>;
  /** Signal the task's init process (or, with `all`, every process; with `execId`, that exec's process). */
  kill(ctx: Ctx, id: string, signal: string | number, opts?: { all?: boolean; execId?: string }): Promise<void>;
  /** Resolves when the task (or exec) has exited, with its exit file; at once if it already has. */
  wait(ctx: Ctx, id: string, execId?: string): Promise<ExitStatus>;
  /** The task's state, from the runtime and the exit file. */
  state(ctx: Ctx, id: string): Promise<TaskInfo>;
  /** Every task in ctx.namespace. */
  list(ctx: Ctx): Promise<TaskInfo[]>;
  /**
   * Prepare an exec session in a running task: its monitor starts and waits.
   * Attach now if the output matters, then `startExec`.
   */
  exec(ctx: Ctx, id: string, execId: string, process: OciProcess, stdio?: TaskStdio): Promise<void>;
  /** Run a prepared exec session; InvalidArgument with `exitCode` when its process cannot start. */
  startExec(ctx: Ctx, id: string, execId: string): Promise<{ pid: number }>;
  /** The exec session's state. */
  execState(ctx: Ctx, id: string, execId: string): Promise<ExecInfo>;
  /** The task's exec sessions (kept until deleteExec or the task's delete). */
  listExecs(ctx: Ctx, id: string): Promise<ExecInfo[]>;
  /** Remove an exec session; `graceful` lets the monitor of an exited exec flush its clients and leave first. */
  deleteExec(ctx: Ctx, id: string, execId: string, opts?: { graceful?: boolean }): Promise<void>;
  /**
   * A stream on the monitor's attach socket: writes go to the process's stdin
   * (if it has one); reads carry its output, raw for a tty, otherwise framed
   * with docker's 8-byte stream header (see `demux`). With stdinOnce, ending
   * the write side after sending input closes stdin; a client that has no
   * input to send calls `closeStdin` instead. Output-only clients simply
   * never write.
   *
   * A container's output does not wait for a client that falls behind: the
   * client is disconnected. With `all`, it waits instead (docker's attach
   * does): for the client that runs the container in the foreground, whose
   * output berthd relays and which must lose no byte however far behind a
   * busy berthd falls. An exec session's output always waits.
   */
  attach(ctx: Ctx, id: string, execId?: string, opts?: AttachOptions): Promise<Duplex>;
  /** Set the terminal size (tty tasks). */
  resize(ctx: Ctx, id: string, size: { rows: number; cols: number }, execId?: string): Promise<void>;
  /** Close the process's stdin (EOF for the reader). */
  closeStdin(ctx: Ctx, id: string, execId?: string): Promise<void>;
  /** Open the log path afresh after the caller moved the file away (the CRI's ReopenContainerLog). */
  reopenLog(ctx: Ctx, id: string): Promise<void>;
  pause(ctx: Ctx, id: string): Promise<void>;
  resume(ctx: Ctx, id: string): Promise<void>;
  /** Change cgroup limits (OCI linux.resources). */
  update(ctx: Ctx, id: string, resources: LinuxResources): Promise<void>;
  /** One sample of cgroup statistics. */
  stats(ctx: Ctx, id: string): Promise<TaskStats>;
  /** Host pids of the task's processes. */
  pids(ctx: Ctx, id: string): Promise<number[]>;
  /**
   * Remove the task: runtime delete and the monitor's files. A task that is
   * still running is a Conflict unless `force` (which kills it). Returns the
   * exit status if the task had one. `onStopped` is called as soon as no
   * process of the task remains (its cgroups are gone), before its files
   * are removed: what the processes held (a rootfs mount) can go from then.
   */
  delete(ctx: Ctx, id: string, opts?: { force?: boolean; onStopped?: () => void }): Promise<ExitStatus | undefined>;
  /**
   * At daemon start: the tasks found under the state directory, in every
   * namespace. Running ones keep running; ones that exited meanwhile report
   * their real exit status; half-created ones are removed.
   */
  recover(ctx: Ctx): Promise<TaskInfo[]>;
  /**
   * At daemon start, the first step of `recover` alone: half-created tasks,
   * dead exec sessions and runtime state without a task are removed; live
   * tasks are not touched. Cheap: no runtime process per live task.
   */
  sweep(ctx: Ctx): Promise<void>;
}

export interface TaskStdio {
  tty?: boolean;
  /** Give the process a stdin (a pipe, or the terminal's input with tty). */
  stdin?: boolean;
  /** Close stdin when the first attach client that sent input hangs up (docker's StdinOnce). */
  stdinOnce?: boolean;
  /** Initial terminal size. */
  rows?: number;
  cols?: number;
}

export interface TaskLog {
  path: string;
  /** docker's json-file (default) or the CRI text format. */
  format: 'json-file' | 'cri';
  /** Rotate when the file reaches this many bytes (0: never). */
  maxSize?: number;
  /** Files kept, the current one included. */
  maxFiles?: number;
}

export interface CreateTaskRequest {
  id: string;
  /** The OCI bundle: config.json and the rootfs it names. */
  bundle: string;
  /** Runtime name from the configuration; the service's default if absent. */
  runtime?: string;
  stdio?: TaskStdio;
  /** No log when absent (output still reaches attach clients). */
  log?: TaskLog;
}

export type TaskStatus = 'created' | 'running' | 'paused' | 'stopped' | 'unknown';

export interface TaskInfo {
  id: string;
  namespace: string;
  bundle: string;
  runtime: string;
  status: TaskStatus;
  /** Host pid of the init process (0 when unknown). */
  pid: number;
  stdio: TaskStdio;
  log?: TaskLog;
  createdAt: string;
  /** When `start` ran (ISO time); absent until then. */
  startedAt?: string;
  exit?: ExitStatus;
}

export interface ExecInfo {
  id: string;
  execId: string;
  status: 'created' | 'running' | 'stopped' | 'unknown';
  pid: number;
  exit?: ExitStatus;
}

/** The OCI runtime spec's `process`; for exec, `terminal` is set from the stdio's tty. */
export type OciProcess = Process;

/** Container statistics, normalised from the runtime's cgroup data. */
export interface TaskStats {
  /** ISO time of the sample. */
  read: string;
  cpu: { totalNs: number; perCpuNs: number[]; userNs: number; kernelNs: number; throttledPeriods: number; throttledNs: number };
  memory: { usage: number; limit: number; maxUsage: number; cache: number; rss: number; failcnt: number };
  pids: { current: number; limit: number };
  blkio: { readBytes: number; writeBytes: number };
  /** Per interface of the task's own network namespace (none when it shares the host's); loopback left out, as docker does. */
  networks?: Record<string, NetworkCounters>;
}

export interface NetworkCounters {
  rxBytes: number;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
}
