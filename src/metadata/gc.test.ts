import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { chainIds } from '../core/chain-id.ts';
import type { Ctx } from '../core/context.ts';
import { rootCtx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { digestOf } from '../core/digest.ts';
import { berthError } from '../core/errors.ts';
import type { Descriptor } from '../core/media-types.ts';
import { MediaTypes } from '../core/media-types.ts';
import { LocalContentStore } from '../content/local-store.ts';
import { MetadataContainerStore } from './containers.ts';
import type { GcSnapshotInfo, GcSnapshotter } from './gc.ts';
import { GarbageCollector } from './gc.ts';
import { MetadataImageStore } from './images.ts';
import { LeasedContentStore } from './leased-content.ts';
import { MetadataLeaseManager, withLease } from './leases.ts';
import { tempDb } from './test-helpers.ts';

/**
 * A minimal in-memory snapshotter with the parts of the Snapshotter contract
 * GC relies on (walk, usage, remove refusing a snapshot with children). The
 * real overlayfs snapshotter is covered by its own suite in snapshots/.
 */
class MemorySnapshotter implements GcSnapshotter {
  readonly name: string;
  readonly snaps = new Map<string, GcSnapshotInfo & { size: number }>();
  constructor(name: string) {
    this.name = name;
  }
  add(name: string, kind: GcSnapshotInfo['kind'], parent?: string, at = new Date(Date.now() - 1000)): void {
    if (parent !== undefined && !this.snaps.has(parent)) throw new Error(`parent ${parent} missing`);
    this.snaps.set(name, { name, kind, parent, createdAt: at, updatedAt: at, size: 100 });
  }
  async walk(_ctx: Ctx, fn: (info: GcSnapshotInfo) => void | Promise<void>): Promise<void> {
    for (const s of [...this.snaps.values()]) await fn({ ...s });
  }
  async usage(_ctx: Ctx, key: string): Promise<{ size: number }> {
    const s = this.snaps.get(key);
    if (!s) throw berthError('NotFound', `snapshot "${key}": not found`);
    return { size: s.size };
  }
  async remove(_ctx: Ctx, key: string): Promise<void> {
    if (!this.snaps.has(key)) throw berthError('NotFound', `snapshot "${key}": not found`);
    if ([...this.snaps.values()].some((s) => s.parent === key)) throw berthError('Conflict', `snapshot "${key}": has children`);
    this.snaps.delete(key);
  }
}

async function setup() {
  const t = await tempDb();
  const ctx = rootCtx();
  const content = await LocalContentStore.open(ctx, path.join(t.dir, 'content'));
  const images = new MetadataImageStore(t.db);
  const containers = new MetadataContainerStore(t.db);
  const leases = new MetadataLeaseManager(t.db);
  const overlay = new MemorySnapshotter('overlayfs');
  // GC runs "a second later" than the writes, so what the test wrote counts as existing before the mark.
  const later = () => new Date(Date.now() + 1000);
  const gc = (graceMs = 3_600_000) => new GarbageCollector({ images, containers, leases, content, snapshotters: [overlay], graceMs, now: later });
  const put = async (c: Ctx, data: Buffer | string, mediaType: string): Promise<Descriptor> => {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    const digest = digestOf(buf);
    await leases.attach(c, { kind: 'content', id: digest });
    const w = await content.writer(c, { ref: `put-${digest}` });
    await w.write(buf);
    await w.commit(c).catch((err: { kind?: string }) => {
      if (err.kind !== 'AlreadyExists') throw err;
    });
    return { mediaType, digest, size: buf.length };
  };
  /** An image as a pull leaves it: blobs, an index with one local platform, committed snapshots named by chain ID. */
  const makeImage = async (c: Ctx, layerData: Buffer[]) => {
    const layers: Descriptor[] = [];
    for (const l of layerData) layers.push(await put(c, l, MediaTypes.ociLayerGzip));
    const diffIds = layerData.map((l) => digestOf(Buffer.concat([Buffer.from('uncompressed:'), l])));
    const config = await put(c, JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } }), MediaTypes.ociConfig);
    const manifest = await put(c, JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config, layers }), MediaTypes.ociManifest);
    const absent: Descriptor = { mediaType: MediaTypes.ociManifest, digest: digestOf(`absent-${randomBytes(4).toString('hex')}`), size: 10, platform: { architecture: 'arm64', os: 'linux' } };
    const index = await put(
      c,
      JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [{ ...manifest, platform: { architecture: 'amd64', os: 'linux' } }, absent] }),
      MediaTypes.ociIndex,
    );
    const chain = chainIds(diffIds);
    chain.forEach((id, i) => {
      if (!overlay.snaps.has(id)) overlay.add(id, 'committed', i === 0 ? undefined : chain[i - 1]);
    });
    return { index, manifest, config, layers, chain, blobs: [index, manifest, config, ...layers].map((d) => d.digest as Digest) };
  };
  const has = async (d: string) => content.info(ctx, d as Digest).then(() => true, () => false);
  return { t, ctx, content, images, containers, leases, overlay, gc, put, makeImage, has };
}

test('gc: an image keeps its blobs and snapshots; removing the image frees them', async () => {
  const s = await setup();
  try {
    const img = await s.makeImage(s.ctx, [randomBytes(1000), randomBytes(2000)]);
    await s.images.create(s.ctx, { name: 'docker.io/library/app:1', target: img.index });
    const orphan = await s.put(s.ctx, 'orphan blob', 'application/octet-stream');
    s.overlay.add('orphan-parent', 'committed');
    s.overlay.add('orphan-child', 'committed', 'orphan-parent');

    const r1 = await s.gc().collect(s.ctx);
    assert.deepEqual(r1.content.removed, [orphan.digest]);
    assert.equal(r1.content.bytes, orphan.size);
    assert.deepEqual(r1.snapshots.removed.map((x) => x.key), ['orphan-child', 'orphan-parent'], 'children before parents');
    assert.equal(r1.snapshots.bytes, 200);
    for (const d of img.blobs) assert.ok(await s.has(d), `${d} kept`);
    for (const id of img.chain) assert.ok(s.overlay.snaps.has(id), `snapshot ${id} kept`);

    await s.images.delete(s.ctx, 'docker.io/library/app:1');
    const dry = await s.gc().collect(s.ctx, { dryRun: true });
    assert.equal(dry.content.count, img.blobs.length);
    for (const d of img.blobs) assert.ok(await s.has(d), 'dry run deletes nothing');

    const r2 = await s.gc().collect(s.ctx);
    assert.deepEqual([...r2.content.removed].sort(), [...img.blobs].sort());
    assert.equal(r2.snapshots.count, 2);
    assert.equal(s.overlay.snaps.size, 0);
    assert.equal(r2.content.bytes, img.index.size + img.manifest.size + img.config.size + 3000);
  } finally {
    await s.t.cleanup();
  }
});

test('gc: images in other namespaces and shared layers are kept', async () => {
  const s = await setup();
  try {
    const base = randomBytes(500);
    const a = await s.makeImage(s.ctx, [base, randomBytes(600)]);
    const k8s = rootCtx({ namespace: 'k8s.io' });
    const b = await s.makeImage(k8s, [base, randomBytes(700)]);
    await s.images.create(s.ctx, { name: 'a', target: a.index });
    await s.images.create(k8s, { name: 'b', target: b.manifest });
    await s.images.delete(s.ctx, 'a');
    await s.gc().collect(s.ctx);
    assert.ok(await s.has(a.layers[0].digest), 'shared base layer kept');
    assert.ok(!(await s.has(a.layers[1].digest)), 'layer only a used is gone');
    assert.ok(!(await s.has(a.index.digest)));
    for (const d of b.blobs.filter((d) => d !== b.index.digest)) assert.ok(await s.has(d));
    assert.ok(!(await s.has(b.index.digest)), "b's image points at its manifest, so the index is unreferenced");
    assert.ok(s.overlay.snaps.has(b.chain[0]) && s.overlay.snaps.has(b.chain[1]));
    assert.ok(!s.overlay.snaps.has(a.chain[1]));
  } finally {
    await s.t.cleanup();
  }
});

test('gc: a container keeps its snapshot and the parent chain', async () => {
  const s = await setup();
  try {
    const img = await s.makeImage(s.ctx, [randomBytes(100), randomBytes(100)]);
    const id = 'c'.repeat(64);
    s.overlay.add(id, 'active', img.chain[1]);
    await s.containers.create(s.ctx, {
      id,
      name: 'web',
      config: { image: 'app' },
      imageId: img.config.digest,
      imageName: 'app',
      snapshotter: 'overlayfs',
      snapshotKey: id,
      createdAt: new Date().toISOString(),
      labels: {},
      extensions: {},
    });
    const r = await s.gc().collect(s.ctx);
    assert.equal(r.snapshots.count, 0);
    assert.ok(s.overlay.snaps.has(id) && s.overlay.snaps.has(img.chain[0]) && s.overlay.snaps.has(img.chain[1]));
    assert.equal(r.content.count, img.blobs.length, 'no image record: the blobs go, the snapshots stay');
    await s.containers.delete(s.ctx, id);
    const r2 = await s.gc(0).collect(s.ctx);
    assert.equal(r2.snapshots.count, 3);
  } finally {
    await s.t.cleanup();
  }
});

test('gc: a lease protects fresh content and snapshots until it is deleted or expires', async () => {
  const s = await setup();
  try {
    let digests: string[] = [];
    await withLease(s.ctx, s.leases, {}, async (lctx) => {
      const img = await s.makeImage(lctx, [randomBytes(300)]);
      await s.leases.attach(lctx, { kind: 'snapshot', id: img.chain[0], snapshotter: 'overlayfs' });
      digests = img.blobs;
      const r = await s.gc(0).collect(s.ctx);
      assert.equal(r.content.count, 0);
      assert.equal(r.snapshots.count, 0);
      // A leased index is walked as well: the manifest's blobs would be kept even if not leased one by one.
    });
    const r = await s.gc(0).collect(s.ctx);
    assert.equal(r.content.count, digests.length);
    assert.equal(r.snapshots.count, 1);

    const expiring = await s.leases.create(s.ctx, { expiresAt: new Date(Date.now() + 500) });
    const blob = await s.put(rootCtx({ lease: expiring.id }), 'short-lived', 'application/octet-stream');
    // GC's clock is a second ahead, so the lease has expired by then.
    const r2 = await s.gc().collect(s.ctx);
    assert.equal(r2.leases, 1);
    assert.deepEqual(r2.content.removed, [blob.digest]);
  } finally {
    await s.t.cleanup();
  }
});

test('gc: a leased index is walked, so its children survive without their own lease entries', async () => {
  const s = await setup();
  try {
    const img = await s.makeImage(s.ctx, [randomBytes(100)]);
    const lease = await s.leases.create(s.ctx);
    await s.leases.addResource(s.ctx, lease.id, { kind: 'content', id: img.index.digest });
    const r = await s.gc().collect(s.ctx);
    assert.equal(r.content.count, 0);
    assert.equal(r.snapshots.count, 0);
  } finally {
    await s.t.cleanup();
  }
});

test('gc: containerd gc.ref labels are followed to content and snapshots', async () => {
  const s = await setup();
  try {
    const child = await s.put(s.ctx, randomBytes(50), 'application/octet-stream');
    s.overlay.add('labelled-snap', 'committed');
    s.overlay.add('other-snap', 'committed');
    const root = await s.put(s.ctx, 'root', 'application/x-custom');
    await s.content.updateLabels(s.ctx, root.digest, {
      'containerd.io/gc.ref.content.l.0': child.digest,
      'containerd.io/gc.ref.snapshot.overlayfs': 'labelled-snap',
      'containerd.io/gc.ref.snapshot.native': 'other-snap',
    });
    await s.images.create(s.ctx, { name: 'labelled', target: root });
    const r = await s.gc().collect(s.ctx);
    assert.equal(r.content.count, 0);
    assert.deepEqual(r.snapshots.removed.map((x) => x.key), ['other-snap'], 'a label for another snapshotter keeps nothing here');
  } finally {
    await s.t.cleanup();
  }
});

test('gc: in-progress ingests are spared; abandoned ones go', async () => {
  const s = await setup();
  try {
    const young = await s.content.writer(s.ctx, { ref: 'young' });
    await young.write(randomBytes(100));
    await young.close();
    const held = await s.content.writer(s.ctx, { ref: 'held' });
    await held.write(randomBytes(100));
    const lease = await s.leases.create(s.ctx);
    await s.leases.addResource(s.ctx, lease.id, { kind: 'ingest', id: 'leased' });
    const leased = await s.content.writer(s.ctx, { ref: 'leased' });
    await leased.write(randomBytes(100));
    await leased.close();

    const r1 = await s.gc().collect(s.ctx);
    assert.equal(r1.ingests.count, 0, 'younger than the grace period');

    const r2 = await s.gc(0).collect(s.ctx);
    assert.deepEqual(r2.ingests.removed, ['young']);
    assert.equal(r2.ingests.bytes, 100);
    const refs = (await s.content.listStatuses(s.ctx)).map((x) => x.ref).sort();
    assert.deepEqual(refs, ['held', 'leased'], 'a held writer and a leased ingest stay');
    await held.close();
  } finally {
    await s.t.cleanup();
  }
});

test('gc: unreferenced active snapshots younger than the grace period are spared', async () => {
  const s = await setup();
  try {
    s.overlay.add('extract-1', 'active');
    assert.equal((await s.gc().collect(s.ctx)).snapshots.count, 0);
    assert.equal((await s.gc(0).collect(s.ctx)).snapshots.count, 1);
  } finally {
    await s.t.cleanup();
  }
});

test('gc: unknown media types are leaves, oversized and broken manifests too', async () => {
  const s = await setup();
  try {
    const odd = await s.put(s.ctx, JSON.stringify({ layers: [] }), 'application/x-custom');
    await s.images.create(s.ctx, { name: 'odd', target: odd });
    const broken = await s.put(s.ctx, '{not json', MediaTypes.ociManifest);
    await s.images.create(s.ctx, { name: 'broken', target: broken });
    const huge = await s.put(s.ctx, Buffer.alloc((4 << 20) + 1, 0x20), MediaTypes.ociIndex);
    await s.images.create(s.ctx, { name: 'huge', target: huge });
    await s.images.create(s.ctx, { name: 'missing', target: { mediaType: MediaTypes.ociIndex, digest: digestOf('gone'), size: 4 } });
    const r = await s.gc().collect(s.ctx);
    assert.equal(r.content.count, 0);
    assert.ok(await s.has(odd.digest));
  } finally {
    await s.t.cleanup();
  }
});

test('gc: a root added while the mark walks is honoured', async () => {
  const s = await setup();
  try {
    const img = await s.makeImage(s.ctx, [randomBytes(100)]);
    await s.images.create(s.ctx, { name: 'a', target: img.index });
    const late = await s.makeImage(s.ctx, [randomBytes(100)]);
    // The first read of a manifest during the mark is the moment another pull finishes.
    let fired = false;
    const content = new LeasedContentStore(s.content, { attach: async () => {} });
    content.readAll = async (c, d, max) => {
      if (!fired) {
        fired = true;
        await s.images.create(s.ctx, { name: 'late', target: late.index });
      }
      return s.content.readAll(c, d, max);
    };
    const gc = new GarbageCollector({ images: s.images, containers: s.containers, leases: s.leases, content, snapshotters: [s.overlay], now: () => new Date(Date.now() + 1000) });
    const r = await gc.collect(s.ctx);
    assert.ok(fired);
    assert.equal(r.content.count, 0);
    assert.equal(r.snapshots.count, 0);
  } finally {
    await s.t.cleanup();
  }
});

test('gc: concurrent collections join one run', async () => {
  const s = await setup();
  try {
    await s.put(s.ctx, 'garbage', 'application/octet-stream');
    const gc = s.gc();
    const [a, b] = await Promise.all([gc.collect(s.ctx), gc.collect(s.ctx)]);
    assert.equal(a, b);
    assert.equal(a.content.count, 1);
  } finally {
    await s.t.cleanup();
  }
});
