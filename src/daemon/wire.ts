import type { ConfigSection } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import type { Router } from '../api/native/server.ts';
import { EngineRouter } from './engine-router.ts';
import type { Config } from './config.ts';
import { daemonSection } from './config.ts';
import { registerSystemRoutes, type DescribeEngine } from '../api/native/routes-system.ts';
import { registerNetworkRoutes } from '../api/native/routes-networks.ts';
import { registerImageRoutes } from '../api/native/routes-images.ts';
import { registerContainerRoutes } from '../api/native/routes-containers.ts';
import { registerContentRoutes } from '../api/native/routes-content.ts';
import { registerNamespaceRoutes } from '../api/native/routes-namespaces.ts';
import { registerSnapshotRoutes } from '../api/native/routes-snapshots.ts';
import { registerTaskRoutes } from '../api/native/routes-tasks.ts';
import { NamespaceStore } from '../metadata/namespaces.ts';
import { removeUnheld } from '../snapshots/remove-unheld.ts';
import { cleanupCtx, rootCtx } from '../core/context.ts';
import { berthError } from '../core/errors.ts';
import { EventBus } from '../core/events.ts';
import { MetadataDb } from '../metadata/db.ts';
import { NetworkStore } from '../metadata/networks.ts';
import { registrySection } from '../distribution/config.ts';
import { imagesSection } from '../images/config.ts';
import { networkConfig, networkSection } from '../network/config.ts';
import { CniNetworkService } from '../network/service.ts';
import { runtimeSection } from '../runtime/tasks/task-config.ts';
import type { ImageConfig } from '../runtime/oci/oci-types.ts';
import { wireImages } from './images-wiring.ts';
import { wireContainers } from './containers-wiring.ts';
import { hostDescription } from './host-facts.ts';
import { wireHealth } from './health-wiring.ts';
import { wireDocker } from './docker-wiring.ts';
import { dockerSection } from '../api/docker/config.ts';
import { diskUsageReport, type DiskUsageReport } from './disk-usage.ts';
import { criSection } from '../api/cri/config.ts';
import { wireCri } from './cri-wiring.ts';
import { wireSandboxes } from './sandboxes-wiring.ts';
import { wireBuilder } from './build-wiring.ts';
import { buildSection } from '../build/config.ts';
import { registerBuildRoutes } from '../api/native/routes-build.ts';
import type { Ctx } from '../core/context.ts';
import { chmod, mkdir, open } from 'node:fs/promises';
import path from 'node:path';

/**
 * The composition root: every service is constructed here, in one readable
 * place, from typed config sections. Nothing else imports daemon/.
 *
 * Start-up is in two steps, so that the sockets answer early: wireServices
 * constructs the services, registers the native routes and binds the CRI
 * and Docker sockets; `recover()`, which the caller runs once the native
 * socket listens too, brings the engine in step with what an earlier life
 * left (the firewall probe, interrupted unpacks and leases, monitors and
 * their containers and pods, networks, build leftovers), then starts the
 * health checks. Until it has settled, every request that reaches the
 * engine waits for it: the native routes but `/_ping` and `/version`, and
 * the CRI and Docker doors whole. A failed recovery fails those requests
 * (Unavailable) and is the caller's to report.
 */
export interface Services {
  recover(): Promise<void>;
  close(): Promise<void>;
}

export function allSections(): ConfigSection[] {
  return [daemonSection, networkSection, imagesSection, registrySection, runtimeSection, criSection, dockerSection, buildSection];
}

export async function wireServices(opts: { cfg: Config; log: Logger; router: Router; shutdown: AbortSignal }): Promise<Services> {
  const { cfg } = opts;
  const d = cfg.sections.daemon;
  const root = d.root as string;
  const state = d.state as string;
  const engineReady = Promise.withResolvers<void>();
  const ready = engineReady.promise;
  // Rejected only when recovery failed, which the caller reports; its waiters each answer Unavailable.
  ready.catch(() => {});
  const router = new EngineRouter(opts.router, ready);
  // Filled in once the services below exist.
  const describe: { fn?: DescribeEngine; df?: (ctx: Ctx) => Promise<DiskUsageReport> } = {};
  registerSystemRoutes(opts.router, {
    root,
    state,
    describe: async (ctx) => {
      await ready;
      return describe.fn?.(ctx) ?? {};
    },
    diskUsage: async (ctx) => {
      await ready;
      return { ...(await describe.df?.(ctx)) };
    },
  });
  await mkdir(root, { recursive: true });
  // Container configs (their environment included) live here: root's alone. SQLite gives its WAL files the same mode.
  const dbPath = path.join(root, 'metadata.db');
  await (await open(dbPath, 'a', 0o600)).close();
  await chmod(dbPath, 0o600);
  const db = new MetadataDb(dbPath);
  const startCtx = rootCtx({ log: opts.log, signal: opts.shutdown });
  const events = new EventBus();

  const network = new CniNetworkService({
    store: new NetworkStore(db),
    config: networkConfig(cfg.sections.network),
    dataDir: path.join(root, 'network'),
    netnsDir: path.join(state, 'netns'),
  });

  const images = await wireImages({ db, root, state, log: opts.log, images: cfg.sections.images, registry: cfg.sections.registry });
  registerImageRoutes(router, images.images);

  const sandboxes = await wireSandboxes({ db, state, network, runtime: cfg.sections.runtime, cri: cfg.sections.cri });
  const containers = await wireContainers({
    db,
    root,
    state,
    log: opts.log,
    events,
    images: images.images,
    snapshotter: images.snapshotter,
    network,
    runtime: cfg.sections.runtime,
    startCtx,
    sandboxes,
  });
  // port names containers as every other container route does; connect and
  // disconnect are recorded by the container service.
  registerNetworkRoutes(router, network, {
    async resolveContainer(req, ref) {
      const c = await containers.containers.get(req.ctx, ref);
      if (c.state.status !== 'running' && c.state.status !== 'paused') throw berthError('Conflict', `container ${c.record.name} is not running`);
      return c.record.id;
    },
    containers: {
      connect: (req, ref, r) => containers.containers.connectNetwork(req.ctx, ref, r),
      disconnect: (req, ref, r) => containers.containers.disconnectNetwork(req.ctx, ref, r),
    },
  });
  const imageConfig = async (ctx: Ctx, imageId: string) => {
    const img = await images.images.find(ctx, imageId).catch(() => undefined);
    return (img?.config as { config?: ImageConfig } | undefined)?.config;
  };
  // Started once recovery is done, which it needs: it watches the containers found running.
  let health: ReturnType<typeof wireHealth> | undefined;
  registerContainerRoutes(router, {
    containers: containers.containers,
    volumes: containers.volumes,
    events,
    health: (id) => health?.health(id),
    imageConfig,
  });

  // ctr's low-level views of the same engine.
  registerNamespaceRoutes(router, new NamespaceStore(db));
  registerContentRoutes(router, images.content);
  const sn = images.snapshotter;
  registerSnapshotRoutes(router, {
    name: sn.name,
    walk: (ctx, fn) => sn.walk(ctx, fn),
    stat: (ctx, key) => sn.stat(ctx, key),
    usage: (ctx, key) => sn.usage(ctx, key),
    mounts: (ctx, key) => sn.mounts(ctx, key),
    remove: (ctx, key) => removeUnheld(ctx, sn, key),
  });
  registerTaskRoutes(router, { containers: containers.containers, sandboxes, leases: images.leases });
  const { builder, recover: recoverBuilds } = wireBuilder({ db, root, images: images.images, containers: containers.containers, build: cfg.sections.build, log: opts.log });
  registerBuildRoutes(router, builder);

  describe.df = (ctx) => diskUsageReport(ctx, { images: images.images, containers: containers.containers, volumes: containers.volumes, snapshotter: images.snapshotter, buildCache: (ctx) => builder.cacheUsage(ctx) });
  const rt = cfg.sections.runtime;
  describe.fn = async (ctx) => {
    const all = await containers.containers.list(ctx);
    const count = (...st: string[]) => all.filter((c) => st.includes(c.state.status)).length;
    return {
      containers: all.length,
      containersRunning: count('running', 'restarting'),
      containersPaused: count('paused'),
      containersStopped: count('created', 'exited', 'dead', 'removing'),
      images: (await images.images.list(ctx)).length,
      storageDriver: images.snapshotter.name,
      loggingDriver: 'json-file',
      cgroupDriver: 'cgroupfs',
      cgroupParent: rt.cgroup_parent,
      runtimes: (rt.runtimes as string[]).map((r) => r.split('=')[0]),
      defaultRuntime: rt.default_runtime,
      ...(await hostDescription()),
    };
  };

  // The two doors' sockets are bound side by side: each bind is a few file-system round trips (socket-bind.ts).
  const [criDoor, dockerDoor] = await Promise.allSettled([
    wireCri({
      cri: cfg.sections.cri,
      daemon: d,
      network: cfg.sections.network,
      runtime: rt,
      images: images.images,
      sandboxes,
      containers: containers.containers,
      events,
      snapshotRoot: images.snapshotRoot,
      log: opts.log,
      shutdown: opts.shutdown,
      ready,
    }),
    wireDocker(cfg, ready, {
      log: opts.log,
      shutdown: opts.shutdown,
      images: images.images,
      containers: containers.containers,
      volumes: containers.volumes,
      network,
      events,
      imageConfig,
      health: (id) => health?.health(id),
      describe: (ctx) => describe.fn!(ctx),
      builder,
      diskUsage: (ctx) => describe.df!(ctx),
    }),
  ]);
  if (criDoor.status === 'rejected' || dockerDoor.status === 'rejected') {
    if (criDoor.status === 'fulfilled') await criDoor.value?.close();
    if (dockerDoor.status === 'fulfilled') await dockerDoor.value.close();
    throw criDoor.status === 'rejected' ? criDoor.reason : (dockerDoor as PromiseRejectedResult).reason;
  }
  const cri = criDoor.value;
  const docker = dockerDoor.value;

  return {
    async recover() {
      try {
        // The firewall plugin's choice follows the host's FORWARD policy (an iptables run): before any CNI call.
        await network.init(startCtx);
        await images.recover();
        // Recovery of running containers (and pod sandboxes) also reconciles the network with them.
        await containers.recover();
        await recoverBuilds();
        health = wireHealth({ containers: containers.containers, images: images.images, events, db, startCtx });
        engineReady.resolve();
      } catch (err) {
        engineReady.reject(berthError('Unavailable', `berthd could not recover its state: ${err instanceof Error ? err.message : String(err)}`, err));
        throw err;
      }
    },
    async close() {
      await cri?.close();
      await docker.close();
      health?.close();
      containers.close();
      // What a teardown left in iptables goes now, not at the next start (which may never come).
      await network.sweepRules(cleanupCtx(startCtx)).catch((err) => opts.log.warn('removing stale iptables rules at stop failed', { err }));
      await images.close();
      db.close();
    },
  };
}
