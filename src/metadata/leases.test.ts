import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootCtx, withCtx } from '../core/context.ts';
import { MetadataLeaseManager, withLease } from './leases.ts';
import { rejectsKind, tempDb } from './test-helpers.ts';

test('leases: create, list, resources, delete cascades', async () => {
  const t = await tempDb();
  try {
    const lm = new MetadataLeaseManager(t.db);
    const ctx = rootCtx();
    const l = await lm.create(ctx, { id: 'pull-1', labels: { why: 'pull' } });
    assert.equal(l.id, 'pull-1');
    await rejectsKind(lm.create(ctx, { id: 'pull-1' }), 'AlreadyExists');
    await rejectsKind(lm.create(ctx, { id: 'bad id' }), 'InvalidArgument');
    const gen = await lm.create(ctx);
    assert.match(gen.id, /^lease-[0-9a-f]{16}$/);
    assert.deepEqual((await lm.list(ctx, { labels: { why: 'pull' } })).map((x) => x.id), ['pull-1']);

    await lm.addResource(ctx, 'pull-1', { kind: 'content', id: 'sha256:' + 'a'.repeat(64) });
    await lm.addResource(ctx, 'pull-1', { kind: 'content', id: 'sha256:' + 'a'.repeat(64) });
    await lm.addResource(ctx, 'pull-1', { kind: 'snapshot', id: 'extract-1', snapshotter: 'overlayfs' });
    await lm.addResource(ctx, 'pull-1', { kind: 'ingest', id: 'layer-x' });
    await rejectsKind(lm.addResource(ctx, 'pull-1', { kind: 'bogus' as 'content', id: 'x' }), 'InvalidArgument');
    await rejectsKind(lm.addResource(ctx, 'nope', { kind: 'content', id: 'x' }), 'NotFound');
    assert.deepEqual(await lm.listResources(ctx, 'pull-1'), [
      { kind: 'content', id: 'sha256:' + 'a'.repeat(64) },
      { kind: 'ingest', id: 'layer-x' },
      { kind: 'snapshot', id: 'extract-1', snapshotter: 'overlayfs' },
    ]);
    await lm.deleteResource(ctx, 'pull-1', { kind: 'ingest', id: 'layer-x' });
    assert.equal((await lm.listResources(ctx, 'pull-1')).length, 2);

    await lm.delete(ctx, 'pull-1');
    await rejectsKind(lm.delete(ctx, 'pull-1'), 'NotFound');
    await rejectsKind(lm.listResources(ctx, 'pull-1'), 'NotFound');
    assert.equal(lm.activeResources(new Date()).length, 0, 'resources went with the lease');
  } finally {
    await t.cleanup();
  }
});

test('leases: attach uses ctx.lease; withLease deletes its lease afterwards, even on failure', async () => {
  const t = await tempDb();
  try {
    const lm = new MetadataLeaseManager(t.db);
    const ctx = rootCtx();
    await lm.attach(ctx, { kind: 'content', id: 'x' });
    assert.equal(lm.activeResources(new Date()).length, 0);
    let seen = '';
    await withLease(ctx, lm, { expiresInMs: 60_000 }, async (lctx) => {
      seen = lctx.lease!;
      await lm.attach(lctx, { kind: 'content', id: 'x' });
      assert.deepEqual(lm.activeResources(new Date()).map((r) => r.id), ['x']);
    });
    assert.ok(seen);
    assert.equal((await lm.list(ctx)).length, 0);
    await assert.rejects(
      withLease(ctx, lm, {}, async () => {
        throw new Error('pull failed');
      }),
      /pull failed/,
    );
    assert.equal((await lm.list(ctx)).length, 0);
    await rejectsKind(lm.attach(withCtx(ctx, { lease: 'gone' }), { kind: 'content', id: 'x' }), 'NotFound');
  } finally {
    await t.cleanup();
  }
});

test('leases: at a start, the expiring leases of an earlier life go in every namespace, lasting ones stay', async () => {
  const t = await tempDb();
  try {
    const lm = new MetadataLeaseManager(t.db);
    const a = rootCtx();
    const b = rootCtx({ namespace: 'k8s.io' });
    const later = new Date(Date.now() + 3_600_000);
    await lm.create(a, { id: 'pull', expiresAt: later });
    await lm.create(b, { id: 'pull', expiresAt: later });
    await lm.create(a, { id: 'kept' });
    await lm.addResource(a, 'pull', { kind: 'snapshot', id: 's', snapshotter: 'overlayfs' });
    assert.equal(lm.deleteExpiring(), 2);
    assert.deepEqual((await lm.list(a)).map((l) => l.id), ['kept']);
    assert.deepEqual(await lm.list(b), []);
    assert.deepEqual(lm.activeResources(new Date()), []);
  } finally {
    await t.cleanup();
  }
});

test('leases: expiry ends protection; namespaces isolate', async () => {
  const t = await tempDb();
  try {
    const lm = new MetadataLeaseManager(t.db);
    const a = rootCtx();
    const b = rootCtx({ namespace: 'other' });
    const now = new Date();
    await lm.create(a, { id: 'old', expiresAt: new Date(now.getTime() - 1000) });
    await lm.create(a, { id: 'live', expiresAt: new Date(now.getTime() + 3_600_000) });
    await lm.create(b, { id: 'live' });
    await lm.addResource(a, 'old', { kind: 'content', id: 'c-old' });
    await lm.addResource(a, 'live', { kind: 'content', id: 'c-live' });
    await lm.addResource(b, 'live', { kind: 'content', id: 'c-b' });
    assert.deepEqual(lm.activeResources(now).map((r) => `${r.namespace}/${r.id}`).sort(), ['default/c-live', 'other/c-b']);
    assert.equal(lm.deleteExpired(now), 1);
    assert.deepEqual((await lm.list(a)).map((l) => l.id), ['live']);
    assert.deepEqual((await lm.list(b)).map((l) => l.id), ['live']);
    await lm.delete(b, 'live');
    assert.deepEqual((await lm.list(a)).map((l) => l.id), ['live']);
  } finally {
    await t.cleanup();
  }
});
