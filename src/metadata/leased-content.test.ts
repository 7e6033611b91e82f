import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { rootCtx, withCtx } from '../core/context.ts';
import { digestOf } from '../core/digest.ts';
import { FetchOnce } from '../content/fetch-once.ts';
import { LocalContentStore } from '../content/local-store.ts';
import { contentStoreSuite } from '../content/store-suite.ts';
import { MetadataDb } from './db.ts';
import { GarbageCollector } from './gc.ts';
import { MetadataContainerStore } from './containers.ts';
import { MetadataImageStore } from './images.ts';
import { LeasedContentStore } from './leased-content.ts';
import { MetadataLeaseManager } from './leases.ts';
import { rejectsKind, tempDb } from './test-helpers.ts';

contentStoreSuite('LeasedContentStore', async () => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-leased-'));
  const db = new MetadataDb(path.join(root, 'meta.db'));
  const leases = new MetadataLeaseManager(db);
  const open = async () => new LeasedContentStore(await LocalContentStore.open(rootCtx(), path.join(root, 'content')), leases);
  return {
    store: await open(),
    reopen: open,
    async cleanup() {
      db.close();
      await fsp.rm(root, { recursive: true, force: true });
    },
  };
});

test('leased writes: ingest and content join ctx.lease, also when the blob already exists', async () => {
  const t = await tempDb();
  try {
    const ctx = rootCtx();
    const leases = new MetadataLeaseManager(t.db);
    const local = await LocalContentStore.open(ctx, path.join(t.dir, 'content'));
    const store = new LeasedContentStore(local, leases);
    const lease = await leases.create(ctx);
    const lctx = withCtx(ctx, { lease: lease.id });

    const data = Buffer.from('leased blob');
    const digest = digestOf(data);
    const w = await store.writer(lctx, { ref: 'r1', expected: { digest, size: data.length } });
    await w.write(data);
    await w.commit(lctx);
    assert.deepEqual(await leases.listResources(ctx, lease.id), [
      { kind: 'content', id: digest },
      { kind: 'ingest', id: 'r1' },
    ]);

    const free = Buffer.from('no expectations');
    const w2 = await store.writer(lctx, { ref: 'r2' });
    await w2.write(free);
    await w2.commit(lctx);
    assert.ok((await leases.listResources(ctx, lease.id)).some((r) => r.id === digestOf(free)));

    // A second pull finds the blob present: it is still put under that pull's lease.
    const lease2 = await leases.create(ctx);
    await rejectsKind(store.writer(withCtx(ctx, { lease: lease2.id }), { ref: 'r3', expected: { digest } }), 'AlreadyExists');
    assert.deepEqual((await leases.listResources(ctx, lease2.id)).filter((r) => r.kind === 'content'), [{ kind: 'content', id: digest }]);

    // Without a lease nothing is recorded.
    const w4 = await store.writer(ctx, { ref: 'r4' });
    await w4.write(Buffer.from('unleased'));
    await w4.commit(ctx);

    const gc = new GarbageCollector({
      images: new MetadataImageStore(t.db),
      containers: new MetadataContainerStore(t.db),
      leases,
      content: store,
      snapshotters: [],
      now: () => new Date(Date.now() + 1000),
    });
    const r = await gc.collect(ctx);
    assert.deepEqual(r.content.removed, [digestOf('unleased')]);
    await leases.delete(ctx, lease.id);
    await leases.delete(ctx, lease2.id);
    const r2 = await gc.collect(ctx);
    assert.deepEqual(r2.content.removed.sort(), [digest, digestOf(free)].sort());
  } finally {
    await t.cleanup();
  }
});

test('fetch-once with protect: every pull sharing a download gets the blob under its own lease', async () => {
  const t = await tempDb();
  try {
    const ctx = rootCtx();
    const leases = new MetadataLeaseManager(t.db);
    const store = new LeasedContentStore(await LocalContentStore.open(ctx, path.join(t.dir, 'content')), leases);
    const once = new FetchOnce(store, { protect: (c, d) => leases.attach(c, { kind: 'content', id: d }) });
    const data = Buffer.from('shared layer');
    const digest = digestOf(data);
    const [l1, l2] = [await leases.create(ctx), await leases.create(ctx)];
    const fetch = async (c: typeof ctx) => {
      const w = await store.writer(c, { ref: `layer-${digest}`, expected: { digest, size: data.length } });
      await w.write(data);
      await w.commit(c);
    };
    const results = await Promise.all([l1, l2].map((l) => once.ensure(withCtx(ctx, { lease: l.id }), digest, fetch)));
    assert.deepEqual(results.map((r) => r.outcome).sort(), ['fetched', 'shared']);
    for (const l of [l1, l2]) {
      assert.ok((await leases.listResources(ctx, l.id)).some((r) => r.kind === 'content' && r.id === digest), `lease ${l.id}`);
    }
  } finally {
    await t.cleanup();
  }
});
