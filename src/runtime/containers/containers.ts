import path from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import type { ContainerConfig, ContainerRecord } from '../../core/containers.ts';
import type { Ctx } from '../../core/context.ts';
import { withCtx } from '../../core/context.ts';
import { berthError, isNotFound, kindOf } from '../../core/errors.ts';
import { namePattern } from '../../core/ids.ts';
import type { Change } from './changes.ts';
import { ContainerCreator } from './container-create.ts';
import { ContainerExits } from './container-exits.ts';
import { ContainerExecs } from './container-execs.ts';
import { ContainerFiles, type CommitOptions } from './container-files.ts';
import { withConnected, withDisconnected } from './container-networks.ts';
import { ContainerRecovery } from './container-recovery.ts';
import { ContainerStarter } from './container-start.ts';
import { ContainerStates, isActive } from './container-state.ts';
import { ContainerStopper } from './container-stop.ts';
import type { LogFile } from '../tasks/log-reader.ts';
import type { ResolvedMount } from '../oci/spec-mounts.ts';
import type { AttachOptions, TaskService } from '../tasks/task-types.ts';
import { topOf } from '../tasks/top.ts';
import { VolumeUsers } from './volume-users.ts';
import type { ContainerBasics, ContainerServiceDeps, ContainerSummary, ExecConfig, ImageLookup, Mounter, RuntimeState } from './types.ts';
import { byCodeUnit } from '../../core/order.ts';

export type { ContainerServiceDeps, ContainerSummary, ExecConfig, ImageLookup, Mounter, RuntimeState };

/**
 * The container service: docker's container lifecycle on top of images,
 * snapshots, networks, volumes and tasks. Every front door (the native API,
 * the Docker API, the CRI) translates its requests into these calls.
 *
 * Lifecycle: create (record + writable snapshot) -> start (mount rootfs,
 * network, spec, task) -> the task exits (state exited, network released,
 * rootfs unmounted, restart policy applied) -> remove. Operations on one
 * container are serialized; different containers proceed in parallel.
 *
 * Errors: NotFound ("No such container: x"), AlreadyExists (name in use),
 * Conflict (remove a running container without force, start a paused one),
 * InvalidArgument (bad config), NotModified (start of a running container,
 * stop of a stopped one), FailedPrecondition (exec in a stopped container).
 */
export class ContainerService {
  readonly #d: ContainerServiceDeps;
  readonly #states: ContainerStates;
  readonly #volumeUsers = new VolumeUsers();
  readonly #creator: ContainerCreator;
  readonly #starter: ContainerStarter;
  readonly #exits: ContainerExits;
  readonly #stopper: ContainerStopper;
  readonly #recovery: ContainerRecovery;
  readonly #files: ContainerFiles;
  readonly #execs: ContainerExecs;

  constructor(deps: ContainerServiceDeps) {
    this.#d = deps;
    const states = (this.#states = new ContainerStates(deps.store));
    const volumeUsers = this.#volumeUsers;
    deps.volumes.usedBy = (ns, name) => volumeUsers.of(ns, name);
    // The parts call one another through the service's fields, set below before any call.
    const basics: ContainerBasics = {
      resolve: (ctx, idOrName) => this.resolve(ctx, idOrName),
      get: (ctx, idOrName) => this.get(ctx, idOrName),
      list: (ctx) => this.list(ctx),
      state: (ctx, id) => states.state(ctx, id),
      patch: (ctx, id, patch) => states.patch(ctx, id, patch),
      locked: (id, fn) => states.locked(id, fn),
      event: (ctx, action, id, attributes) => this.#event(ctx, action, id, attributes),
      bundleDir: (rec) => this.bundleDir(rec),
      logPath: (rec) => this.logPath(rec),
    };
    this.#creator = new ContainerCreator({ ...deps, ...basics, volumeUsers });
    const exits = (this.#exits = new ContainerExits({
      ...deps,
      ...basics,
      start: (ctx, rec, opts) => this.#starter.start(ctx, rec, opts),
      removeNow: (ctx, id, opts, marked) => this.#stopper.removeNow(ctx, id, opts, marked),
    }));
    this.#starter = new ContainerStarter({ ...deps, ...basics, exits });
    this.#stopper = new ContainerStopper({ ...deps, ...basics, exits, volumeUsers });
    this.#recovery = new ContainerRecovery({ ...deps, ...basics, exits, starter: this.#starter, stopper: this.#stopper, volumeUsers });
    this.#files = new ContainerFiles({ ...deps, ...basics, resolveMounts: (ctx, rec) => this.#starter.resolveMounts(ctx, rec) });
    this.#execs = new ContainerExecs({ ...deps, ...basics });
  }

  // ---------------------------------------------------------------- create (container-create.ts)

  create(ctx: Ctx, config: ContainerConfig): Promise<{ id: string; warnings: string[] }> {
    return this.#creator.create(ctx, config);
  }

  // ---------------------------------------------------------------- lookups

  async resolve(ctx: Ctx, idOrName: string): Promise<ContainerRecord> {
    try {
      return await this.#d.store.resolve(ctx, idOrName.replace(/^\//, ''));
    } catch (err) {
      if (isNotFound(err)) throw berthError('NotFound', `No such container: ${idOrName}`, err);
      throw err;
    }
  }

  async get(ctx: Ctx, idOrName: string): Promise<ContainerSummary> {
    const record = await this.resolve(ctx, idOrName);
    return { record, state: await this.#viewState(ctx, record.id) };
  }

  async list(ctx: Ctx): Promise<ContainerSummary[]> {
    const out: ContainerSummary[] = [];
    for (const record of await this.#d.store.list(ctx)) out.push({ record, state: await this.#viewState(ctx, record.id) });
    return out.sort((a, b) => byCodeUnit(b.record.createdAt, a.record.createdAt));
  }

  logPath(record: ContainerRecord): string {
    return record.config.logPath ?? path.join(this.#d.rootDir, record.namespace, record.id, `${record.id}-json.log`);
  }

  /** The log as its reader needs it: where, in which format, and how many rotated files to look for. */
  logFile(record: ContainerRecord): LogFile {
    const cfg = record.config;
    return { path: this.logPath(record), format: cfg.logDriver === 'cri' ? 'cri' : 'json-file', maxFiles: cfg.logOpts?.maxFiles ?? this.#d.logDefaults.maxFiles };
  }

  bundleDir(record: ContainerRecord): string {
    return path.join(this.#d.stateDir, record.namespace, record.id);
  }

  // ---------------------------------------------------------------- start (container-start.ts)

  async start(ctx: Ctx, idOrName: string): Promise<void> {
    const rec = await this.resolve(ctx, idOrName);
    await this.#states.locked(rec.id, () => this.#starter.start(ctx, rec, { manual: true }));
  }

  // ---------------------------------------------------------------- stop, kill, restart (container-stop.ts)

  async stop(ctx: Ctx, idOrName: string, opts: { timeoutSec?: number; signal?: string } = {}): Promise<void> {
    const rec = await this.resolve(ctx, idOrName);
    await this.#stopper.stop(ctx, rec, opts);
  }

  kill(ctx: Ctx, idOrName: string, signal = 'SIGKILL'): Promise<void> {
    return this.#stopper.kill(ctx, idOrName, signal);
  }

  async restart(ctx: Ctx, idOrName: string, opts: { timeoutSec?: number } = {}): Promise<void> {
    const rec = await this.resolve(ctx, idOrName);
    await this.#exits.duringRestart(rec.id, async () => {
      await this.#stopper.stop(ctx, rec, opts).catch((err) => {
        if (kindOf(err) !== 'NotModified') throw err;
      });
      await this.#states.locked(rec.id, () => this.#starter.start(ctx, rec, { manual: true }));
    });
    this.#event(ctx, 'restart', rec.id, { ...rec.labels, name: rec.name });
  }

  async pause(ctx: Ctx, idOrName: string): Promise<void> {
    const rec = await this.resolve(ctx, idOrName);
    await this.#states.locked(rec.id, async () => {
      const st = await this.#states.state(ctx, rec.id);
      if (st.status === 'paused') throw berthError('Conflict', `Container ${rec.id} is already paused`);
      if (st.status !== 'running') throw berthError('Conflict', `Container ${rec.id} is not running`);
      await this.#d.tasks.pause(ctx, rec.id);
      await this.#states.patch(ctx, rec.id, { status: 'paused' });
    });
    this.#event(ctx, 'pause', rec.id, { ...rec.labels, name: rec.name });
  }

  async unpause(ctx: Ctx, idOrName: string): Promise<void> {
    const rec = await this.resolve(ctx, idOrName);
    await this.#states.locked(rec.id, async () => {
      const st = await this.#states.state(ctx, rec.id);
      if (st.status !== 'paused') throw berthError('Conflict', `Container ${rec.id} is not paused`);
      await this.#d.tasks.resume(ctx, rec.id);
      await this.#states.patch(ctx, rec.id, { status: 'running' });
    });
    this.#event(ctx, 'unpause', rec.id, { ...rec.labels, name: rec.name });
  }

  // ---------------------------------------------------------------- wait

  /** docker wait: `not-running` (default), `next-exit` or `removed`. */
  async wait(ctx: Ctx, idOrName: string, condition: 'not-running' | 'next-exit' | 'removed' = 'not-running'): Promise<{ exitCode: number; error?: string }> {
    const rec = await this.resolve(ctx, idOrName);
    // Subscribed before the state is read: an exit between the two would otherwise never be seen.
    const sub = this.#d.events.subscribe((e) => e.id === rec.id && (condition === 'removed' ? e.action === 'destroy' : e.action === 'die'));
    const onAbort = () => sub.close();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const st = await this.#states.state(ctx, rec.id);
      const running = st.status === 'running' || st.status === 'paused' || st.status === 'restarting';
      if (condition === 'not-running' && !running) return { exitCode: st.exitCode ?? 0 };
      for await (const e of sub) {
        if (condition === 'removed') return { exitCode: Number(e.attributes.exitCode ?? st.exitCode ?? 0) };
        const after = await this.#states.state(ctx, rec.id).catch(() => undefined);
        if (condition === 'not-running' && after?.status === 'restarting') continue;
        return { exitCode: Number(e.attributes.exitCode ?? 0) };
      }
      throw berthError('Canceled', 'wait canceled');
    } finally {
      sub.close();
      ctx.signal.removeEventListener('abort', onAbort);
    }
  }

  // ---------------------------------------------------------------- remove (container-stop.ts)

  async remove(ctx: Ctx, idOrName: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const rec = await this.resolve(ctx, idOrName);
    await this.#stopper.remove(ctx, rec, opts);
  }

  prune(ctx: Ctx, opts: { labels?: string[] } = {}): Promise<{ removed: string[] }> {
    return this.#stopper.prune(ctx, opts);
  }

  async rename(ctx: Ctx, idOrName: string, newName: string): Promise<void> {
    const name = newName.replace(/^\//, '');
    if (!namePattern.test(name)) throw berthError('InvalidArgument', `Invalid container name (${newName}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const rec = await this.resolve(ctx, idOrName);
    await this.#d.store.rename(ctx, rec.id, name);
    this.#event(ctx, 'rename', rec.id, { ...rec.labels, name, oldName: rec.name });
  }

  async update(ctx: Ctx, idOrName: string, patch: Pick<ContainerConfig, 'resources' | 'restartPolicy'>): Promise<void> {
    const rec = await this.resolve(ctx, idOrName);
    const st = await this.#states.state(ctx, rec.id);
    const config: ContainerConfig = { ...rec.config };
    if (patch.resources) config.resources = { ...config.resources, ...patch.resources };
    if (patch.restartPolicy) {
      if (config.autoRemove && patch.restartPolicy.name !== 'no') throw berthError('InvalidArgument', 'Restart policy cannot be updated because AutoRemove is enabled for the container');
      config.restartPolicy = patch.restartPolicy;
    }
    if (patch.resources && (st.status === 'running' || st.status === 'paused')) {
      const { buildResources } = await import('../oci/spec-resources.ts');
      await this.#d.tasks.update(ctx, rec.id, buildResources(config.resources, { hugetlb: this.#d.host.hugetlb }) as unknown as Parameters<TaskService['update']>[2]);
    }
    await this.#d.store.update(ctx, rec.id, { config });
    this.#event(ctx, 'update', rec.id, { ...rec.labels, name: rec.name });
  }

  // ---------------------------------------------------------------- network connect, disconnect

  /** `network connect`: joins now when running, and at every later start (recorded in the config). */
  async connectNetwork(ctx: Ctx, idOrName: string, req: { network: string; aliases?: string[]; ipAddress?: string }): Promise<void> {
    const { id } = await this.resolve(ctx, idOrName);
    await this.#states.locked(id, async () => {
      const rec = await this.#d.store.get(ctx, id);
      const net = await this.#d.network.inspectNetwork(ctx, req.network);
      const entry = { aliases: req.aliases?.length ? req.aliases : undefined, ipAddress: req.ipAddress };
      const network = withConnected(rec.config.network ?? { mode: 'bridge' }, net.Name, entry, isNetwork(net), rec.name);
      if (isActive(await this.#states.state(ctx, id))) await this.#d.network.connect(ctx, { container: id, network: net.Id, ...entry });
      await this.#d.store.update(ctx, id, { config: { ...rec.config, network } });
    });
  }

  /** `network disconnect`: leaves now when running, and is no longer joined at later starts. */
  async disconnectNetwork(ctx: Ctx, idOrName: string, req: { network: string; force?: boolean }): Promise<void> {
    const { id } = await this.resolve(ctx, idOrName);
    await this.#states.locked(id, async () => {
      const rec = await this.#d.store.get(ctx, id);
      const net = await this.#d.network.inspectNetwork(ctx, req.network);
      const network = withDisconnected(rec.config.network ?? { mode: 'bridge' }, net.Name, isNetwork(net), rec.name);
      if (isActive(await this.#states.state(ctx, id))) await this.#d.network.disconnect(ctx, { container: id, network: net.Id, force: req.force });
      await this.#d.store.update(ctx, id, { config: { ...rec.config, network } });
    });
  }

  // ---------------------------------------------------------------- attach, exec, stats

  /** `opts.all`: the output waits for this client when it is behind (see TaskService.attach). */
  async attach(ctx: Ctx, idOrName: string, opts: AttachOptions = {}): Promise<{ stream: Duplex; tty: boolean; record: ContainerRecord }> {
    const rec = await this.resolve(ctx, idOrName);
    const st = await this.#states.state(ctx, rec.id);
    // An exited container is attached to as a created one (`docker start -a`: attach, then start), as dockerd allows.
    const startable = (s: RuntimeState) => (s.status === 'created' || s.status === 'exited') && !s.taskCreated;
    if (st.status !== 'running' && st.status !== 'paused' && st.status !== 'created' && st.status !== 'exited') {
      throw berthError('Conflict', `You cannot attach to a stopped container, start it first`);
    }
    if (startable(st)) {
      await this.#states.locked(rec.id, async () => {
        if (startable(await this.#states.state(ctx, rec.id))) await this.#starter.prepare(ctx, rec);
      });
    }
    return { stream: await this.#d.tasks.attach(ctx, rec.id, undefined, opts), tty: !!rec.config.tty, record: rec };
  }

  async resize(ctx: Ctx, idOrName: string, rows: number, cols: number): Promise<void> {
    const rec = await this.resolve(ctx, idOrName);
    await this.#d.tasks.resize(ctx, rec.id, { rows, cols });
  }

  /** Open the log file afresh after it was moved away (the CRI's ReopenContainerLog); Conflict when not running. */
  async reopenLog(ctx: Ctx, idOrName: string): Promise<void> {
    const rec = await this.#running(ctx, idOrName);
    await this.#d.tasks.reopenLog(ctx, rec.id);
  }

  async closeStdin(ctx: Ctx, id: string): Promise<void> {
    await this.#d.tasks.closeStdin(ctx, id).catch(() => {});
  }

  // ---------------------------------------------------------------- exec (container-execs.ts)

  execCreate(ctx: Ctx, idOrName: string, exec: ExecConfig): Promise<string> {
    return this.#execs.execCreate(ctx, idOrName, exec);
  }

  execStart(ctx: Ctx, execId: string, opts: { detach?: boolean } = {}): Promise<{ stream?: Duplex; tty: boolean }> {
    return this.#execs.execStart(ctx, execId, opts);
  }

  execInspect(ctx: Ctx, execId: string): Promise<{ id: string; containerId: string; running: boolean; exitCode?: number; pid?: number; config: ExecConfig }> {
    return this.#execs.execInspect(ctx, execId);
  }

  execResize(ctx: Ctx, execId: string, rows: number, cols: number): Promise<void> {
    return this.#execs.execResize(ctx, execId, rows, cols);
  }

  execSync(ctx: Ctx, idOrName: string, cmd: string[], opts: { timeoutMs: number; maxOutput?: number; user?: string }): Promise<{ exitCode: number; stdout: Buffer; stderr: Buffer; timedOut: boolean }> {
    return this.#execs.execSync(ctx, idOrName, cmd, opts);
  }

  execCloseStdin(ctx: Ctx, execId: string): Promise<void> {
    return this.#execs.execCloseStdin(ctx, execId);
  }

  execWait(ctx: Ctx, execId: string): Promise<number> {
    return this.#execs.execWait(ctx, execId);
  }

  execKill(ctx: Ctx, execId: string, signal: string = 'SIGKILL'): Promise<void> {
    return this.#execs.execKill(ctx, execId, signal);
  }

  async top(ctx: Ctx, idOrName: string): Promise<{ titles: string[]; processes: string[][] }> {
    const rec = await this.#running(ctx, idOrName);
    return topOf(await this.#d.tasks.pids(ctx, rec.id));
  }

  async stats(ctx: Ctx, idOrName: string) {
    const rec = await this.#running(ctx, idOrName);
    return { record: rec, stats: await this.#d.tasks.stats(ctx, rec.id) };
  }

  // ---------------------------------------------------------------- file system (container-files.ts)

  commit(ctx: Ctx, idOrName: string, opts: CommitOptions = {}): Promise<string> {
    return this.#files.commit(ctx, idOrName, opts);
  }

  /** Bytes and inodes of the container's writable layer (a walk of it, like du). */
  writableLayerUsage(ctx: Ctx, rec: ContainerRecord): Promise<{ size: number; inodes: number }> {
    return this.#d.snapshotter.usage(ctx, rec.snapshotKey);
  }

  sizes(ctx: Ctx, rec: ContainerRecord): Promise<{ SizeRw: number; SizeRootFs: number }> {
    return this.#files.sizes(ctx, rec);
  }

  changes(ctx: Ctx, idOrName: string): Promise<Change[]> {
    return this.#files.changes(ctx, idOrName);
  }

  exportRootfs(ctx: Ctx, idOrName: string): Promise<{ tar: Readable; release: () => Promise<void> }> {
    return this.#files.exportRootfs(ctx, idOrName);
  }

  rootfsOf(ctx: Ctx, idOrName: string): Promise<{ record: ContainerRecord; rootfs: string; mounts: ResolvedMount[]; release: () => Promise<void> }> {
    return this.#files.rootfsOf(ctx, idOrName);
  }

  async #running(ctx: Ctx, idOrName: string): Promise<ContainerRecord> {
    const rec = await this.resolve(ctx, idOrName);
    const st = await this.#states.state(ctx, rec.id);
    if (st.status !== 'running' && st.status !== 'paused') throw berthError('Conflict', `Container ${rec.id} is not running`);
    return rec;
  }

  // ---------------------------------------------------------------- daemon start and stop

  /** At daemon start: reconcile every namespace's containers with the tasks that survived (container-recovery.ts). */
  recover(ctx: Ctx, namespaces: string[]): Promise<{ running: string[] }> {
    return this.#recovery.recover(ctx, namespaces);
  }

  /** All container ids with a live task, across namespaces (for network reconcile). */
  async liveIds(ctx: Ctx, namespaces: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const ns of namespaces) {
      for (const c of await this.list(withCtx(ctx, { namespace: ns }))) {
        if (c.state.status === 'running' || c.state.status === 'paused') ids.push(c.record.id);
      }
    }
    return ids;
  }

  /** Stop following tasks; containers keep running (their monitors own them). */
  close(): void {
    this.#exits.close();
  }

  // ---------------------------------------------------------------- helpers

  /** The state as shown: `network connect`/`disconnect` change a running container's network after its start. */
  async #viewState(ctx: Ctx, id: string): Promise<RuntimeState> {
    const st = await this.#states.state(ctx, id);
    if (!st.network || (st.status !== 'running' && st.status !== 'paused')) return st;
    const live = await this.#d.network.containerNetwork(ctx, id).catch(() => undefined);
    return live ? { ...st, network: live } : st;
  }

  #event(ctx: Ctx, action: string, id: string, attributes: Record<string, string>): void {
    this.#d.events.publish({ type: 'container', action, namespace: ctx.namespace, id, attributes });
  }
}

/** A recorded network reference (name, id or id prefix) names this network. */
function isNetwork(net: { Id: string; Name: string }): (ref: string) => boolean {
  return (ref) => ref === net.Name || (ref.length > 0 && net.Id.startsWith(ref));
}
