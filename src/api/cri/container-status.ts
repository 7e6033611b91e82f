import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { criContainer } from './container-lookup.ts';
import { toCriContainerStatus } from './container-view.ts';
import { lookupImage, toCriImage } from './image-view.ts';
import type { UnaryHandler } from './types.ts';

/**
 * ContainerStatus: state, times in ns, exit code and containerd's reason,
 * the image as its first tag and its first repo digest (the asked name and
 * the ID when it has none), mounts, log path and resources. `verbose` adds
 * containerd's `info` key: JSON of the sandbox id, pid, snapshot, runtime,
 * the CRI-side config and the OCI runtime spec.
 */
export const containerStatus: UnaryHandler<{ container_id?: string; verbose?: boolean }, object> = async (ctx, req, deps) => {
  const c = await criContainer(ctx, deps, req.container_id);
  const rec = c.record;
  const img = await lookupImage(ctx, deps.images, rec.imageId).catch(() => undefined);
  const view = img ? toCriImage(img) : undefined;
  const image = { spec: view?.repo_tags[0] ?? rec.imageName, ref: view?.repo_digests[0] ?? rec.imageId };
  // The spec holds the user the process runs as (kubelet reads it for its supplemental groups policy); none before a first start.
  const bundle = deps.containers.bundleDir(rec);
  const runtimeSpec = await readFile(path.join(bundle, 'config.json'), 'utf8').then((t) => JSON.parse(t) as { process?: { user?: { uid: number; gid: number; additionalGids?: number[] } } }, () => undefined);
  const status = toCriContainerStatus(c, image, deps.containers.logPath(rec), runtimeSpec?.process?.user);
  if (!req.verbose) return { status, info: {} };
  const info = {
    sandboxID: rec.config.pod?.sandboxId,
    pid: c.state.status === 'running' || c.state.status === 'paused' ? (c.state.pid ?? 0) : 0,
    removing: c.state.status === 'removing',
    snapshotKey: rec.snapshotKey,
    snapshotter: rec.snapshotter,
    runtimeType: rec.config.runtime ?? 'runc',
    config: rec.config,
    runtimeSpec,
  };
  return { status, info: { info: JSON.stringify(info) } };
};
