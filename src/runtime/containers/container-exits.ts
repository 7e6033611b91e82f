import path from 'node:path';
import type { ContainerRecord } from '../../core/containers.ts';
import type { Ctx } from '../../core/context.ts';
import { cleanupCtx, withCtx } from '../../core/context.ts';
import { isNotFound } from '../../core/errors.ts';
import type { ContainerBasics, ContainerServiceDeps, RuntimeState } from './types.ts';
import { restartDelay, shouldRestart } from './restart-policy.ts';
import type { ExitStatus } from '../tasks/task-types.ts';

/**
 * What happens when a container's task exits: an exit watcher per running
 * task records the exit (under the container's lock), gives back the task,
 * network and rootfs mount, publishes `die`, and applies the restart policy
 * with its back-off timer; or, for a container to be removed at its exit
 * (`--rm`, an `rm -f` waiting for it), goes straight on to the removal.
 * The service hands in its state and events as functions, and the start
 * and removal this calls back into.
 */
export interface ContainerExitsDeps
  extends Pick<ContainerBasics, 'state' | 'patch' | 'locked' | 'event' | 'bundleDir'>,
    Pick<ContainerServiceDeps, 'store' | 'tasks' | 'mounter' | 'network' | 'log'> {
  /** A policy restart. */
  start(ctx: Ctx, rec: ContainerRecord, opts: { manual: boolean; restart?: boolean }): Promise<void>;
  /** The removal of a container marked "removing" at its exit. */
  removeNow(ctx: Ctx, id: string, opts: { volumes?: boolean }, marked: RuntimeState): Promise<void>;
}

export class ContainerExits {
  readonly #d: ContainerExitsDeps;
  /** Containers in a user's `restart`: their exit must not auto-remove them. */
  readonly #userRestarts = new Set<string>();
  /** Exit watchers of running tasks, by container id. */
  readonly #watching = new Map<string, Promise<void>>();
  readonly #restartTimers = new Map<string, NodeJS.Timeout>();
  /** Forced removals waiting for the container's exit: the exit handler removes it. */
  readonly #removals = new Map<string, { volumes?: boolean }>();
  #closed = false;

  constructor(deps: ContainerExitsDeps) {
    this.#d = deps;
  }

  /** Follow a running task until it exits, then record the exit and apply the restart policy. */
  watch(ctx: Ctx, rec: ContainerRecord): void {
    if (this.#watching.has(rec.id)) return;
    const bg = withCtx(ctx, { signal: new AbortController().signal });
    const p = (async () => {
      let exit: ExitStatus;
      try {
        exit = await this.#d.tasks.wait(bg, rec.id);
      } catch (err) {
        if (this.#closed) return;
        this.#d.log.warn('lost track of a container task', { container: rec.id, err });
        exit = { exitCode: 255, signal: 0, pid: 0, finishedAt: new Date().toISOString() };
      }
      if (this.#closed) return;
      this.#watching.delete(rec.id);
      await this.#d.locked(rec.id, () => this.onExit(bg, rec.id, exit)).catch((err) => this.#d.log.error('handling a container exit failed', { container: rec.id, err }));
    })();
    this.#watching.set(rec.id, p);
  }

  /** Handle an exit: release or remove, record, apply the restart policy. Run under the container's lock, or by recovery before anything else runs. */
  async onExit(ctx: Ctx, id: string, exit: ExitStatus): Promise<void> {
    let rec: ContainerRecord;
    try {
      rec = await this.#d.store.get(ctx, id);
    } catch {
      return;
    }
    // A container removed at exit (--rm, or `rm -f` waiting for this exit) goes straight on to its
    // removal, which gives back what it holds on the way: marked "removing" first, so that a crash
    // in between still finishes it.
    const removal = this.#removals.get(id) ?? (rec.config.autoRemove && !this.#userRestarts.has(id) ? { volumes: true } : undefined);
    if (!removal) await this.release(ctx, rec);
    // Decide on the state as it is now: a stop may have landed while the task was released.
    const st = await this.#d.patch(ctx, id, { status: removal ? 'removing' : 'exited', pid: undefined, exitCode: exit.exitCode, oomKilled: !!exit.oomKilled, finishedAt: exit.finishedAt, network: undefined, taskCreated: false });
    this.#d.event(ctx, 'die', id, { ...rec.labels, name: rec.name, image: rec.imageName, exitCode: String(exit.exitCode) });

    if (removal) {
      await this.#d.removeNow(ctx, id, removal, st).catch((err) => this.#d.log.warn(rec.config.autoRemove ? 'auto-remove failed' : 'removal failed', { container: id, err }));
      return;
    }
    const facts = { exitCode: exit.exitCode, manuallyStopped: !!st.manuallyStopped, restartCount: st.restartCount ?? 0 };
    if (!shouldRestart(rec.config.restartPolicy, facts)) return;
    const ranFor = st.startedAt ? Date.parse(exit.finishedAt) - Date.parse(st.startedAt) : 0;
    const delay = restartDelay(st.restartDelayMs ?? 0, ranFor);
    await this.#d.patch(ctx, id, { status: 'restarting', restartDelayMs: delay });
    const t = setTimeout(() => {
      this.#restartTimers.delete(id);
      void this.#d.locked(id, async () => {
        const now = await this.#d.state(ctx, id).catch(() => undefined);
        if (!now || now.status !== 'restarting' || this.#closed) return;
        await this.#d.start(ctx, rec, { manual: false, restart: true });
      }).catch((err) => this.#d.log.warn('restart failed', { container: id, err }));
    }, delay);
    t.unref();
    this.#restartTimers.set(id, t);
  }

  /** Give back what a running container holds: the task, its network, its rootfs mount. */
  async release(ctx: Ctx, rec: ContainerRecord): Promise<void> {
    const parts = this.releaseParts(ctx, rec);
    await Promise.all([parts.task, parts.rootfs, parts.network]);
  }

  /**
   * The parts of a release, as promises that never reject (failures are
   * logged): the task's removal; the rootfs unmount, as soon as no process
   * of the task remains to keep it busy; and the network, which waits for
   * neither.
   */
  releaseParts(ctx: Ctx, rec: ContainerRecord): { task: Promise<void>; rootfs: Promise<void>; network: Promise<void> } {
    const cctx = cleanupCtx(ctx);
    // The rootfs is unmounted once no process of the task remains, while the task's files still go.
    let stopped = () => {};
    const processesGone = new Promise<void>((resolve) => (stopped = resolve));
    const task = this.#d.tasks.delete(cctx, rec.id, { force: true, onStopped: () => stopped() }).then(
      () => {},
      (err) => {
        if (!isNotFound(err)) this.#d.log.warn('deleting a task failed', { container: rec.id, err });
      },
    );
    const unmounted = Promise.race([processesGone, task]).then(() =>
      this.#d.mounter.unmountAll(path.join(this.#d.bundleDir(rec), 'rootfs')).catch((err) => this.#d.log.warn('unmount failed', { container: rec.id, err })),
    );
    const network = this.#d.network.teardownContainer(cctx, rec.id).catch((err) => this.#d.log.warn('network teardown failed', { container: rec.id, err }));
    return { task, rootfs: unmounted, network: network };
  }

  /** Resolves when the container's exit has been handled (or, for a task not followed, once it exited). */
  async waitExit(ctx: Ctx, id: string): Promise<void> {
    const w = this.#watching.get(id);
    if (w) return w;
    await this.#d.tasks.wait(ctx, id).catch(() => {});
  }

  /** Cancel a pending policy restart. */
  cancelRestart(id: string): void {
    const t = this.#restartTimers.get(id);
    if (t) clearTimeout(t);
    this.#restartTimers.delete(id);
  }

  /** Run a user's `restart` (`fn`): the exit it causes does not auto-remove the container. */
  async duringRestart<T>(id: string, fn: () => Promise<T>): Promise<T> {
    this.#userRestarts.add(id);
    try {
      return await fn();
    } finally {
      this.#userRestarts.delete(id);
    }
  }

  /** Run a forced removal's kill and wait (`fn`): the exit it causes carries out the removal. */
  async removeAtExit<T>(id: string, opts: { volumes?: boolean }, fn: () => Promise<T>): Promise<T> {
    this.#removals.set(id, opts);
    try {
      return await fn();
    } finally {
      this.#removals.delete(id);
    }
  }

  /** Stop following tasks and cancel pending policy restarts. */
  close(): void {
    this.#closed = true;
    for (const t of this.#restartTimers.values()) clearTimeout(t);
    this.#restartTimers.clear();
  }
}
