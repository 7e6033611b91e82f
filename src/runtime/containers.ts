import { mkdirSync, writeFileSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import type { ContainerConfig, ContainerRecord, ContainerState, MountSpec } from '../core/containers.ts';
import type { Ctx } from '../core/context.ts';
import { cleanupCtx, withCtx } from '../core/context.ts';
import { berthError, hasErrno, isNotFound, kindOf, wrap } from '../core/errors.ts';
import type { EventBus } from '../core/events.ts';
import { namePattern, newId } from '../core/ids.ts';
import type { Logger } from '../core/log.ts';
import { randomName } from '../core/names.ts';
import type { ContainerStore } from '../metadata/containers.ts';
import type { NetworkService, PendingSetup, SetupResult } from '../network/types.ts';
import type { Mount as SnapshotMount, Snapshotter } from '../snapshots/types.ts';
import { imageDefaults } from './image-defaults.ts';
import type { Change } from './changes.ts';
import { ContainerFiles, type CommitOptions } from './container-files.ts';
import { ContainerExecs } from './container-execs.ts';
import type { LogFile } from './log-reader.ts';
import type { ImageConfig } from './oci-types.ts';
import { hostDevices, resolveDevice } from './host-devices.ts';
import { restartDelay, shouldRestart, startOnDaemonStart } from './restart-policy.ts';
import { resolveUserInRootfs } from './rootfs-files.ts';
import type { ResolvedMount } from './spec-mounts.ts';
import { buildSpec, type HostFacts } from './spec.ts';
import type { ExitStatus, TaskService, TaskStdio } from './task-types.ts';
import { topOf } from './top.ts';
import { withConnected, withDisconnected } from './container-networks.ts';
import type { VolumeService } from './volumes.ts';
import { removeTree } from '../core/remove-tree.ts';

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
export interface ImageLookup {
  /** The local image for a reference or id: NotFound when it is not present. */
  find(ctx: Ctx, ref: string): Promise<{ id: string; name: string; config: { config?: ImageConfig; rootfs: { diff_ids: string[] } }; chainId?: string; /** Unpacked bytes of its layers. */ size?: number }>;
  /** A new image of `parent`'s layers and `layer` (an uncompressed tar); resolves to its ID. */
  commitLayer?(ctx: Ctx, opts: { parent: string; layer: Readable; config: ImageConfig; name?: string; author?: string; comment?: string; createdBy: string; changes?: string[] }): Promise<string>;
}

export interface Mounter {
  mountAll(mounts: SnapshotMount[], target: string): Promise<void>;
  unmountAll(target: string): Promise<void>;
}

export interface ContainerServiceDeps {
  store: ContainerStore;
  images: ImageLookup;
  snapshotter: Snapshotter;
  mounter: Mounter;
  tasks: TaskService;
  network: NetworkService;
  volumes: VolumeService;
  events: EventBus;
  log: Logger;
  /** <state>/containers: bundles (config.json, rootfs mount point). */
  stateDir: string;
  /** <root>/containers: logs and anything that must survive a reboot. */
  rootDir: string;
  /** Host facts for every spec: hard rlimits, init binary, capabilities. */
  host: Pick<HostFacts, 'rlimitHard' | 'initPath' | 'capabilities'>;
  /** Default runtime name and cgroup parent. */
  defaultRuntime: string;
  cgroupParent: string;
  logDefaults: { maxSize?: number; maxFiles?: number };
}

export interface RuntimeState extends ContainerState {
  manuallyStopped?: boolean;
  /** A task exists (created by `attach` before `start`) but has not been started. */
  taskCreated?: boolean;
  /** Host ports and addresses of the last start, for inspect. */
  network?: SetupResult;
  /** Exec sessions: id -> what inspect needs. */
  execs?: Record<string, { config: ExecConfig; running: boolean; exitCode?: number; pid?: number }>;
  /** Anonymous volumes this container created, removed with `rm -v`. */
  anonymousVolumes?: string[];
  /** Last restart back-off, in ms. */
  restartDelayMs?: number;
}

export interface ExecConfig {
  cmd: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
  tty?: boolean;
  attachStdin?: boolean;
  privileged?: boolean;
}

export interface ContainerSummary {
  record: ContainerRecord;
  state: RuntimeState;
}

const SIGKILL = 9;

export class ContainerService {
  readonly #d: ContainerServiceDeps;
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #stateLocks = new Map<string, Promise<unknown>>();
  /** Containers in a user's `restart`: their exit must not auto-remove them. */
  readonly #userRestarts = new Set<string>();
  /** Exit watchers of running tasks, by container id. */
  readonly #watching = new Map<string, Promise<void>>();
  readonly #restartTimers = new Map<string, NodeJS.Timeout>();
  /** Forced removals waiting for the container's exit: the exit handler removes it (see #remove). */
  readonly #removals = new Map<string, { volumes?: boolean }>();
  #closed = false;

  readonly #files: ContainerFiles;
  readonly #execs: ContainerExecs;

  constructor(deps: ContainerServiceDeps) {
    this.#d = deps;
    deps.volumes.usedBy = (ns, name) => this.#volumeUsers.get(`${ns}/${name}`) ?? [];
    this.#files = new ContainerFiles({
      ...deps,
      resolve: (ctx, idOrName) => this.resolve(ctx, idOrName),
      state: (ctx, id) => this.#state(ctx, id),
      bundleDir: (rec) => this.bundleDir(rec),
      resolveMounts: (ctx, rec) => this.#resolveMounts(ctx, rec),
      event: (ctx, action, id, attributes) => this.#event(ctx, action, id, attributes),
    });
    this.#execs = new ContainerExecs({
      tasks: deps.tasks,
      host: deps.host,
      resolve: (ctx, idOrName) => this.resolve(ctx, idOrName),
      list: (ctx) => this.list(ctx),
      state: (ctx, id) => this.#state(ctx, id),
      patch: (ctx, id, patch) => this.#patch(ctx, id, patch),
      event: (ctx, action, id, attributes) => this.#event(ctx, action, id, attributes),
      bundleDir: (rec) => this.bundleDir(rec),
    });
  }

  /** Volume name -> ids of containers whose config mounts it (filled by recover/create/remove). */
  readonly #volumeUsers = new Map<string, string[]>();

  // ---------------------------------------------------------------- create

  async create(ctx: Ctx, config: ContainerConfig): Promise<{ id: string; warnings: string[] }> {
    const warnings: string[] = [];
    if (config.name !== undefined && config.name !== '') {
      const name = config.name.replace(/^\//, '');
      if (!namePattern.test(name)) throw berthError('InvalidArgument', `Invalid container name (${config.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    }
    const image = await this.#d.images.find(ctx, config.image).catch((err) => {
      if (isNotFound(err)) throw berthError('NotFound', `No such image: ${config.image}`, err);
      throw err;
    });
    if (config.network?.mode.startsWith('container:')) {
      // By id, as docker records it: the other container may be renamed later.
      const other = await this.resolve(ctx, config.network.mode.slice('container:'.length));
      config = { ...config, network: { ...config.network, mode: `container:${other.id}` } };
    }
    for (const key of ['pidMode', 'ipcMode', 'utsMode'] as const) {
      const mode = config[key];
      if (mode?.startsWith('container:')) config = { ...config, [key]: `container:${(await this.resolve(ctx, mode.slice('container:'.length))).id}` };
    }
    if (config.volumesFrom?.length) config = { ...config, mounts: await this.#mountsFrom(ctx, config) };
    const id = newId();
    const snapshotKey = id;
    await this.#d.snapshotter.prepare(ctx, snapshotKey, image.chainId, { labels: { 'berth.container': id } });
    const anonymous: string[] = [];
    try {
      const defaults = imageDefaults(image.config.config ?? {}, config);
      // An image VOLUME without a mount of the user's becomes an anonymous volume, as docker does.
      const mounts: MountSpec[] = [...(config.mounts ?? []), ...defaults.anonymousVolumes.map((target): MountSpec => ({ type: 'volume', target }))];
      for (const m of mounts) {
        if (m.type !== 'volume') continue;
        const vol = await this.#d.volumes.create(ctx, { name: m.source || undefined, anonymous: !m.source });
        if (!m.source) anonymous.push(vol.name);
        m.source = vol.name;
      }
      let name = config.name?.replace(/^\//, '');
      const record: Omit<ContainerRecord, 'namespace'> = {
        id,
        name: name || randomName(),
        // The image's StopSignal is recorded as the container's, as docker does: stop and inspect read it there.
        config: { ...config, mounts, stopSignal: config.stopSignal || image.config.config?.StopSignal || undefined },
        imageId: image.id,
        imageName: config.image,
        snapshotter: this.#d.snapshotter.name,
        snapshotKey,
        createdAt: new Date().toISOString(),
        labels: defaults.labels,
        extensions: {},
      };
      for (let attempt = 0; ; attempt++) {
        try {
          await this.#d.store.create(ctx, record);
          break;
        } catch (err) {
          // A generated name that collides is retried; a chosen one is the user's conflict.
          if (name || kindOf(err) !== 'AlreadyExists' || attempt > 5) throw err;
          record.name = randomName(attempt + 1);
        }
      }
      name = record.name;
      await this.#d.store.setState(ctx, id, { status: 'created', restartCount: 0, anonymousVolumes: anonymous } satisfies RuntimeState);
      this.#trackVolumes(ctx.namespace, id, mounts);
      this.#event(ctx, 'create', id, { name, image: config.image });
      return { id, warnings };
    } catch (err) {
      const cctx = cleanupCtx(ctx);
      await this.#d.snapshotter.remove(cctx, snapshotKey).catch(() => {});
      for (const v of anonymous) await this.#d.volumes.remove(cctx, v, { force: true }).catch(() => {});
      throw err;
    }
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
    return out.sort((a, b) => b.record.createdAt.localeCompare(a.record.createdAt));
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

  // ---------------------------------------------------------------- start

  async start(ctx: Ctx, idOrName: string): Promise<void> {
    const rec = await this.resolve(ctx, idOrName);
    await this.#locked(rec.id, () => this.#start(ctx, rec, { manual: true }));
  }

  async #start(ctx: Ctx, rec: ContainerRecord, opts: { manual: boolean; restart?: boolean }): Promise<void> {
    let st = await this.#state(ctx, rec.id);
    if (st.status === 'running') throw berthError('NotModified', `container ${rec.id} is already running`);
    if (st.status === 'paused') throw berthError('Conflict', `cannot start a paused container, try unpause instead`);
    if (st.status === 'removing') throw berthError('Conflict', `container ${rec.id} is marked for removal and cannot be started`);
    this.#cancelRestart(rec.id);
    if (!st.taskCreated) {
      await this.#prepare(ctx, rec);
      st = await this.#state(ctx, rec.id);
    }
    try {
      await this.#d.tasks.start(ctx, rec.id);
    } catch (err) {
      await this.#failStart(ctx, rec, st, err);
    }
    // A user's start resets the restart count and back-off, as docker does.
    await this.#patch(ctx, rec.id, (cur) => ({
      status: 'running',
      taskCreated: false,
      exitCode: 0,
      error: undefined,
      startedAt: new Date().toISOString(),
      manuallyStopped: opts.manual ? false : cur.manuallyStopped,
      restartCount: opts.restart ? (cur.restartCount ?? 0) + 1 : opts.manual ? 0 : cur.restartCount,
      restartDelayMs: opts.manual ? 0 : cur.restartDelayMs,
    }));
    this.#event(ctx, 'start', rec.id, { name: rec.name, image: rec.imageName });
    this.#watch(ctx, rec);
  }

  /**
   * Everything of a start but running the process: rootfs mounted, network
   * set up, spec written, the monitor holding a created task. `attach` does
   * this for a created container so no output is missed, as docker's
   * attach-then-start does.
   */
  async #prepare(ctx: Ctx, rec: ContainerRecord): Promise<void> {
    const st = await this.#state(ctx, rec.id);
    const cfg = rec.config;
    const bundle = this.bundleDir(rec);
    const rootfs = path.join(bundle, 'rootfs');
    const cctx = cleanupCtx(ctx);
    const undo: Array<() => Promise<unknown>> = [];
    try {
      // A rootfs directory made just now has never had a mount nor a task: nothing of an earlier start to clear.
      if (mkdirSync(rootfs, { recursive: true, mode: 0o711 }) === undefined) {
        await this.#d.tasks.delete(cctx, rec.id, { force: true }).catch(() => {});
        await this.#d.mounter.unmountAll(rootfs).catch(() => {});
      }
      const image = await this.#d.images.find(ctx, rec.imageId).catch(() => undefined);
      const imageConfig: ImageConfig = image?.config.config ?? {};
      const joins = await this.#namespaceJoins(ctx, cfg);
      // The rootfs (then the user, read from it) and the network do not depend on each other: side by side.
      let mounted = false;
      const rootfsReady = (async () => {
        await this.#mountRootfs(ctx, rec, rootfs);
        mounted = true;
        return resolveUserInRootfs(ctx, rootfs, cfg.user ?? imageConfig.User, cfg.groupAdd);
      })();
      const netReady = this.#setupNetwork(ctx, rec, imageConfig);
      const [userResult, netResult] = await Promise.allSettled([rootfsReady, netReady]);
      if (mounted) undo.push(() => this.#d.mounter.unmountAll(rootfs));
      if (netResult.status === 'fulfilled') {
        // Interfaces and NAT come up while the runtime creates the task (below); the process starts after both.
        const pending = netResult.value?.done ?? Promise.resolve();
        undo.push(() => pending.catch(() => {}).then(() => this.#d.network.teardownContainer(cctx, rec.id)));
      }
      if (userResult.status === 'rejected') throw userResult.reason;
      if (netResult.status === 'rejected') throw netResult.reason;
      const user = userResult.value;
      const net = netResult.value;

      const mounts = await this.#resolveMounts(ctx, rec);
      const logPath = this.logPath(rec);
      mkdirSync(path.dirname(logPath), { recursive: true, mode: 0o700 });
      const spec = buildSpec({
        image: imageConfig,
        config: cfg,
        user,
        rootfs,
        mounts,
        etcFiles: net ? { hosts: net.hostsPath, resolvConf: net.resolvConfPath, hostname: net.hostnamePath } : undefined,
        host: {
          ...this.#d.host,
          ...(cfg.privileged ? { devices: await hostDevices(ctx) } : {}),
          ...(cfg.devices?.length ? { mappedDevices: await Promise.all(cfg.devices.map(resolveDevice)) } : {}),
          hostname: net?.hostname ?? rec.id.slice(0, 12),
          cgroupsPath: path.posix.join(this.#d.cgroupParent, rec.namespace === 'default' ? '' : rec.namespace, rec.id),
          namespacePaths: { ...joins.paths, ...(net?.netnsPath ? { network: net.netnsPath } : {}) },
          hostNamespaces: [...joins.host, ...(net && !net.netnsPath ? ['network' as const] : [])],
        },
      });
      // The spec carries the container's environment, which may hold secrets. A few KB on the
      // state tmpfs: written in place, not through the thread pool.
      writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec), { mode: 0o600 });
      const stdio: TaskStdio = { tty: !!cfg.tty, stdin: !!cfg.openStdin, stdinOnce: !!cfg.stdinOnce };
      // runc applies sysctls at create: one naming an interface (net.ipv4.conf.eth0.*) needs the interface there first.
      if (Object.keys(cfg.sysctls ?? {}).some((k) => /^net\.ipv[46]\.(conf|neigh)\.(?!all\.|default\.)/.test(k))) await net?.done;
      const [created, ready] = await Promise.allSettled([
        this.#d.tasks.create(ctx, {
          id: rec.id,
          bundle,
          runtime: cfg.runtime ?? this.#d.defaultRuntime,
          stdio,
          log: { path: logPath, format: cfg.logDriver === 'cri' ? 'cri' : 'json-file', maxSize: cfg.logOpts?.maxSize ?? this.#d.logDefaults.maxSize, maxFiles: cfg.logOpts?.maxFiles ?? this.#d.logDefaults.maxFiles },
        }),
        net?.done,
      ]);
      if (created.status === 'fulfilled') undo.push(() => this.#d.tasks.delete(cctx, rec.id, { force: true }));
      if (created.status === 'rejected') throw created.reason;
      if (ready.status === 'rejected') throw ready.reason;
      await this.#patch(ctx, rec.id, { taskCreated: true, pid: created.value.pid, network: ready.value });
    } catch (err) {
      for (const u of undo.reverse()) await u().catch(() => {});
      await this.#failStart(ctx, rec, st, err);
    }
  }

  /**
   * Mount the container's snapshot on its rootfs. The writable layer of a
   * container removed at exit (--rm) is mounted `volatile`, as podman does
   * for --rm: overlayfs then never syncs the upper file system, whose every
   * unmount otherwise syncs the whole file system under it (a journal commit
   * and a device flush) for a layer about to be deleted. A crash loses
   * nothing of value: such a container is removed when berthd recovers it.
   */
  async #mountRootfs(ctx: Ctx, rec: ContainerRecord, rootfs: string): Promise<void> {
    const mounts = await this.#d.snapshotter.mounts(ctx, rec.snapshotKey);
    const volatile = rec.config.autoRemove ? withVolatile(mounts) : undefined;
    if (volatile) {
      // overlayfs refuses to mount a workdir that was used volatile before (its "incompat/volatile"
      // dir marks a possibly torn upper). Only an orderly unmount of this container's own mount can
      // have left it: a crash removes the container instead of mounting it again.
      await rm(path.join(volatile.workdir, 'work', 'incompat', 'volatile'), { recursive: true, force: true });
      try {
        await this.#d.mounter.mountAll(volatile.mounts, rootfs);
        return;
      } catch (err) {
        // Kernels before 5.10 do not know the option.
        if (!hasErrno(err, 'EINVAL')) throw err;
      }
    }
    await this.#d.mounter.mountAll(mounts, rootfs);
  }

  /** Record a failed start (exit code 126/127/125 as docker) and give back what the start took. */
  async #failStart(ctx: Ctx, rec: ContainerRecord, st: RuntimeState, err: unknown): Promise<never> {
    const cctx = cleanupCtx(ctx);
    if (st.taskCreated) await this.#release(cctx, rec);
    const exitCode = exitCodeOfStartError(err);
    await this.#patch(cctx, rec.id, { taskCreated: false, network: undefined, status: st.status === 'created' ? 'created' : 'exited', exitCode, error: (err as Error).message }).catch(() => {});
    throw Object.assign(wrap(err, `failed to start container ${rec.name}`), { exitCode });
  }

  /**
   * --volumes-from: the other containers' bind and volume mounts, read-only
   * or not as asked (by default as they are), after the container's own; a
   * target the container mounts itself is not taken again.
   */
  async #mountsFrom(ctx: Ctx, config: ContainerConfig): Promise<MountSpec[]> {
    const mounts = [...(config.mounts ?? [])];
    const taken = new Set(mounts.map((m) => m.target));
    for (const spec of config.volumesFrom ?? []) {
      const m = /^(.+?)(?::(ro|rw))?$/.exec(spec);
      if (!m) throw berthError('InvalidArgument', `invalid --volumes-from "${spec}"`);
      const other = await this.resolve(ctx, m[1]);
      for (const mount of other.config.mounts ?? []) {
        if (mount.type === 'tmpfs' || taken.has(mount.target)) continue;
        taken.add(mount.target);
        mounts.push({ ...mount, readOnly: m[2] === undefined ? mount.readOnly : m[2] === 'ro' });
      }
    }
    return mounts;
  }

  /**
   * --pid/--ipc/--uts: the host's namespaces to share, and the paths of
   * other containers' to join. A joined container must be running; its
   * namespaces are looked up at every start, as its pid changes.
   */
  async #namespaceJoins(ctx: Ctx, cfg: ContainerConfig): Promise<{ paths: Partial<Record<'pid' | 'ipc' | 'uts', string>>; host: Array<'pid' | 'ipc' | 'uts'> }> {
    const out: { paths: Partial<Record<'pid' | 'ipc' | 'uts', string>>; host: Array<'pid' | 'ipc' | 'uts'> } = { paths: {}, host: [] };
    for (const [type, mode] of [['pid', cfg.pidMode], ['ipc', cfg.ipcMode], ['uts', cfg.utsMode]] as const) {
      if (mode === 'host') out.host.push(type);
      else if (mode?.startsWith('container:')) {
        const other = await this.get(ctx, mode.slice('container:'.length));
        if ((other.state.status !== 'running' && other.state.status !== 'paused') || !other.state.pid) {
          throw berthError('Conflict', `cannot join the ${type} namespace of container ${other.record.name}: it is not running`);
        }
        out.paths[type] = `/proc/${other.state.pid}/ns/${type}`;
      }
    }
    return out;
  }

  async #setupNetwork(ctx: Ctx, rec: ContainerRecord, image: ImageConfig): Promise<PendingSetup | undefined> {
    const cfg = rec.config;
    const attachment = cfg.network ?? { mode: 'bridge' };
    const shared = cfg.sharedNamespaces?.network;
    if (attachment.mode.startsWith('container:')) {
      const other = await this.get(ctx, attachment.mode.slice('container:'.length));
      if (other.state.status !== 'running' && other.state.status !== 'paused') {
        throw berthError('Conflict', `cannot join the network of container ${other.record.name}: it is not running`);
      }
    }
    return this.#d.network.beginSetup(ctx, {
      containerId: rec.id,
      namespace: rec.namespace,
      name: rec.name,
      hostname: cfg.hostname,
      domainname: cfg.domainname,
      attachment,
      exposedPorts: [...new Set([...Object.keys(image.ExposedPorts ?? {}), ...(cfg.exposedPorts ?? [])])],
      moreNetworks: attachment.extraNetworks,
      netnsPath: shared,
    });
  }

  async #resolveMounts(ctx: Ctx, rec: ContainerRecord): Promise<ResolvedMount[]> {
    const out: ResolvedMount[] = [];
    for (const m of rec.config.mounts ?? []) {
      if (m.type === 'bind') {
        if (!m.source || !path.isAbsolute(m.source)) throw berthError('InvalidArgument', `invalid mount config for type "bind": invalid mount path: '${m.source ?? ''}' mount path must be absolute`);
        try {
          await stat(m.source);
        } catch {
          throw berthError('InvalidArgument', `invalid mount config for type "bind": bind source path does not exist: ${m.source}`);
        }
        out.push({ type: 'bind', source: m.source, target: m.target, readOnly: m.readOnly, options: m.options });
      } else if (m.type === 'volume') {
        const vol = await this.#d.volumes.inspect(ctx, m.source!);
        out.push({ type: 'bind', source: vol.mountpoint, target: m.target, readOnly: m.readOnly, options: m.options });
      } else {
        out.push({ type: 'tmpfs', target: m.target, readOnly: m.readOnly, options: m.options });
      }
    }
    // --tmpfs mounts are added by buildSpec, with docker's noexec,nosuid,nodev defaults.
    return out;
  }

  // ---------------------------------------------------------------- exit handling

  /** Follow a running task until it exits, then record the exit and apply the restart policy. */
  #watch(ctx: Ctx, rec: ContainerRecord): void {
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
      await this.#locked(rec.id, () => this.#onExit(bg, rec.id, exit)).catch((err) => this.#d.log.error('handling a container exit failed', { container: rec.id, err }));
    })();
    this.#watching.set(rec.id, p);
  }

  async #onExit(ctx: Ctx, id: string, exit: ExitStatus): Promise<void> {
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
    if (!removal) await this.#release(ctx, rec);
    // Decide on the state as it is now: a stop may have landed while the task was released.
    const st = await this.#patch(ctx, id, { status: removal ? 'removing' : 'exited', pid: undefined, exitCode: exit.exitCode, finishedAt: exit.finishedAt, network: undefined, taskCreated: false });
    this.#event(ctx, 'die', id, { name: rec.name, image: rec.imageName, exitCode: String(exit.exitCode) });

    if (removal) {
      await this.#removeNow(ctx, id, removal, st).catch((err) => this.#d.log.warn(rec.config.autoRemove ? 'auto-remove failed' : 'removal failed', { container: id, err }));
      return;
    }
    const facts = { exitCode: exit.exitCode, manuallyStopped: !!st.manuallyStopped, restartCount: st.restartCount ?? 0 };
    if (!shouldRestart(rec.config.restartPolicy, facts)) return;
    const ranFor = st.startedAt ? Date.parse(exit.finishedAt) - Date.parse(st.startedAt) : 0;
    const delay = restartDelay(st.restartDelayMs ?? 0, ranFor);
    await this.#patch(ctx, id, { status: 'restarting', restartDelayMs: delay });
    const t = setTimeout(() => {
      this.#restartTimers.delete(id);
      void this.#locked(id, async () => {
        const now = await this.#state(ctx, id).catch(() => undefined);
        if (!now || now.status !== 'restarting' || this.#closed) return;
        await this.#start(ctx, rec, { manual: false, restart: true });
      }).catch((err) => this.#d.log.warn('restart failed', { container: id, err }));
    }, delay);
    t.unref();
    this.#restartTimers.set(id, t);
  }

  /** Give back what a running container holds: the task, its network, its rootfs mount. */
  async #release(ctx: Ctx, rec: ContainerRecord): Promise<void> {
    const parts = this.#releaseParts(ctx, rec);
    await Promise.all([parts.task, parts.rootfs, parts.network]);
  }

  /**
   * The parts of a release, as promises that never reject (failures are
   * logged): the task's removal; the rootfs unmount, as soon as no process
   * of the task remains to keep it busy; and the network, which waits for
   * neither.
   */
  #releaseParts(ctx: Ctx, rec: ContainerRecord): { task: Promise<void>; rootfs: Promise<void>; network: Promise<void> } {
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
      this.#d.mounter.unmountAll(path.join(this.bundleDir(rec), 'rootfs')).catch((err) => this.#d.log.warn('unmount failed', { container: rec.id, err })),
    );
    const network = this.#d.network.teardownContainer(cctx, rec.id).catch((err) => this.#d.log.warn('network teardown failed', { container: rec.id, err }));
    return { task, rootfs: unmounted, network: network };
  }

  // ---------------------------------------------------------------- stop, kill, restart

  async stop(ctx: Ctx, idOrName: string, opts: { timeoutSec?: number; signal?: string } = {}): Promise<void> {
    const rec = await this.resolve(ctx, idOrName);
    await this.#stop(ctx, rec, opts);
  }

  async #stop(ctx: Ctx, rec: ContainerRecord, opts: { timeoutSec?: number; signal?: string }): Promise<void> {
    const st = await this.#state(ctx, rec.id);
    this.#cancelRestart(rec.id);
    if (st.status === 'restarting') {
      await this.#patch(ctx, rec.id, { status: 'exited', manuallyStopped: true });
      return;
    }
    if (st.status !== 'running' && st.status !== 'paused') throw berthError('NotModified', `container ${rec.id} is not running`);
    await this.#patch(ctx, rec.id, { manuallyStopped: true });
    const signal = parseSignal(opts.signal ?? rec.config.stopSignal ?? 'SIGTERM');
    const timeout = opts.timeoutSec ?? rec.config.stopTimeout ?? 10;
    if (st.status === 'paused') await this.#d.tasks.resume(ctx, rec.id).catch(() => {});
    const exited = this.#waitExit(ctx, rec.id);
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
    this.#event(ctx, 'stop', rec.id, { name: rec.name });
  }

  async kill(ctx: Ctx, idOrName: string, signal = 'SIGKILL'): Promise<void> {
    const rec = await this.resolve(ctx, idOrName);
    const st = await this.#state(ctx, rec.id);
    if (st.status !== 'running' && st.status !== 'paused') throw berthError('Conflict', `Cannot kill container: ${idOrName}: container ${rec.id} is not running`);
    const sig = parseSignal(signal);
    const stopSignal = parseSignal(rec.config.stopSignal ?? 'SIGTERM');
    if (sig === SIGKILL || sig === stopSignal) await this.#patch(ctx, rec.id, { manuallyStopped: true });
    // A paused container would hold the signal pending: let it run to receive it, as docker does.
    if (st.status === 'paused' && sig === SIGKILL) await this.#d.tasks.resume(ctx, rec.id).catch(() => {});
    await this.#d.tasks.kill(ctx, rec.id, sig);
    this.#event(ctx, 'kill', rec.id, { name: rec.name, signal: String(sig) });
  }

  async restart(ctx: Ctx, idOrName: string, opts: { timeoutSec?: number } = {}): Promise<void> {
    const rec = await this.resolve(ctx, idOrName);
    this.#userRestarts.add(rec.id);
    try {
      await this.#stop(ctx, rec, opts).catch((err) => {
        if (kindOf(err) !== 'NotModified') throw err;
      });
      await this.#locked(rec.id, () => this.#start(ctx, rec, { manual: true }));
    } finally {
      this.#userRestarts.delete(rec.id);
    }
    this.#event(ctx, 'restart', rec.id, { name: rec.name });
  }

  async pause(ctx: Ctx, idOrName: string): Promise<void> {
    const rec = await this.resolve(ctx, idOrName);
    await this.#locked(rec.id, async () => {
      const st = await this.#state(ctx, rec.id);
      if (st.status === 'paused') throw berthError('Conflict', `Container ${rec.id} is already paused`);
      if (st.status !== 'running') throw berthError('Conflict', `Container ${rec.id} is not running`);
      await this.#d.tasks.pause(ctx, rec.id);
      await this.#patch(ctx, rec.id, { status: 'paused' });
    });
    this.#event(ctx, 'pause', rec.id, { name: rec.name });
  }

  async unpause(ctx: Ctx, idOrName: string): Promise<void> {
    const rec = await this.resolve(ctx, idOrName);
    await this.#locked(rec.id, async () => {
      const st = await this.#state(ctx, rec.id);
      if (st.status !== 'paused') throw berthError('Conflict', `Container ${rec.id} is not paused`);
      await this.#d.tasks.resume(ctx, rec.id);
      await this.#patch(ctx, rec.id, { status: 'running' });
    });
    this.#event(ctx, 'unpause', rec.id, { name: rec.name });
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
      const st = await this.#state(ctx, rec.id);
      const running = st.status === 'running' || st.status === 'paused' || st.status === 'restarting';
      if (condition === 'not-running' && !running) return { exitCode: st.exitCode ?? 0 };
      for await (const e of sub) {
        if (condition === 'removed') return { exitCode: Number(e.attributes.exitCode ?? st.exitCode ?? 0) };
        const after = await this.#state(ctx, rec.id).catch(() => undefined);
        if (condition === 'not-running' && after?.status === 'restarting') continue;
        return { exitCode: Number(e.attributes.exitCode ?? 0) };
      }
      throw berthError('Canceled', 'wait canceled');
    } finally {
      sub.close();
      ctx.signal.removeEventListener('abort', onAbort);
    }
  }

  async #waitExit(ctx: Ctx, id: string): Promise<void> {
    const w = this.#watching.get(id);
    if (w) return w;
    await this.#d.tasks.wait(ctx, id).catch(() => {});
  }

  // ---------------------------------------------------------------- remove

  async remove(ctx: Ctx, idOrName: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const rec = await this.resolve(ctx, idOrName);
    await this.#remove(ctx, rec, opts);
  }

  async #remove(ctx: Ctx, rec: ContainerRecord, opts: { force?: boolean; volumes?: boolean }): Promise<void> {
    const st = await this.#state(ctx, rec.id);
    if (st.status === 'running' || st.status === 'paused' || st.status === 'restarting') {
      if (!opts.force) {
        throw berthError('Conflict', `You cannot remove a ${st.status} container ${rec.id}. Stop the container before attempting removal or force remove`);
      }
      this.#cancelRestart(rec.id);
      // Recorded for a policy that could restart it, should berthd die before the removal is done.
      if (rec.config.restartPolicy && rec.config.restartPolicy.name !== 'no') await this.#patch(ctx, rec.id, { manuallyStopped: true });
      if (st.status !== 'restarting') {
        // The exit watcher sees this removal and carries it out with the exit (see #onExit).
        this.#removals.set(rec.id, { volumes: opts.volumes });
        try {
          const exited = this.#waitExit(ctx, rec.id);
          if (st.status === 'paused') await this.#d.tasks.resume(ctx, rec.id).catch(() => {});
          await this.#d.tasks.kill(ctx, rec.id, SIGKILL, { all: true }).catch(() => {});
          await Promise.race([exited, sleep(10_000)]);
        } finally {
          this.#removals.delete(rec.id);
        }
      }
    }
    await this.#locked(rec.id, () => this.#removeNow(ctx, rec.id, opts));
  }

  /**
   * The removal itself, under the container's lock; a record already gone is
   * success. `marked` is the state an exit handler has just marked
   * "removing". The rootfs (then the snapshot and bundle), the network and
   * the log go side by side; the record goes last.
   */
  async #removeNow(ctx: Ctx, id: string, opts: { volumes?: boolean }, marked?: RuntimeState): Promise<void> {
    const cctx = cleanupCtx(ctx);
    let rec: ContainerRecord;
    try {
      rec = await this.#d.store.get(ctx, id);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    this.#cancelRestart(id);
    const st = marked ?? (await this.#patch(cctx, id, { status: 'removing' }));
    const released = this.#releaseParts(cctx, rec);
    await Promise.all([
      released.rootfs.then(() =>
        Promise.all([
          this.#d.snapshotter.remove(cctx, rec.snapshotKey).catch((err) => {
              if (!isNotFound(err)) throw wrap(err, `remove container ${rec.id}: snapshot`);
            },
          ),
          removeTree(this.bundleDir(rec)),
        ]),
      ),
      released.task,
      released.network,
      rec.config.logPath ? undefined : removeTree(path.dirname(this.logPath(rec)), { maxBytes: 1 << 20 }),
    ]);
    await this.#d.store.delete(cctx, rec.id).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
    this.#untrackVolumes(rec.namespace, rec.id);
    if (opts.volumes) {
      for (const v of st.anonymousVolumes ?? []) await this.#d.volumes.remove(cctx, v, { force: true }).catch(() => {});
    }
    this.#event(ctx, 'destroy', rec.id, { name: rec.name, image: rec.imageName, exitCode: String(st.exitCode ?? 0) });
  }

  async prune(ctx: Ctx, opts: { labels?: string[] } = {}): Promise<{ removed: string[] }> {
    const removed: string[] = [];
    for (const c of await this.list(ctx)) {
      if (c.state.status === 'running' || c.state.status === 'paused' || c.state.status === 'restarting') continue;
      if (opts.labels?.length && !opts.labels.every((l) => labelMatches(c.record.labels, l))) continue;
      await this.#locked(c.record.id, () => this.#removeNow(ctx, c.record.id, {}));
      removed.push(c.record.id);
    }
    return { removed };
  }

  async rename(ctx: Ctx, idOrName: string, newName: string): Promise<void> {
    const name = newName.replace(/^\//, '');
    if (!namePattern.test(name)) throw berthError('InvalidArgument', `Invalid container name (${newName}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const rec = await this.resolve(ctx, idOrName);
    await this.#d.store.rename(ctx, rec.id, name);
    this.#event(ctx, 'rename', rec.id, { name, oldName: rec.name });
  }

  async update(ctx: Ctx, idOrName: string, patch: Pick<ContainerConfig, 'resources' | 'restartPolicy'>): Promise<void> {
    const rec = await this.resolve(ctx, idOrName);
    const st = await this.#state(ctx, rec.id);
    const config: ContainerConfig = { ...rec.config };
    if (patch.resources) config.resources = { ...config.resources, ...patch.resources };
    if (patch.restartPolicy) {
      if (config.autoRemove && patch.restartPolicy.name !== 'no') throw berthError('InvalidArgument', 'Restart policy cannot be updated because AutoRemove is enabled for the container');
      config.restartPolicy = patch.restartPolicy;
    }
    if (patch.resources && (st.status === 'running' || st.status === 'paused')) {
      const { buildResources } = await import('./spec-resources.ts');
      await this.#d.tasks.update(ctx, rec.id, buildResources(config.resources) as unknown as Parameters<TaskService['update']>[2]);
    }
    await this.#d.store.update(ctx, rec.id, { config });
    this.#event(ctx, 'update', rec.id, { name: rec.name });
  }

  // ---------------------------------------------------------------- network connect, disconnect

  /** `network connect`: joins now when running, and at every later start (recorded in the config). */
  async connectNetwork(ctx: Ctx, idOrName: string, req: { network: string; aliases?: string[]; ipAddress?: string }): Promise<void> {
    const { id } = await this.resolve(ctx, idOrName);
    await this.#locked(id, async () => {
      const rec = await this.#d.store.get(ctx, id);
      const net = await this.#d.network.inspectNetwork(ctx, req.network);
      const entry = { aliases: req.aliases?.length ? req.aliases : undefined, ipAddress: req.ipAddress };
      const network = withConnected(rec.config.network ?? { mode: 'bridge' }, net.Name, entry, isNetwork(net), rec.name);
      if (isActive(await this.#state(ctx, id))) await this.#d.network.connect(ctx, { container: id, network: net.Id, ...entry });
      await this.#d.store.update(ctx, id, { config: { ...rec.config, network } });
    });
  }

  /** `network disconnect`: leaves now when running, and is no longer joined at later starts. */
  async disconnectNetwork(ctx: Ctx, idOrName: string, req: { network: string; force?: boolean }): Promise<void> {
    const { id } = await this.resolve(ctx, idOrName);
    await this.#locked(id, async () => {
      const rec = await this.#d.store.get(ctx, id);
      const net = await this.#d.network.inspectNetwork(ctx, req.network);
      const network = withDisconnected(rec.config.network ?? { mode: 'bridge' }, net.Name, isNetwork(net), rec.name);
      if (isActive(await this.#state(ctx, id))) await this.#d.network.disconnect(ctx, { container: id, network: net.Id, force: req.force });
      await this.#d.store.update(ctx, id, { config: { ...rec.config, network } });
    });
  }

  // ---------------------------------------------------------------- attach, exec, stats

  async attach(ctx: Ctx, idOrName: string): Promise<{ stream: Duplex; tty: boolean; record: ContainerRecord }> {
    const rec = await this.resolve(ctx, idOrName);
    const st = await this.#state(ctx, rec.id);
    if (st.status !== 'running' && st.status !== 'paused' && st.status !== 'created') {
      throw berthError('Conflict', `You cannot attach to a stopped container, start it first`);
    }
    if (st.status === 'created' && !st.taskCreated) {
      await this.#locked(rec.id, async () => {
        const now = await this.#state(ctx, rec.id);
        if (now.status === 'created' && !now.taskCreated) await this.#prepare(ctx, rec);
      });
    }
    return { stream: await this.#d.tasks.attach(ctx, rec.id), tty: !!rec.config.tty, record: rec };
  }

  async resize(ctx: Ctx, idOrName: string, rows: number, cols: number): Promise<void> {
    const rec = await this.resolve(ctx, idOrName);
    await this.#d.tasks.resize(ctx, rec.id, { rows, cols });
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

  execWait(ctx: Ctx, execId: string): Promise<number> {
    return this.#execs.execWait(ctx, execId);
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
    const st = await this.#state(ctx, rec.id);
    if (st.status !== 'running' && st.status !== 'paused') throw berthError('Conflict', `Container ${rec.id} is not running`);
    return rec;
  }

  // ---------------------------------------------------------------- daemon start and stop

  /**
   * At daemon start: reconcile every namespace's containers with the tasks
   * that survived (monitors outlive berthd). A running task is followed
   * again; one that exited while berthd was down gets its real exit code;
   * a container caught half-started is cleaned up; restart policies apply.
   */
  async recover(ctx: Ctx, namespaces: string[]): Promise<{ running: string[] }> {
    const running: string[] = [];
    for (const ns of namespaces) {
      const nctx = withCtx(ctx, { namespace: ns });
      const tasks = new Map((await this.#d.tasks.list(nctx).catch(() => [])).map((t) => [t.id, t]));
      for (const rec of await this.#d.store.list(nctx)) {
        this.#trackVolumes(ns, rec.id, rec.config.mounts ?? []);
        const st = await this.#state(nctx, rec.id);
        const task = tasks.get(rec.id);
        if (st.status === 'removing') {
          await this.#remove(nctx, rec, { force: true }).catch((err) => this.#d.log.warn('finishing a removal failed', { container: rec.id, err }));
          continue;
        }
        if (task && (task.status === 'running' || task.status === 'paused')) {
          const status = task.status === 'paused' ? 'paused' : 'running';
          if (st.status !== status) await this.#patch(nctx, rec.id, { status, pid: task.pid });
          running.push(rec.id);
          this.#watch(nctx, rec);
          continue;
        }
        if (st.status === 'created') {
          // Prepared by an attach that never saw its start: give the task back, keep the container.
          if (task || st.taskCreated) {
            await this.#release(nctx, rec);
            await this.#patch(nctx, rec.id, { taskCreated: false, network: undefined });
          }
          continue;
        }
        const wasRunning = st.status === 'running' || st.status === 'paused' || st.status === 'restarting';
        if (wasRunning || task) {
          // A container waiting for its policy restart keeps the exit it had; one whose task vanished gets 255.
          const lost = st.status === 'restarting' ? (st.exitCode ?? 255) : 255;
          const exit: ExitStatus = task?.exit ?? { exitCode: lost, signal: 0, pid: 0, finishedAt: st.finishedAt ?? new Date().toISOString() };
          await this.#onExit(nctx, rec.id, exit).catch((err) => this.#d.log.warn('recording an exit failed', { container: rec.id, err }));
          continue;
        }
        if (st.status === 'exited' && startOnDaemonStart(rec.config.restartPolicy, false, !!st.manuallyStopped)) {
          // Docker starts `always` containers with the daemon, manually stopped ones too; `unless-stopped` ones unless stopped by hand.
          await this.#locked(rec.id, () => this.#start(nctx, rec, { manual: false })).catch((err) => this.#d.log.warn('restart at start-up failed', { container: rec.id, err }));
        }
      }
      // Tasks without a container record: a create interrupted before its record was written.
      for (const t of tasks.values()) {
        if (!(await this.#d.store.get(nctx, t.id).then(() => true, () => false))) {
          await this.#d.tasks.kill(nctx, t.id, SIGKILL, { all: true }).catch(() => {});
          await this.#d.tasks.delete(nctx, t.id, { force: true }).catch(() => {});
        }
      }
    }
    return { running };
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
    this.#closed = true;
    for (const t of this.#restartTimers.values()) clearTimeout(t);
    this.#restartTimers.clear();
  }

  // ---------------------------------------------------------------- helpers

  /**
   * Change some fields of a container's state, on the latest stored state
   * (never on a copy read before an await), one change at a time per
   * container. `patch` may be a function of the current state.
   */
  async #patch(ctx: Ctx, id: string, patch: Partial<RuntimeState> | ((st: RuntimeState) => Partial<RuntimeState>)): Promise<RuntimeState> {
    const prev = this.#stateLocks.get(id) ?? Promise.resolve();
    const run = prev.then(async () => {
      const cur = await this.#state(ctx, id);
      const next = { ...cur, ...(typeof patch === 'function' ? patch(cur) : patch) };
      await this.#d.store.setState(ctx, id, next);
      return next;
    });
    const tail = run.catch(() => {});
    this.#stateLocks.set(id, tail);
    try {
      return await run;
    } finally {
      if (this.#stateLocks.get(id) === tail) this.#stateLocks.delete(id);
    }
  }

  async #state(ctx: Ctx, id: string): Promise<RuntimeState> {
    const s = (await this.#d.store.getState(ctx, id)) as RuntimeState | undefined;
    return s ?? { status: 'created', restartCount: 0 };
  }

  /** The state as shown: `network connect`/`disconnect` change a running container's network after its start. */
  async #viewState(ctx: Ctx, id: string): Promise<RuntimeState> {
    const st = await this.#state(ctx, id);
    if (!st.network || (st.status !== 'running' && st.status !== 'paused')) return st;
    const live = await this.#d.network.containerNetwork(ctx, id).catch(() => undefined);
    return live ? { ...st, network: live } : st;
  }

  #cancelRestart(id: string): void {
    const t = this.#restartTimers.get(id);
    if (t) clearTimeout(t);
    this.#restartTimers.delete(id);
  }

  async #locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(id) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => {});
    this.#locks.set(id, tail);
    try {
      return await run;
    } finally {
      if (this.#locks.get(id) === tail) this.#locks.delete(id);
    }
  }

  #event(ctx: Ctx, action: string, id: string, attributes: Record<string, string>): void {
    this.#d.events.publish({ type: 'container', action, namespace: ctx.namespace, id, attributes });
  }

  #trackVolumes(ns: string, id: string, mounts: MountSpec[]): void {
    for (const m of mounts) {
      if (m.type !== 'volume' || !m.source) continue;
      const key = `${ns}/${m.source}`;
      const users = this.#volumeUsers.get(key) ?? [];
      if (!users.includes(id)) users.push(id);
      this.#volumeUsers.set(key, users);
    }
  }

  #untrackVolumes(ns: string, id: string): void {
    for (const [key, users] of this.#volumeUsers) {
      if (!key.startsWith(`${ns}/`)) continue;
      const rest = users.filter((u) => u !== id);
      if (rest.length) this.#volumeUsers.set(key, rest);
      else this.#volumeUsers.delete(key);
    }
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

/** docker's exit codes for a container that could not start: 127 not found, 126 not executable. */
function exitCodeOfStartError(err: unknown): number {
  const code = (err as { exitCode?: number }).exitCode;
  if (typeof code === 'number') return code;
  // What berth itself refused is the engine's error; 126/127 are for the runtime failing to exec the command.
  if (['InvalidArgument', 'NotFound', 'Conflict', 'FailedPrecondition', 'AlreadyExists'].includes(kindOf(err))) return 125;
  const msg = err instanceof Error ? err.message : String(err);
  if (/executable file not found|no such file or directory/i.test(msg)) return 127;
  if (/permission denied|exec format error/i.test(msg)) return 126;
  return 125;
}

function labelMatches(labels: Record<string, string>, filter: string): boolean {
  const eq = filter.indexOf('=');
  return eq < 0 ? filter in labels : labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}

/** Unused directory entries under <state>/containers that belong to no record (crash leftovers). */
export async function strayBundles(stateDir: string, namespace: string, known: Set<string>): Promise<string[]> {
  try {
    return (await readdir(path.join(stateDir, namespace))).filter((d) => !known.has(d)).map((d) => path.join(stateDir, namespace, d));
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return [];
    throw err;
  }
}

function isActive(st: RuntimeState): boolean {
  return st.status === 'running' || st.status === 'paused';
}

/** A recorded network reference (name, id or id prefix) names this network. */
function isNetwork(net: { Id: string; Name: string }): (ref: string) => boolean {
  return (ref) => ref === net.Name || (ref.length > 0 && net.Id.startsWith(ref));
}

/** Overlay mounts with overlayfs's `volatile` option added, and their workdir; undefined when there is no overlay. */
function withVolatile(mounts: SnapshotMount[]): { mounts: SnapshotMount[]; workdir: string } | undefined {
  if (mounts.length !== 1 || mounts[0].type !== 'overlay') return undefined;
  const workdir = mounts[0].options.find((o) => o.startsWith('workdir='))?.slice('workdir='.length);
  if (!workdir) return undefined;
  return { mounts: [{ ...mounts[0], options: [...mounts[0].options, 'volatile'] }], workdir };
}
