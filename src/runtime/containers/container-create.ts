import type { ContainerConfig, ContainerRecord, MountSpec } from '../../core/containers.ts';
import type { Ctx } from '../../core/context.ts';
import { cleanupCtx } from '../../core/context.ts';
import { berthError, isNotFound, kindOf } from '../../core/errors.ts';
import { namePattern, newId } from '../../core/ids.ts';
import { randomName } from '../../core/names.ts';
import type { ContainerStore } from '../../metadata/containers.ts';
import type { Snapshotter } from '../../snapshots/types.ts';
import type { ImageLookup, RuntimeState } from './types.ts';
import { imageDefaults } from '../oci/image-defaults.ts';
import type { VolumeService } from '../volumes/volumes.ts';
import type { VolumeUsers } from './volume-users.ts';

/**
 * `create`: a container's record and writable snapshot. References to
 * other containers (--network/--pid/--ipc/--uts container:, --volumes-from)
 * are resolved now and recorded by id; the image's defaults and VOLUMEs
 * are applied; named and anonymous volumes are created. The service hands
 * in its lookup and events as functions.
 */
export interface ContainerCreateDeps {
  resolve(ctx: Ctx, idOrName: string): Promise<ContainerRecord>;
  event(ctx: Ctx, action: string, id: string, attributes: Record<string, string>): void;
  volumeUsers: VolumeUsers;
  store: ContainerStore;
  images: ImageLookup;
  snapshotter: Snapshotter;
  volumes: VolumeService;
}

export class ContainerCreator {
  readonly #d: ContainerCreateDeps;

  constructor(deps: ContainerCreateDeps) {
    this.#d = deps;
  }

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
      const other = await this.#d.resolve(ctx, config.network.mode.slice('container:'.length));
      config = { ...config, network: { ...config.network, mode: `container:${other.id}` } };
    }
    for (const key of ['pidMode', 'ipcMode', 'utsMode'] as const) {
      const mode = config[key];
      if (mode?.startsWith('container:')) config = { ...config, [key]: `container:${(await this.#d.resolve(ctx, mode.slice('container:'.length))).id}` };
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
      this.#d.volumeUsers.track(ctx.namespace, id, mounts);
      this.#d.event(ctx, 'create', id, { name, image: config.image });
      return { id, warnings };
    } catch (err) {
      const cctx = cleanupCtx(ctx);
      await this.#d.snapshotter.remove(cctx, snapshotKey).catch(() => {});
      for (const v of anonymous) await this.#d.volumes.remove(cctx, v, { force: true }).catch(() => {});
      throw err;
    }
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
      const other = await this.#d.resolve(ctx, m[1]);
      for (const mount of other.config.mounts ?? []) {
        if (mount.type === 'tmpfs' || taken.has(mount.target)) continue;
        taken.add(mount.target);
        mounts.push({ ...mount, readOnly: m[2] === undefined ? mount.readOnly : m[2] === 'ro' });
      }
    }
    return mounts;
  }
}
