import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { ContainerConfig, ContainerRecord } from '../../core/containers.ts';
import type { Ctx } from '../../core/context.ts';
import { cleanupCtx } from '../../core/context.ts';
import { berthError } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { tarStream, type TarItem } from '../../core/tar-write.ts';
import { packRootfs } from './archive.ts';
import { dropHiddenTargets, layerChanges, layerTarItems, type Change } from './changes.ts';
import { commandLine } from './container-views.ts';
import type { ImageConfig } from '../oci/oci-types.ts';
import type { ResolvedMount } from '../oci/spec-mounts.ts';
import { INIT_PATH_IN_CONTAINER, mergeEnv } from '../oci/spec.ts';
import type { ContainerBasics, ContainerServiceDeps, HistoryEntry } from './types.ts';

/**
 * What the container service does with a container's file system: `cp`'s
 * access to its rootfs, `export`, `diff`, `commit` and `ps -s` sizes. The
 * service hands in what it owns (records, state, events) as functions
 * (`ContainerBasics`).
 */
export interface ContainerFilesDeps extends Pick<ContainerBasics, 'resolve' | 'state' | 'bundleDir' | 'event'>, Pick<ContainerServiceDeps, 'images' | 'snapshotter' | 'tasks' | 'mounter' | 'log'> {
  resolveMounts(ctx: Ctx, rec: ContainerRecord): Promise<ResolvedMount[]>;
}

export interface CommitOptions {
  name?: string;
  author?: string;
  comment?: string;
  changes?: string[];
  pause?: boolean;
  /** The new image's runnable config, instead of the container's over its image's (a build step's). */
  config?: ImageConfig;
  /** What the history entry says made the layer, instead of the container's command line. */
  createdBy?: string;
  /** The history the new entry follows, instead of the image's. */
  history?: HistoryEntry[];
  /** The new image's time (RFC 3339), instead of now. */
  created?: string;
  /** Seconds since the epoch: later modification times in the layer are set to this (SOURCE_DATE_EPOCH). */
  clampMtime?: number;
  /** How the layer blob is compressed (default gzip). */
  compression?: 'gzip' | 'zstd';
  /** Its compression level (default: the compressor's own, gzip 6, zstd 3). */
  compressionLevel?: number;
  /**
   * The container's writable layer becomes the new layer's snapshot, so its
   * files are not written a second time: for a container that does not run
   * and is removed right after (a build step's). Not done for a running
   * container, nor with clampMtime (the snapshot would keep the later times).
   */
  consumeLayer?: boolean;
}

export class ContainerFiles {
  readonly #d: ContainerFilesDeps;
  readonly #copyFreezes = new Map<string, { count: number; frozen: Promise<void> }>();
  /** Resumes still under way: a copy that comes right after another freezes only once the thaw is done. */
  readonly #thaws = new Map<string, Promise<void>>();

  constructor(deps: ContainerFilesDeps) {
    this.#d = deps;
  }

  /**
   * docker commit: the container's changes become a layer on its image, and
   * its configuration the new image's (over the image's own). A running
   * container is paused while its layer is read, unless `pause` is false.
   */
  async commit(ctx: Ctx, idOrName: string, opts: CommitOptions = {}): Promise<string> {
    if (!this.#d.images.commitLayer) throw berthError('FailedPrecondition', 'commit is not available in this daemon');
    const rec = await this.#d.resolve(ctx, idOrName);
    // A copy's thaw may still be under way (its client has read the archive already): runc refuses to pause a paused container.
    await this.#thaws.get(rec.id);
    const st = await this.#d.state(ctx, rec.id);
    const pause = opts.pause !== false && st.status === 'running';
    if (pause) await this.#d.tasks.pause(ctx, rec.id);
    try {
      const image = await this.#d.images.find(ctx, rec.imageId);
      const mounts = await this.#d.snapshotter.mounts(ctx, rec.snapshotKey);
      const hidden = runtimeMountTargets(rec);
      const hasLayers = image.config.rootfs.diff_ids.length > 0;
      const consume = opts.consumeLayer === true && st.status !== 'running' && st.status !== 'paused' && opts.clampMtime === undefined;
      if (consume) await dropHiddenTargets(ctx, mounts, hidden, hasLayers);
      // Read before the commit starts, so a snapshotter that cannot diff fails before anything is stored.
      const items = layerTarItems(ctx, mounts, hidden, hasLayers);
      const first = await items.next();
      const clamp = opts.clampMtime;
      // A reproducible build pins every time in the layer to at most its epoch.
      const pinned = (it: TarItem): TarItem => (clamp === undefined || (it.entry.mtime ?? 0) <= clamp ? it : { ...it, entry: { ...it.entry, mtime: clamp } });
      const layer = tarStream((async function* () {
        if (!first.done) yield pinned(first.value);
        for await (const it of items) yield pinned(it);
      })());
      const id = await this.#d.images.commitLayer(ctx, {
        parent: rec.imageId,
        layer,
        config: opts.config ?? committedConfig(image.config.config ?? {}, rec.config),
        name: opts.name,
        author: opts.author,
        comment: opts.comment,
        createdBy: opts.createdBy ?? commandLine(rec, image.config.config).join(' '),
        changes: opts.changes,
        ...(opts.history ? { history: opts.history } : {}),
        ...(opts.created ? { created: opts.created } : {}),
        ...(opts.compression ? { compression: opts.compression } : {}),
        ...(opts.compressionLevel ? { compressionLevel: opts.compressionLevel } : {}),
        ...(consume ? { snapshotKey: rec.snapshotKey } : {}),
      });
      this.#d.event(ctx, 'commit', rec.id, { ...rec.labels, name: rec.name, imageID: id });
      return id;
    } finally {
      if (pause) await this.#d.tasks.resume(cleanupCtx(ctx), rec.id).catch((err) => this.#d.log.warn('resume after commit failed', { container: rec.id, err }));
    }
  }

  /** `ps -s`: bytes in the container's writable layer, and with the image's beneath it. */
  async sizes(ctx: Ctx, rec: ContainerRecord): Promise<{ SizeRw: number; SizeRootFs: number }> {
    const rw = await this.#d.snapshotter.usage(ctx, rec.snapshotKey).then((u) => u.size, () => 0);
    const image = await this.#d.images.find(ctx, rec.imageId).catch(() => undefined);
    return { SizeRw: rw, SizeRootFs: rw + (image?.size ?? 0) };
  }

  /** docker diff: the changes in the container's writable layer. */
  async changes(ctx: Ctx, idOrName: string): Promise<Change[]> {
    const rec = await this.#d.resolve(ctx, idOrName);
    const mounts = await this.#d.snapshotter.mounts(ctx, rec.snapshotKey);
    const image = await this.#d.images.find(ctx, rec.imageId).catch(() => undefined);
    return layerChanges(ctx, mounts, runtimeMountTargets(rec), (image?.config.rootfs.diff_ids.length ?? 1) > 0);
  }

  /** docker export: the container's root file system as a tar (volumes and bind mounts left out). */
  async exportRootfs(ctx: Ctx, idOrName: string): Promise<{ tar: Readable; release: () => Promise<void> }> {
    const { rootfs, release } = await this.rootfsOf(ctx, idOrName);
    try {
      return { tar: await packRootfs(rootfs), release };
    } catch (err) {
      await release();
      throw err;
    }
  }

  /** The rootfs of a container for `cp` and `export`: frozen while running, mounted while stopped, until `release`. */
  async rootfsOf(ctx: Ctx, idOrName: string): Promise<{ record: ContainerRecord; rootfs: string; mounts: ResolvedMount[]; release: () => Promise<void> }> {
    const rec = await this.#d.resolve(ctx, idOrName);
    const st = await this.#d.state(ctx, rec.id);
    const rootfs = path.join(this.#d.bundleDir(rec), 'rootfs');
    const mounts = await this.#d.resolveMounts(ctx, rec).catch(() => []);
    if (st.status === 'paused') return { record: rec, rootfs, mounts, release: async () => {} };
    if (st.status === 'running') {
      // As moby since CVE-2018-15664: the container is frozen while the copy
      // resolves and walks its paths, so no process inside can swap a checked
      // directory for a symlink to the host between the check and the use.
      let freeze = this.#copyFreezes.get(rec.id);
      if (!freeze) {
        // The client of the last copy may ask again (docker cp -L: a stat, then the archive) before its thaw is done.
        const thawed = this.#thaws.get(rec.id) ?? Promise.resolve();
        freeze = { count: 0, frozen: thawed.then(() => this.#d.tasks.pause(ctx, rec.id)) };
        this.#copyFreezes.set(rec.id, freeze);
      }
      freeze.count++;
      const release = async () => {
        if (--freeze.count > 0) return;
        this.#copyFreezes.delete(rec.id);
        const thaw = this.#d.tasks.resume(cleanupCtx(ctx), rec.id).catch((err) => this.#d.log.warn('resume after copy failed', { container: rec.id, err }));
        this.#thaws.set(rec.id, thaw);
        await thaw;
        if (this.#thaws.get(rec.id) === thaw) this.#thaws.delete(rec.id);
      };
      try {
        await freeze.frozen;
      } catch (err) {
        await release();
        throw err;
      }
      return { record: rec, rootfs, mounts, release };
    }
    // A stopped container's rootfs is mounted for the copy and unmounted after.
    const tmp = path.join(this.#d.bundleDir(rec), `cp-${newId().slice(0, 8)}`);
    await mkdir(tmp, { recursive: true });
    await this.#d.mounter.mountAll(await this.#d.snapshotter.mounts(ctx, rec.snapshotKey), tmp);
    return {
      record: rec,
      rootfs: tmp,
      mounts,
      release: async () => {
        await this.#d.mounter.unmountAll(tmp).catch(() => {});
        await rm(tmp, { recursive: true, force: true });
      },
    };
  }
}

/** Mount targets the runtime makes when the image lacks them; user mounts' targets stay, as docker shows them. */
function runtimeMountTargets(rec: ContainerRecord): Set<string> {
  return new Set(['/etc', '/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/etc/mtab', '/proc', '/sys', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/dev/console', ...(rec.config.init ? ['/sbin', INIT_PATH_IN_CONTAINER] : [])]);
}

/** The config a commit records: docker's, the container's settings over its image's. */
function committedConfig(image: ImageConfig, cfg: ContainerConfig): ImageConfig {
  const out: ImageConfig = { ...image };
  if (cfg.cmd !== undefined) out.Cmd = cfg.cmd;
  if (cfg.entrypoint !== undefined) out.Entrypoint = cfg.entrypoint;
  if (cfg.env?.length) out.Env = mergeEnv(image.Env ?? [], cfg.env);
  if (cfg.workingDir) out.WorkingDir = cfg.workingDir;
  if (cfg.user !== undefined) out.User = cfg.user;
  if (cfg.labels && Object.keys(cfg.labels).length) out.Labels = { ...image.Labels, ...cfg.labels };
  if (cfg.exposedPorts?.length) out.ExposedPorts = { ...image.ExposedPorts, ...Object.fromEntries(cfg.exposedPorts.map((p) => [p, {}])) };
  if (cfg.stopSignal) out.StopSignal = cfg.stopSignal;
  return out;
}
