import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Ctx } from '../../core/context.ts';
import { hasErrno } from '../../core/errors.ts';
import { withCtx } from '../../core/context.ts';
import type { ContainerExits } from './container-exits.ts';
import type { ContainerStarter } from './container-start.ts';
import { SIGKILL, type ContainerStopper } from './container-stop.ts';
import { removeTree } from '../../core/remove-tree.ts';
import { mountPoints, mountPointsUnder } from '../../snapshots/mount.ts';
import { CONTAINER_LABEL } from '../../snapshots/remove-unheld.ts';
import type { ContainerBasics, ContainerServiceDeps } from './types.ts';
import { startOnDaemonStart } from './restart-policy.ts';
import type { ExitStatus } from '../tasks/task-types.ts';
import type { VolumeUsers } from './volume-users.ts';

/**
 * Recovery at daemon start: every container reconciled with the task that
 * survived berthd (monitors outlive it). The service hands in its state as
 * functions and the parts whose steps recovery finishes: exits, starts and
 * removals.
 */
export interface ContainerRecoveryDeps extends Pick<ContainerBasics, 'state' | 'patch' | 'locked' | 'bundleDir'>, Pick<ContainerServiceDeps, 'store' | 'tasks' | 'log' | 'mounter' | 'stateDir' | 'ownsTask' | 'snapshotter'> {
  exits: Pick<ContainerExits, 'watch' | 'release' | 'onExit'>;
  starter: Pick<ContainerStarter, 'start'>;
  stopper: Pick<ContainerStopper, 'remove'>;
  volumeUsers: VolumeUsers;
}

export class ContainerRecovery {
  readonly #d: ContainerRecoveryDeps;

  constructor(deps: ContainerRecoveryDeps) {
    this.#d = deps;
  }

  /**
   * At daemon start: reconcile every namespace's containers with the tasks
   * that survived (monitors outlive berthd). A running task is followed
   * again; one that exited while berthd was down gets its real exit code;
   * a container caught half-started is cleaned up; restart policies apply.
   */
  async recover(ctx: Ctx, namespaces: string[]): Promise<{ running: string[] }> {
    const running: string[] = [];
    const mounted = new Set(mountPoints());
    /** Snapshot keys a container (or a bundle that could not be removed) still holds, across namespaces. */
    const held = new Set<string>();
    for (const ns of namespaces) {
      const nctx = withCtx(ctx, { namespace: ns });
      const tasks = new Map((await this.#d.tasks.list(nctx).catch(() => [])).map((t) => [t.id, t]));
      const records = await this.#d.store.list(nctx);
      for (const rec of records) held.add(rec.snapshotKey).add(rec.id);
      for (const rec of records) {
        this.#d.volumeUsers.track(ns, rec.id, rec.config.mounts ?? []);
        const st = await this.#d.state(nctx, rec.id);
        const task = tasks.get(rec.id);
        if (st.status === 'removing') {
          await this.#d.stopper.remove(nctx, rec, { force: true }).catch((err) => this.#d.log.warn('finishing a removal failed', { container: rec.id, err }));
          continue;
        }
        if (task && (task.status === 'running' || task.status === 'paused')) {
          const status = task.status === 'paused' ? 'paused' : 'running';
          if (st.status !== status) await this.#d.patch(nctx, rec.id, { status, pid: task.pid });
          running.push(rec.id);
          this.#d.exits.watch(nctx, rec);
          continue;
        }
        if (st.status === 'created' || (st.status === 'exited' && st.taskCreated)) {
          // Prepared by an attach that never saw its start, or cut short while being prepared (its
          // rootfs mounted, its network set up, no task yet): give it all back, keep the container
          // (and its last exit).
          if (task || st.taskCreated || st.network || mounted.has(path.join(this.#d.bundleDir(rec), 'rootfs'))) {
            await this.#d.exits.release(nctx, rec);
            await this.#d.patch(nctx, rec.id, { taskCreated: false, network: undefined });
          }
          continue;
        }
        const wasRunning = st.status === 'running' || st.status === 'paused' || st.status === 'restarting';
        if (wasRunning || task) {
          // A container waiting for its policy restart keeps the exit it had; one whose task vanished gets 255.
          const lost = st.status === 'restarting' ? (st.exitCode ?? 255) : 255;
          const exit: ExitStatus = task?.exit ?? { exitCode: lost, signal: 0, pid: 0, finishedAt: st.finishedAt ?? new Date().toISOString() };
          await this.#d.exits.onExit(nctx, rec.id, exit).catch((err) => this.#d.log.warn('recording an exit failed', { container: rec.id, err }));
          continue;
        }
        if (st.status === 'exited' && startOnDaemonStart(rec.config.restartPolicy, false, !!st.manuallyStopped)) {
          // Docker starts `always` containers with the daemon, manually stopped ones too; `unless-stopped` ones unless stopped by hand.
          await this.#d.locked(rec.id, () => this.#d.starter.start(nctx, rec, { manual: false })).catch((err) => this.#d.log.warn('restart at start-up failed', { container: rec.id, err }));
        }
      }
      // Tasks without a container record: a create interrupted before its record was written.
      for (const t of tasks.values()) {
        if (this.#d.ownsTask?.(ns, t.id)) continue;
        if (!(await this.#d.store.get(nctx, t.id).then(() => true, () => false))) {
          await this.#d.tasks.kill(nctx, t.id, SIGKILL, { all: true }).catch(() => {});
          await this.#d.tasks.delete(nctx, t.id, { force: true }).catch(() => {});
        }
      }
      // And their bundles, with the rootfs mounted for a task that is gone now.
      const known = new Set(records.map((r) => r.id));
      for (const dir of await strayBundles(this.#d.stateDir, ns, known)) {
        if (!(await this.#removeStray(dir))) held.add(path.basename(dir));
      }
    }
    await this.#removeStraySnapshots(ctx, held);
    return { running };
  }

  /** Whether the bundle is gone. */
  async #removeStray(dir: string): Promise<boolean> {
    await this.#d.mounter.unmountAll(path.join(dir, 'rootfs')).catch((err) => this.#d.log.warn('cannot unmount a stray bundle', { dir, err }));
    // Never remove through a mount: whatever is still mounted below stays, and so does the bundle.
    const left = mountPointsUnder(dir);
    if (left.length) {
      this.#d.log.warn('leaving a stray bundle that still has mounts', { dir, mounts: left });
      return false;
    }
    await removeTree(dir);
    this.#d.log.info('removed the bundle of a container that has no record', { dir });
    return true;
  }

  /**
   * A create prepares the container's snapshot before it writes the record:
   * a crash in between leaves a snapshot labelled for a container that does
   * not exist, which nothing else would ever remove. Keys are global to the
   * snapshotter, so `held` spans every namespace.
   */
  async #removeStraySnapshots(ctx: Ctx, held: Set<string>): Promise<void> {
    const stray: string[] = [];
    await this.#d.snapshotter.walk(ctx, (info) => {
      const owner = info.labels[CONTAINER_LABEL];
      if (owner && info.kind === 'active' && !held.has(owner) && !held.has(info.name)) stray.push(info.name);
    });
    for (const key of stray) {
      await this.#d.snapshotter.remove(ctx, key).then(
        () => this.#d.log.info('removed the snapshot of a container that has no record', { key }),
        (err) => this.#d.log.warn('cannot remove the snapshot of a container that has no record', { key, err }),
      );
    }
  }
}

/** Directories under <state>/containers/<namespace> that belong to no record (crash leftovers). */
async function strayBundles(stateDir: string, namespace: string, known: Set<string>): Promise<string[]> {
  try {
    return (await readdir(path.join(stateDir, namespace))).filter((d) => !known.has(d)).map((d) => path.join(stateDir, namespace, d));
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return [];
    throw err;
  }
}
