import { mkdirSync, writeFileSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ContainerConfig, ContainerRecord, PodMembership } from '../../core/containers.ts';
import type { Ctx } from '../../core/context.ts';
import { cleanupCtx } from '../../core/context.ts';
import { berthError, hasErrno, kindOf, wrap } from '../../core/errors.ts';
import { readUserFile } from '../../core/user-file.ts';
import type { PendingSetup } from '../../network/types.ts';
import type { Mount as SnapshotMount } from '../../snapshots/types.ts';
import type { ContainerExits } from './container-exits.ts';
import type { ContainerBasics, ContainerServiceDeps, RuntimeState } from './types.ts';
import { hostDevices, resolveDevice } from '../oci/host-devices.ts';
import type { ImageConfig, Seccomp } from '../oci/oci-types.ts';
import { parseSeccompProfile } from '../oci/seccomp-profile.ts';
import { resolveUserInRootfs } from '../oci/rootfs-files.ts';
import type { ResolvedMount } from '../oci/spec-mounts.ts';
import { buildSpec } from '../oci/spec.ts';
import type { TaskStdio } from '../tasks/task-types.ts';

/**
 * The start path of the container service: prepare (mount the rootfs,
 * resolve the user, set up the network, write the spec, create the task)
 * then start the task and follow it. `prepare` alone is what `attach` does
 * for a created container. A failed start is rolled back and records
 * docker's exit code. The service hands in its state and events as
 * functions, and the exit handling it starts and cancels.
 */
export interface ContainerStartDeps
  extends Pick<ContainerBasics, 'get' | 'state' | 'patch' | 'event' | 'bundleDir' | 'logPath'>,
    Pick<ContainerServiceDeps, 'images' | 'snapshotter' | 'mounter' | 'tasks' | 'network' | 'volumes' | 'host' | 'defaultRuntime' | 'cgroupParent' | 'logDefaults'> {
  exits: Pick<ContainerExits, 'cancelRestart' | 'watch' | 'release'>;
}

export class ContainerStarter {
  readonly #d: ContainerStartDeps;

  constructor(deps: ContainerStartDeps) {
    this.#d = deps;
  }

  /** Start a created or exited container; the caller holds its lock. `restart` counts a policy restart. */
  async start(ctx: Ctx, rec: ContainerRecord, opts: { manual: boolean; restart?: boolean }): Promise<void> {
    let st = await this.#d.state(ctx, rec.id);
    if (st.status === 'running') throw berthError('NotModified', `container ${rec.id} is already running`);
    if (st.status === 'paused') throw berthError('Conflict', `cannot start a paused container, try unpause instead`);
    if (st.status === 'removing') throw berthError('Conflict', `container ${rec.id} is marked for removal and cannot be started`);
    this.#d.exits.cancelRestart(rec.id);
    if (!st.taskCreated) {
      await this.prepare(ctx, rec);
      st = await this.#d.state(ctx, rec.id);
    }
    // Taken before the process runs, so every line it logs comes after it: clients wait for output
    // with `logs --since StartedAt` after a restart (testcontainers does).
    const startedAt = new Date().toISOString();
    try {
      await this.#d.tasks.start(ctx, rec.id);
    } catch (err) {
      await this.#failStart(ctx, rec, st, err);
    }
    // A user's start resets the restart count and back-off, as docker does.
    await this.#d.patch(ctx, rec.id, (cur) => ({
      status: 'running',
      taskCreated: false,
      exitCode: 0,
      error: undefined,
      // Each start clears the last run's OOM verdict, as docker's does.
      oomKilled: false,
      startedAt,
      manuallyStopped: opts.manual ? false : cur.manuallyStopped,
      restartCount: opts.restart ? (cur.restartCount ?? 0) + 1 : opts.manual ? 0 : cur.restartCount,
      restartDelayMs: opts.manual ? 0 : cur.restartDelayMs,
    }));
    this.#d.event(ctx, 'start', rec.id, { ...rec.labels, name: rec.name, image: rec.imageName });
    this.#d.exits.watch(ctx, rec);
  }

  /**
   * Everything of a start but running the process: rootfs mounted, network
   * set up, spec written, the monitor holding a created task. `attach` does
   * this for a created container so no output is missed, as docker's
   * attach-then-start does.
   */
  async prepare(ctx: Ctx, rec: ContainerRecord): Promise<void> {
    const st = await this.#d.state(ctx, rec.id);
    const cfg = rec.config;
    const bundle = this.#d.bundleDir(rec);
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
        return resolveUserInRootfs(ctx, rootfs, cfg.user ?? imageConfig.User, cfg.groupAdd, { memberGroupsAlways: !!cfg.pod });
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

      const mounts = await this.resolveMounts(ctx, rec);
      const seccompProfile = cfg.seccompProfile && cfg.seccompProfile !== 'unconfined' && !cfg.privileged ? await loadSeccompProfile(cfg.seccompProfile) : undefined;
      const logPath = this.#d.logPath(rec);
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
          cgroupsPath: cfg.cgroupParent ? path.posix.join(cfg.cgroupParent, rec.id) : path.posix.join(this.#d.cgroupParent, rec.namespace === 'default' ? '' : rec.namespace, rec.id),
          ...(seccompProfile ? { seccompProfile } : {}),
          ...(rootfsPropagationFor(mounts) ? { rootfsPropagation: rootfsPropagationFor(mounts) } : {}),
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
      await this.#d.patch(ctx, rec.id, { taskCreated: true, pid: created.value.pid, network: ready.value });
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
    if (st.taskCreated) await this.#d.exits.release(cctx, rec);
    const exitCode = exitCodeOfStartError(err);
    await this.#d.patch(cctx, rec.id, { taskCreated: false, network: undefined, status: st.status === 'created' ? 'created' : 'exited', exitCode, error: (err as Error).message }).catch(() => {});
    throw Object.assign(wrap(err, `failed to start container ${rec.name}`), { exitCode });
  }

  /**
   * --pid/--ipc/--uts: the host's namespaces to share, and the paths of
   * other containers' to join. A joined container must be running; its
   * namespaces are looked up at every start, as its pid changes.
   */
  async #namespaceJoins(ctx: Ctx, cfg: ContainerConfig): Promise<{ paths: Partial<Record<'pid' | 'ipc' | 'uts', string>>; host: Array<'pid' | 'ipc' | 'uts'> }> {
    const out: { paths: Partial<Record<'pid' | 'ipc' | 'uts', string>>; host: Array<'pid' | 'ipc' | 'uts'> } = { paths: {}, host: [] };
    if (cfg.pod) return podJoins(cfg.pod);
    for (const [type, mode] of [['pid', cfg.pidMode], ['ipc', cfg.ipcMode], ['uts', cfg.utsMode]] as const) {
      if (mode === 'host') out.host.push(type);
      else if (mode?.startsWith('container:')) {
        const other = await this.#d.get(ctx, mode.slice('container:'.length));
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
    if (cfg.pod) {
      // The sandbox's endpoint: its netns (or the node's network) and its hosts, resolv.conf and hostname files.
      return this.#d.network.beginSetup(ctx, { containerId: rec.id, namespace: rec.namespace, name: rec.name, attachment: { mode: `container:${cfg.pod.sandboxId}` } });
    }
    if (attachment.mode.startsWith('container:')) {
      const other = await this.#d.get(ctx, attachment.mode.slice('container:'.length));
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

  async resolveMounts(ctx: Ctx, rec: ContainerRecord): Promise<ResolvedMount[]> {
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
}

/**
 * A pod's container joins the pause process's namespaces by path, as
 * containerd's CRI does: uts always (the node's with the node's network),
 * ipc unless the node's, pid per its mode (its own, the pod's, the node's
 * or a target container's).
 */
function podJoins(pod: PodMembership): { paths: Partial<Record<'pid' | 'ipc' | 'uts', string>>; host: Array<'pid' | 'ipc' | 'uts'> } {
  const out: { paths: Partial<Record<'pid' | 'ipc' | 'uts', string>>; host: Array<'pid' | 'ipc' | 'uts'> } = { paths: {}, host: [] };
  const ns = (pid: number, type: string) => `/proc/${pid}/ns/${type}`;
  if (pod.hostNetwork) out.host.push('uts');
  else out.paths.uts = ns(pod.pausePid, 'uts');
  if (pod.ipc === 'node') out.host.push('ipc');
  else out.paths.ipc = ns(pod.pausePid, 'ipc');
  if (pod.pid === 'node') out.host.push('pid');
  else if (pod.pid === 'pod') out.paths.pid = ns(pod.pausePid, 'pid');
  else if (pod.pid === 'target') {
    if (!pod.targetPid) throw berthError('FailedPrecondition', 'the target container of the pid namespace is not running');
    out.paths.pid = ns(pod.targetPid, 'pid');
  }
  return out;
}

/**
 * A bind whose propagation reaches back to the host needs the root's
 * propagation to allow it (runc makes the root rprivate otherwise): rshared
 * for a bidirectional bind, rslave for a host-to-container one.
 */
function rootfsPropagationFor(mounts: readonly ResolvedMount[]): string | undefined {
  const opts = mounts.flatMap((m) => m.options ?? []);
  if (opts.includes('rshared') || opts.includes('shared')) return 'rshared';
  if (opts.includes('rslave') || opts.includes('slave')) return 'rslave';
  return undefined;
}

/**
 * A seccomp profile (docker's format, which is the OCI one with an optional
 * archMap): its JSON content, as the docker and berth CLIs send it, or the
 * path of a file on the node (a CRI Localhost profile), read bounded and
 * without blocking: a FIFO or /dev/zero there must not stall berthd.
 */
async function loadSeccompProfile(profile: string): Promise<Seccomp> {
  if (profile.trimStart().startsWith('{')) return parseSeccompProfile(profile, 'the container\'s seccomp profile');
  let text: string;
  try {
    text = await readUserFile(profile);
  } catch (err) {
    throw berthError('InvalidArgument', `seccomp profile "${profile}": ${(err as Error).message}`, err);
  }
  return parseSeccompProfile(text, profile);
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

/** Overlay mounts with overlayfs's `volatile` option added, and their workdir; undefined when there is no overlay. */
function withVolatile(mounts: SnapshotMount[]): { mounts: SnapshotMount[]; workdir: string } | undefined {
  if (mounts.length !== 1 || mounts[0].type !== 'overlay') return undefined;
  const workdir = mounts[0].options.find((o) => o.startsWith('workdir='))?.slice('workdir='.length);
  if (!workdir) return undefined;
  return { mounts: [{ ...mounts[0], options: [...mounts[0].options, 'volatile'] }], workdir };
}
