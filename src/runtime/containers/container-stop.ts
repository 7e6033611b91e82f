import { constants as osConstants } from 'node:os';
import path from 'node:path';
import type { ContainerRecord } from '../../core/containers.ts';
import type { Ctx } from '../../core/context.ts';
import { cleanupCtx } from '../../core/context.ts';
import { berthError, isNotFound, wrap } from '../../core/errors.ts';
import { removeTree } from '../../core/remove-tree.ts';
import type { ContainerExits } from './container-exits.ts';
import type { ContainerBasics, ContainerServiceDeps, RuntimeState } from './types.ts';
import type { VolumeUsers } from './volume-users.ts';

/**
 * Ending containers: `stop` (the stop signal, then SIGKILL after the
 * timeout), `kill`, `rm` (with -f: kill, and the exit handler carries out
 * the removal) and `container prune`. The removal itself releases the
 * task, rootfs, network and log side by side and drops the record last.
 * The service hands in its state and events as functions, and the exit
 * handling it waits on.
 */
export interface ContainerStopDeps
  extends Pick<ContainerBasics, 'resolve' | 'list' | 'state' | 'patch' | 'locked' | 'event' | 'bundleDir' | 'logPath'>,
    Pick<ContainerServiceDeps, 'store' | 'snapshotter' | 'tasks' | 'volumes'> {
  exits: Pick<ContainerExits, 'cancelRestart' | 'waitExit' | 'releaseParts' | 'removeAtExit'>;
  volumeUsers: VolumeUsers;
}

export const SIGKILL = 9;

export class ContainerStopper {
  readonly #d: ContainerStopDeps;

  constructor(deps: ContainerStopDeps) {
    this.#d = deps;
  }

  /** The stop signal, then SIGKILL after the timeout (0: at once, below 0: never); resolves once the exit is handled. */
  async stop(ctx: Ctx, rec: ContainerRecord, opts: { timeoutSec?: number; signal?: string }): Promise<void> {
    const st = await this.#d.state(ctx, rec.id);
    this.#d.exits.cancelRestart(rec.id);
    if (st.status === 'restarting') {
      await this.#d.patch(ctx, rec.id, { status: 'exited', manuallyStopped: true });
      return;
    }
    if (st.status !== 'running' && st.status !== 'paused') throw berthError('NotModified', `container ${rec.id} is not running`);
    await this.#d.patch(ctx, rec.id, { manuallyStopped: true });
    const signal = parseSignal(opts.signal ?? rec.config.stopSignal ?? 'SIGTERM');
    const timeout = opts.timeoutSec ?? rec.config.stopTimeout ?? 10;
    if (st.status === 'paused') await this.#d.tasks.resume(ctx, rec.id).catch(() => {});
    const exited = this.#d.exits.waitExit(ctx, rec.id);
    if (timeout !== 0) {
      await this.#d.tasks.kill(ctx, rec.id, signal).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
    }
    const done = timeout < 0 ? await exited.then(() => true) : await Promise.race([exited.then(() => true), sleep(timeout * 1000).then(() => false)]);
    if (!done) {
      await this.#d.tasks.kill(ctx, rec.id, SIGKILL, { all: true }).catch(() => {});
      await exited;
    }
    this.#d.event(ctx, 'stop', rec.id, { name: rec.name });
  }

  async kill(ctx: Ctx, idOrName: string, signal = 'SIGKILL'): Promise<void> {
    const rec = await this.#d.resolve(ctx, idOrName);
    const st = await this.#d.state(ctx, rec.id);
    if (st.status !== 'running' && st.status !== 'paused') throw berthError('Conflict', `Cannot kill container: ${idOrName}: container ${rec.id} is not running`);
    const sig = parseSignal(signal);
    const stopSignal = parseSignal(rec.config.stopSignal ?? 'SIGTERM');
    if (sig === SIGKILL || sig === stopSignal) await this.#d.patch(ctx, rec.id, { manuallyStopped: true });
    // A paused container would hold the signal pending: let it run to receive it, as docker does.
    if (st.status === 'paused' && sig === SIGKILL) await this.#d.tasks.resume(ctx, rec.id).catch(() => {});
    await this.#d.tasks.kill(ctx, rec.id, sig);
    this.#d.event(ctx, 'kill', rec.id, { name: rec.name, signal: String(sig) });
  }

  /** `rm`: refused for a live container without `force`; with it, killed and removed at its exit. */
  async remove(ctx: Ctx, rec: ContainerRecord, opts: { force?: boolean; volumes?: boolean }): Promise<void> {
    const st = await this.#d.state(ctx, rec.id);
    if (st.status === 'running' || st.status === 'paused' || st.status === 'restarting') {
      if (!opts.force) {
        throw berthError('Conflict', `You cannot remove a ${st.status} container ${rec.id}. Stop the container before attempting removal or force remove`);
      }
      this.#d.exits.cancelRestart(rec.id);
      // Recorded for a policy that could restart it, should berthd die before the removal is done.
      if (rec.config.restartPolicy && rec.config.restartPolicy.name !== 'no') await this.#d.patch(ctx, rec.id, { manuallyStopped: true });
      if (st.status !== 'restarting') {
        // The exit watcher sees this removal and carries it out with the exit (ContainerExits.onExit).
        await this.#d.exits.removeAtExit(rec.id, { volumes: opts.volumes }, async () => {
          const exited = this.#d.exits.waitExit(ctx, rec.id);
          if (st.status === 'paused') await this.#d.tasks.resume(ctx, rec.id).catch(() => {});
          await this.#d.tasks.kill(ctx, rec.id, SIGKILL, { all: true }).catch(() => {});
          await Promise.race([exited, sleep(10_000)]);
        });
      }
    }
    await this.#d.locked(rec.id, () => this.removeNow(ctx, rec.id, opts));
  }

  /**
   * The removal itself, under the container's lock; a record already gone is
   * success. `marked` is the state an exit handler has just marked
   * "removing". The rootfs (then the snapshot and bundle), the network and
   * the log go side by side; the record goes last.
   */
  async removeNow(ctx: Ctx, id: string, opts: { volumes?: boolean }, marked?: RuntimeState): Promise<void> {
    const cctx = cleanupCtx(ctx);
    let rec: ContainerRecord;
    try {
      rec = await this.#d.store.get(ctx, id);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    this.#d.exits.cancelRestart(id);
    const st = marked ?? (await this.#d.patch(cctx, id, { status: 'removing' }));
    const released = this.#d.exits.releaseParts(cctx, rec);
    await Promise.all([
      released.rootfs.then(() =>
        Promise.all([
          this.#d.snapshotter.remove(cctx, rec.snapshotKey).catch((err) => {
              if (!isNotFound(err)) throw wrap(err, `remove container ${rec.id}: snapshot`);
            },
          ),
          removeTree(this.#d.bundleDir(rec)),
        ]),
      ),
      released.task,
      released.network,
      rec.config.logPath ? undefined : removeTree(path.dirname(this.#d.logPath(rec)), { maxBytes: 1 << 20 }),
    ]);
    await this.#d.store.delete(cctx, rec.id).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
    this.#d.volumeUsers.untrack(rec.namespace, rec.id);
    if (opts.volumes) {
      // docker's rm -v: every anonymous volume the container mounts, its own and those it got through
      // --volumes-from, unless another container still uses it (the Conflict is not an error here).
      const anonymous = new Set(st.anonymousVolumes ?? []);
      for (const m of rec.config.mounts ?? []) {
        if (m.type !== 'volume' || !m.source || anonymous.has(m.source)) continue;
        if ((await this.#d.volumes.inspect(cctx, m.source).catch(() => undefined))?.anonymous) anonymous.add(m.source);
      }
      for (const v of anonymous) await this.#d.volumes.remove(cctx, v, { force: true }).catch(() => {});
    }
    this.#d.event(ctx, 'destroy', rec.id, { name: rec.name, image: rec.imageName, exitCode: String(st.exitCode ?? 0) });
  }

  async prune(ctx: Ctx, opts: { labels?: string[] } = {}): Promise<{ removed: string[] }> {
    const removed: string[] = [];
    for (const c of await this.#d.list(ctx)) {
      if (c.state.status === 'running' || c.state.status === 'paused' || c.state.status === 'restarting') continue;
      if (opts.labels?.length && !opts.labels.every((l) => labelMatches(c.record.labels, l))) continue;
      await this.#d.locked(c.record.id, () => this.removeNow(ctx, c.record.id, {}));
      removed.push(c.record.id);
    }
    return { removed };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** A signal by name (`SIGTERM`, `TERM`) or number. */
export function parseSignal(s: string | number): number {
  if (typeof s === 'number') return s;
  if (/^\d+$/.test(s)) return Number(s);
  const name = s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`;
  const n = (osConstants.signals as Record<string, number>)[name];
  if (n === undefined) throw berthError('InvalidArgument', `invalid signal: ${s}`);
  return n;
}

function labelMatches(labels: Record<string, string>, filter: string): boolean {
  const eq = filter.indexOf('=');
  return eq < 0 ? filter in labels : labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}
