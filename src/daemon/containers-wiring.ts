import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Ctx } from '../core/context.ts';
import { kernelRunsX32 } from '../core/sys.ts';
import { chainId } from '../core/chain-id.ts';
import type { Digest } from '../core/digest.ts';
import type { EventBus } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { MetadataDb } from '../metadata/db.ts';
import { MetadataContainerStore } from '../metadata/containers.ts';
import { listNamespaces } from '../metadata/namespaces.ts';
import type { NetworkService } from '../network/types.ts';
import { mountAll, unmountAll } from '../snapshots/mount.ts';
import type { Snapshotter } from '../snapshots/types.ts';
import type { ImageService } from '../images/service.ts';
import { runtimeConfig } from '../runtime/tasks/task-config.ts';
import { ContainerService, type ImageLookup } from '../runtime/containers/containers.ts';
import type { ImageConfig } from '../runtime/oci/oci-types.ts';
import { MonitorTaskService } from '../runtime/tasks/tasks.ts';
import type { SandboxService } from '../runtime/sandboxes/sandbox-types.ts';
import { VolumeService } from '../runtime/volumes/volumes.ts';
import type { SectionValues } from '../core/config.ts';
import { capabilityMask, hardRlimits, hugetlbController, ownOomScoreAdj } from './host-facts.ts';
import { capabilitiesFromMask } from '../runtime/oci/caps.ts';

/**
 * Builds the container service on the image side (image lookup, the
 * snapshotter), the network service and the task layer. `recover()` brings
 * it back in step with the monitors that survived a daemon restart (and the
 * network with it): until it has run, no request may reach the service.
 */
export async function wireContainers(opts: {
  db: MetadataDb;
  root: string;
  state: string;
  log: Logger;
  events: EventBus;
  images: ImageService;
  snapshotter: Snapshotter;
  network: NetworkService;
  runtime?: SectionValues;
  startCtx: Ctx;
  /** Pod sandboxes: their pause tasks are not containers', and the ready ones keep their networks. */
  sandboxes?: Pick<SandboxService, 'recover' | 'ownsTask'>;
}): Promise<{ containers: ContainerService; volumes: VolumeService; tasks: MonitorTaskService; recover(): Promise<void>; close(): void }> {
  const settings = runtimeConfig(opts.runtime ?? {});
  const stateDir = path.join(opts.state, 'containers');
  const rootDir = path.join(opts.root, 'containers');
  await mkdir(stateDir, { recursive: true, mode: 0o711 });
  await mkdir(rootDir, { recursive: true, mode: 0o700 });
  const tasks = new MonitorTaskService({ stateDir: opts.state, runtimes: settings.runtimes, defaultRuntime: settings.defaultRuntime, monitorPath: settings.monitorPath });
  const volumes = new VolumeService(opts.db, path.join(opts.root, 'volumes'));
  const lookup: ImageLookup = {
    async find(ctx, ref) {
      const img = await opts.images.find(ctx, ref);
      const config = img.config as unknown as { config?: ImageConfig; rootfs: { diff_ids: string[] } };
      return { id: img.id, name: ref, config, chainId: chainId(config.rootfs.diff_ids as Digest[]), size: img.size };
    },
    commitLayer: (ctx, o) => opts.images.commitLayer(ctx, o),
  };
  const containers = new ContainerService({
    store: new MetadataContainerStore(opts.db),
    images: lookup,
    snapshotter: opts.snapshotter,
    mounter: {
      mountAll: (mounts, target) => mountAll(opts.startCtx, mounts, target),
      unmountAll: (target) => unmountAll(opts.startCtx, target),
    },
    tasks,
    network: opts.network,
    volumes,
    events: opts.events,
    log: opts.log.child({ component: 'containers' }),
    stateDir,
    rootDir,
    host: { rlimitHard: await hardRlimits(), initPath: settings.initPath, capabilities: capabilitiesFromMask(await capabilityMask()), oomScoreAdj: await ownOomScoreAdj(), hugetlb: await hugetlbController(), x32: kernelRunsX32() },
    defaultRuntime: settings.defaultRuntime,
    cgroupParent: settings.cgroupParent,
    logDefaults: { maxSize: settings.logMaxSize || undefined, maxFiles: settings.logMaxFiles },
    ownsTask: opts.sandboxes ? (ns, id) => opts.sandboxes!.ownsTask(ns, id) : undefined,
  });
  const recover = async () => {
    const namespaces = [...new Set(['default', ...(await listNamespaces(opts.startCtx, opts.db))])];
    // What a crash left half made goes before sandboxes and containers read their tasks.
    await tasks.sweep(opts.startCtx);
    const liveSandboxes = (await opts.sandboxes?.recover(opts.startCtx)) ?? [];
    await containers.recover(opts.startCtx, namespaces);
    await opts.network.reconcile(opts.startCtx, [...(await containers.liveIds(opts.startCtx, namespaces)), ...liveSandboxes]);
  };
  return { containers, volumes, tasks, recover, close: () => containers.close() };
}
