import { mkdirSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Ctx } from '../../core/context.ts';
import { cleanupCtx, withCtx } from '../../core/context.ts';
import { berthError, isNotFound } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { SandboxRecord, SandboxStore } from '../../metadata/sandboxes.ts';
import type { NetworkService, SetupResult } from '../../network/types.ts';
import type { SandboxEvent, SandboxFilter, SandboxInfo, SandboxResources, SandboxService, RunSandboxRequest } from './sandbox-types.ts';
import { PAUSE_IN_ROOTFS, sandboxSpec } from './sandbox-spec.ts';
import { hostDevices } from '../oci/host-devices.ts';
import type { Seccomp } from '../oci/oci-types.ts';
import { parseSeccompProfile } from '../oci/seccomp-profile.ts';
import type { TaskService } from '../tasks/task-types.ts';

export type * from './sandbox-types.ts';

/** Sysctls of one interface's settings, which exist only once the interface does. */
const INTERFACE_SYSCTL = /^net\.ipv[46]\.(conf|neigh)\.(?!all\.|default\.)/;

export interface SandboxServiceDeps {
  store: SandboxStore;
  tasks: TaskService;
  network: NetworkService;
  /** `<state>/sandboxes`: bundles per namespace and the shared pause rootfs. */
  stateDir: string;
  /** Host path of the static pause binary (native/build/berth-pause). */
  pausePath: string;
  /** The berth network pods join: `bridge` (the default network) or a user network's name. */
  networkName: string;
  /** Parent cgroup of sandboxes the caller gives none for. */
  cgroupParent: string;
  defaultRuntime: string;
  /** The capabilities berthd holds: what a privileged pod's pause process gets. */
  capabilities?: readonly string[];
}

/** SandboxService on the metadata store, the network service and berth-monitor tasks. */
export class PauseSandboxService implements SandboxService {
  readonly #d: SandboxServiceDeps;
  readonly #locks = new Map<string, Promise<unknown>>();
  /** Sandboxes being run: not listed, and unknown to every other call, until they are ready (containerd adds them to its store then). */
  readonly #creating = new Set<string>();
  readonly #listeners = new Set<(e: SandboxEvent) => void>();
  /** The sandboxes whose pause process is waited for, each with the token of its one STOPPED report. */
  readonly #watched = new Map<string, symbol>();
  #rootfs?: Promise<string>;

  constructor(deps: SandboxServiceDeps) {
    this.#d = deps;
  }

  async run(ctx: Ctx, req: RunSandboxRequest): Promise<SandboxInfo> {
    for (const [field, v] of [['name', req.name], ['uid', req.uid], ['namespace', req.podNamespace]] as const) {
      if (!v) throw berthError('InvalidArgument', `pod sandbox metadata: ${field} must not be empty`);
    }
    const ns = { network: req.namespaces?.network ?? 'pod', pid: req.namespaces?.pid ?? 'container', ipc: req.namespaces?.ipc ?? 'pod' } as const;
    if (ns.network === 'container' || ns.ipc === 'container') throw berthError('InvalidArgument', 'pod sandbox: network and ipc namespaces are per pod or the node\'s, not per container');
    for (const [field, p] of [['log directory', req.logDirectory], ['cgroup parent', req.cgroupParent]] as const) {
      if (p && (!p.startsWith('/') || p.split('/').includes('..'))) throw berthError('InvalidArgument', `pod sandbox: ${field} "${p}" must be an absolute path without ".."`);
    }
    // A Localhost profile is read before anything is made, so that a missing one leaves nothing behind.
    const seccompProfile = req.seccomp?.type === 'localhost' ? await loadSeccompProfile(req.seccomp.path) : undefined;
    const hostNet = ns.network === 'node';
    const rec: SandboxRecord = {
      id: newId(),
      namespace: ctx.namespace,
      name: req.name,
      uid: req.uid,
      podNamespace: req.podNamespace,
      attempt: req.attempt ?? 0,
      hostname: req.hostname ?? '',
      labels: { ...req.labels },
      annotations: { ...req.annotations },
      namespaces: ns,
      network: hostNet ? '' : this.#d.networkName,
      ip: '',
      state: 'notready',
      createdAtNs: String(BigInt(Date.now()) * 1_000_000n),
      logDirectory: req.logDirectory ?? '',
      ports: [],
      privileged: !!req.privileged,
      sysctls: { ...req.sysctls },
      cgroupParent: req.cgroupParent ?? '',
      seccomp: !req.seccomp ? 'runtime/default' : req.seccomp.type === 'localhost' ? `localhost/${req.seccomp.path}` : req.seccomp.type,
      ...(req.overhead ? { overhead: req.overhead } : {}),
      ...(req.resources ? { resources: req.resources } : {}),
    };
    const user = { uid: req.runAsUser ?? 0, gid: req.runAsGroup ?? 0, additionalGids: req.supplementalGroups };
    const cgroupsPath = req.cgroupParent ? path.posix.join(req.cgroupParent, rec.id) : path.posix.join(this.#d.cgroupParent, rec.namespace, rec.id);
    const hostFacts = { capabilities: this.#d.capabilities, ...(seccompProfile ? { seccompProfile } : {}) };
    // A first plan of the spec, before anything is made, so that what buildSpec refuses (a sysctl that is not the pod's own) leaves nothing behind.
    sandboxSpec({ rec, net: plannedNetwork(rec), rootfs: '/', user, cgroupsPath, host: hostFacts });
    // The record comes first: it reserves the pod's name, and a crash from here on leaves a notready sandbox that recovery clears.
    this.#d.store.create(ctx, rec);
    this.#creating.add(rec.id);
    let info: SandboxInfo;
    const cctx = cleanupCtx(ctx);
    const undo: Array<() => Promise<unknown>> = [async () => this.#d.store.delete(cctx, rec.id)];
    try {
      if (rec.logDirectory) {
        // kubelet makes the directory first; made here too for other clients, and taken back on failure only if made here.
        // In place: for a directory that exists this is one mkdir and one stat, less than a thread-pool round trip.
        const made = mkdirSync(rec.logDirectory, { recursive: true, mode: 0o755 });
        if (made) undo.push(() => rm(made, { recursive: true, force: true }));
      }
      const rootfs = await this.#preparedRootfs();
      const bundle = this.#bundleDir(rec);
      // On the state directory's tmpfs: made in place, as a thread-pool round trip costs more than the mkdir.
      mkdirSync(bundle, { recursive: true, mode: 0o700 });
      undo.push(() => rm(bundle, { recursive: true, force: true }));
      // The netns and the pod's files exist when this answers; the interfaces, addresses and host ports come
      // up (`done`) while runc creates the pause process, which only starts once they are in place.
      const net = await this.#d.network.beginSetup(ctx, {
        containerId: rec.id,
        namespace: ctx.namespace,
        name: `k8s_POD_${rec.name}_${rec.podNamespace}_${rec.uid}_${rec.attempt}`,
        hostname: rec.hostname || undefined,
        attachment: {
          mode: hostNet ? 'host' : this.#d.networkName,
          dns: req.dns?.servers,
          dnsSearch: req.dns?.searches,
          dnsOptions: req.dns?.options,
          // The node's network has no port mapping to make, as with containerd's CNI.
          ...(hostNet ? {} : { ports: req.ports ?? [] }),
        },
      });
      undo.push(() => net.done.catch(() => {}).then(() => this.#d.network.teardownContainer(cctx, rec.id)));
      const spec = sandboxSpec({
        rec,
        net,
        rootfs,
        user,
        cgroupsPath,
        host: { ...hostFacts, ...(rec.privileged ? { devices: await hostDevices(ctx) } : {}) },
      });
      // The spec is a few KB on the state directory: written in place, not through the thread pool.
      writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec), { mode: 0o600 });
      // runc sets sysctls as it creates the process: one naming an interface (net.ipv4.conf.eth0.*) needs the interface there first.
      if (Object.keys(rec.sysctls ?? {}).some((k) => INTERFACE_SYSCTL.test(k))) await net.done;
      const [created, wired] = await Promise.allSettled([this.#d.tasks.create(ctx, { id: rec.id, bundle, runtime: this.#d.defaultRuntime, stdio: {} }), net.done]);
      if (created.status === 'fulfilled') undo.push(() => this.#d.tasks.delete(cctx, rec.id, { force: true }));
      if (created.status === 'rejected') throw created.reason;
      if (wired.status === 'rejected') throw wired.reason;
      rec.ports = wired.value.ports;
      const task = await this.#d.tasks.start(ctx, rec.id);
      const ready = this.#d.store.update(ctx, rec.id, { state: 'ready', ip: wired.value.interfaces[0]?.ip ?? '', ports: rec.ports });
      info = { ...ready, pausePid: task.pid, netnsPath: net.netnsPath ?? '' };
    } catch (err) {
      for (const u of undo.reverse()) await u().catch((e) => ctx.log.warn('pod sandbox rollback step failed', { sandbox: rec.id, err: e }));
      throw err;
    } finally {
      this.#creating.delete(rec.id);
    }
    this.#emit('created', rec);
    this.#emit('started', rec);
    this.#watchExit(ctx, rec);
    return info;
  }

  subscribe(fn: (e: SandboxEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #emit(action: SandboxEvent['action'], rec: Pick<SandboxRecord, 'id' | 'namespace'>): void {
    const e: SandboxEvent = { action, id: rec.id, namespace: rec.namespace, timeNano: String(BigInt(Date.now()) * 1_000_000n) };
    for (const fn of this.#listeners) fn(e);
  }

  /**
   * Report the pause process's exit once, whether a stop killed it or it
   * died. A berthd that stops waits no more (its recovery waits again for
   * the sandboxes still running); a task removed while waited for has exited.
   */
  #watchExit(ctx: Ctx, rec: SandboxRecord): void {
    if (this.#watched.has(rec.id)) return;
    const token = Symbol(rec.id);
    this.#watched.set(rec.id, token);
    const wctx = withCtx(ctx, { namespace: rec.namespace });
    void this.#d.tasks.wait(wctx, rec.id).then(
      () => true,
      (err) => isNotFound(err),
    ).then((exited) => {
      if (this.#watched.get(rec.id) !== token) return;
      this.#watched.delete(rec.id);
      if (exited) this.#emit('stopped', rec);
    });
  }

  /**
   * A stop reports the exit itself, once the task is gone, rather than
   * leave it to the waiter: the waiter's answer can come after a removal
   * that follows at once, and DELETED must never precede STOPPED.
   */
  #reportStopped(rec: SandboxRecord): void {
    if (!this.#watched.delete(rec.id)) return;
    this.#emit('stopped', rec);
  }

  #resolve(ctx: Ctx, ref: string): SandboxRecord {
    const rec = this.#d.store.resolve(ctx, ref);
    if (this.#creating.has(rec.id)) throw berthError('NotFound', `pod sandbox "${ref}" not found`);
    return rec;
  }

  async stop(ctx: Ctx, ref: string): Promise<void> {
    const rec = this.#resolve(ctx, ref);
    return this.#locked(rec.id, () => this.#stop(ctx, rec));
  }

  async #stop(ctx: Ctx, rec: SandboxRecord): Promise<void> {
    // containerd kills the pause process outright: it holds nothing that needs a graceful end.
    await this.#d.tasks.delete(ctx, rec.id, { force: true }).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
    this.#reportStopped(rec);
    await this.#d.network.teardownContainer(ctx, rec.id);
    if (rec.state !== 'notready') this.#d.store.update(ctx, rec.id, { state: 'notready' });
  }

  async remove(ctx: Ctx, ref: string): Promise<void> {
    const rec = this.#resolve(ctx, ref);
    return this.#locked(rec.id, async () => {
      await this.#stop(ctx, this.#d.store.get(ctx, rec.id));
      await rm(this.#bundleDir(rec), { recursive: true, force: true });
      this.#d.store.delete(ctx, rec.id);
      this.#emit('deleted', rec);
    });
  }

  async status(ctx: Ctx, ref: string): Promise<SandboxInfo> {
    const rec = this.#resolve(ctx, ref);
    const pid = rec.state === 'ready' ? await this.#d.tasks.state(ctx, rec.id).then((t) => (t.status === 'running' ? t.pid : 0), () => 0) : 0;
    return this.#info(ctx, rec, pid);
  }

  async updateResources(ctx: Ctx, ref: string, update: { overhead?: SandboxResources; resources?: SandboxResources }): Promise<SandboxInfo> {
    const rec = this.#resolve(ctx, ref);
    await this.#locked(rec.id, async () => {
      this.#d.store.update(ctx, rec.id, { ...(update.overhead ? { overhead: update.overhead } : {}), ...(update.resources ? { resources: update.resources } : {}) });
    });
    return this.status(ctx, rec.id);
  }

  async list(ctx: Ctx, filter: SandboxFilter = {}): Promise<SandboxInfo[]> {
    const tasks = new Map((await this.#d.tasks.list(ctx).catch(() => [])).map((t) => [t.id, t]));
    const out: SandboxInfo[] = [];
    for (const rec of this.#d.store.list(ctx)) {
      if ((filter.id && !rec.id.startsWith(filter.id)) || this.#creating.has(rec.id)) continue;
      const task = tasks.get(rec.id);
      const info = await this.#info(ctx, rec, rec.state === 'ready' && task?.status === 'running' ? task.pid : 0);
      if (filter.state && info.state !== filter.state) continue;
      if (filter.labels && !Object.entries(filter.labels).every(([k, v]) => info.labels[k] === v)) continue;
      out.push(info);
    }
    return out;
  }

  async recover(ctx: Ctx): Promise<string[]> {
    const live: string[] = [];
    for (const namespace of this.#d.store.namespaces()) {
      const nctx = withCtx(ctx, { namespace });
      const tasks = new Map((await this.#d.tasks.list(nctx).catch(() => [])).map((t) => [t.id, t]));
      for (const rec of this.#d.store.list(nctx)) {
        const task = tasks.get(rec.id);
        if (rec.state === 'ready' && task?.status === 'running') {
          live.push(rec.id);
          this.#watchExit(nctx, rec);
          continue;
        }
        // The pause process died (or a run was cut short): what it held goes, as a stop would take it.
        await this.#stop(nctx, rec).catch((err) => ctx.log.warn('releasing a dead pod sandbox failed', { sandbox: rec.id, err }));
      }
    }
    return live;
  }

  ownsTask(namespace: string, id: string): boolean {
    return this.#d.store.has(namespace, id);
  }

  /** A ready sandbox whose pause process is gone is notready from now on (containerd's exit monitor does the same). */
  async #info(ctx: Ctx, rec: SandboxRecord, pausePid: number): Promise<SandboxInfo> {
    let cur = rec;
    if (rec.state === 'ready' && !pausePid) cur = this.#d.store.update(ctx, rec.id, { state: 'notready' });
    let net: SetupResult | undefined;
    if (cur.state === 'ready' && cur.network) net = await this.#d.network.containerNetwork(ctx, rec.id).catch(() => undefined);
    return { ...cur, pausePid, netnsPath: net?.netnsPath ?? '' };
  }

  #bundleDir(rec: Pick<SandboxRecord, 'namespace' | 'id'>): string {
    return path.join(this.#d.stateDir, rec.namespace, rec.id);
  }

  /**
   * The rootfs every pause process shares: the pause binary and the mount
   * points the spec needs, read-only in each sandbox. The binary is
   * replaced by rename, never rewritten in place, since running pause
   * processes execute it.
   */
  #preparedRootfs(): Promise<string> {
    this.#rootfs ??= (async () => {
      const dir = path.join(this.#d.stateDir, 'rootfs');
      for (const d of ['proc', 'dev', 'sys', 'etc']) await mkdir(path.join(dir, d), { recursive: true, mode: 0o755 });
      for (const f of ['etc/hosts', 'etc/hostname', 'etc/resolv.conf']) await writeFile(path.join(dir, f), '', { flag: 'a' });
      const target = path.join(dir, PAUSE_IN_ROOTFS);
      const [have, want] = await Promise.all([stat(target).catch(() => undefined), stat(this.#d.pausePath)]);
      if (!have || have.size !== want.size || have.mtimeMs < want.mtimeMs) {
        await copyFile(this.#d.pausePath, `${target}.tmp`);
        await rename(`${target}.tmp`, target);
      }
      return dir;
    })().catch((err) => {
      this.#rootfs = undefined;
      throw berthError('FailedPrecondition', `cannot prepare the pod sandbox rootfs (build native/ with make): ${(err as Error).message}`, err);
    });
    return this.#rootfs;
  }

  async #locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(id) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    this.#locks.set(id, next);
    try {
      return await next;
    } finally {
      if (this.#locks.get(id) === next) this.#locks.delete(id);
    }
  }
}

/** Stand-in network state for planning a spec before the network exists: the spec only takes paths and the hostname from it. */
function plannedNetwork(rec: SandboxRecord): SetupResult {
  return { mode: rec.network || 'host', hostname: rec.hostname || rec.id.slice(0, 12), hostsPath: '', resolvConfPath: '', hostnamePath: '', interfaces: [], ports: [] };
}

async function loadSeccompProfile(file: string): Promise<Seccomp> {
  if (!path.isAbsolute(file)) throw berthError('InvalidArgument', `seccomp profile "${file}" must be an absolute path on the node`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw berthError('InvalidArgument', `seccomp profile "${file}" cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
  }
  return parseSeccompProfile(text, file);
}
