import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerRecord } from '../core/containers.ts';
import { rootCtx } from '../core/context.ts';
import { kindOf } from '../core/errors.ts';
import { MetadataContainerStore } from './containers.ts';
import { rejectsKind, tempDb } from './test-helpers.ts';

function rec(id: string, name: string, extra: Partial<ContainerRecord> = {}): Omit<ContainerRecord, 'namespace'> {
  return {
    id,
    name,
    config: { image: 'busybox' },
    imageId: 'sha256:' + 'c'.repeat(64),
    imageName: 'docker.io/library/busybox:latest',
    snapshotter: 'overlayfs',
    snapshotKey: id,
    createdAt: new Date().toISOString(),
    labels: {},
    extensions: {},
    ...extra,
  };
}

const id1 = 'abc1' + '0'.repeat(60);
const id2 = 'abc2' + '0'.repeat(60);
const id3 = 'def0' + '0'.repeat(60);

test('containers: create, lookups, list, update, rename, delete', async () => {
  const t = await tempDb();
  try {
    const cs = new MetadataContainerStore(t.db);
    const ctx = rootCtx();
    const c1 = await cs.create(ctx, rec(id1, '/web', { labels: { app: 'x' } }));
    assert.equal(c1.name, 'web');
    assert.equal(c1.namespace, 'default');
    await cs.create(ctx, rec(id2, 'db'));
    await cs.create(ctx, rec(id3, 'cache'));

    assert.equal((await cs.get(ctx, id1)).name, 'web');
    assert.equal((await cs.getByName(ctx, '/web')).id, id1);
    assert.equal((await cs.getByPrefix(ctx, 'abc1')).id, id1);
    await rejectsKind(cs.getByPrefix(ctx, 'abc'), 'InvalidArgument');
    await rejectsKind(cs.getByPrefix(ctx, 'fff'), 'NotFound');
    await rejectsKind(cs.getByPrefix(ctx, 'a%'), 'NotFound');
    assert.equal((await cs.resolve(ctx, 'db')).id, id2);
    assert.equal((await cs.resolve(ctx, 'def')).id, id3);
    assert.equal((await cs.resolve(ctx, id2)).id, id2);
    await rejectsKind(cs.resolve(ctx, 'nope'), 'NotFound');

    assert.deepEqual((await cs.list(ctx)).map((c) => c.name).sort(), ['cache', 'db', 'web']);
    assert.deepEqual((await cs.list(ctx, { labels: { app: 'x' } })).map((c) => c.id), [id1]);

    const up = await cs.update(ctx, id1, { labels: { app: 'y' }, extensions: { net: { ip: '10.0.0.2' } } });
    assert.deepEqual(up.labels, { app: 'y' });
    assert.deepEqual((await cs.get(ctx, id1)).extensions, { net: { ip: '10.0.0.2' } });
    assert.equal((await cs.get(ctx, id1)).name, 'web');
    await rejectsKind(cs.update(ctx, 'missing', {}), 'NotFound');

    await cs.rename(ctx, id1, 'frontend');
    assert.equal((await cs.getByName(ctx, 'frontend')).id, id1);
    await rejectsKind(cs.getByName(ctx, 'web'), 'NotFound');
    await rejectsKind(cs.rename(ctx, id1, 'db'), 'AlreadyExists');
    await rejectsKind(cs.rename(ctx, id1, 'bad name!'), 'InvalidArgument');
    await cs.create(ctx, rec('f'.repeat(64), 'web'));

    await cs.delete(ctx, id2);
    await rejectsKind(cs.get(ctx, id2), 'NotFound');
    await rejectsKind(cs.delete(ctx, id2), 'NotFound');
    assert.equal((await cs.resolve(ctx, 'abc')).id, id1, 'prefix no longer ambiguous');
  } finally {
    await t.cleanup();
  }
});

test('containers: a taken name gets docker\'s conflict message, and nothing is written', async () => {
  const t = await tempDb();
  try {
    const cs = new MetadataContainerStore(t.db);
    const ctx = rootCtx();
    await cs.create(ctx, rec(id1, 'x'));
    const err = await cs.create(ctx, rec(id2, 'x')).catch((e: unknown) => e);
    assert.equal(kindOf(err), 'AlreadyExists');
    assert.ok((err as Error).message.startsWith(`Conflict. The container name "/x" is already in use by container "${id1}"`));
    await rejectsKind(cs.create(ctx, rec(id1, 'y')), 'AlreadyExists');
    await rejectsKind(cs.create(ctx, rec(id3, '-bad')), 'InvalidArgument');
    assert.equal((await cs.list(ctx)).length, 1);
  } finally {
    await t.cleanup();
  }
});

test('containers: runtime state lives in its own column', async () => {
  const t = await tempDb();
  try {
    const cs = new MetadataContainerStore(t.db);
    const ctx = rootCtx();
    await cs.create(ctx, rec(id1, 'x'));
    assert.equal(await cs.getState(ctx, id1), undefined);
    await cs.setState(ctx, id1, { status: 'running', pid: 42 });
    assert.deepEqual(await cs.getState(ctx, id1), { status: 'running', pid: 42 });
    await cs.update(ctx, id1, { labels: { a: 'b' } });
    assert.deepEqual(await cs.getState(ctx, id1), { status: 'running', pid: 42 }, 'record updates keep the state');
    await rejectsKind(cs.setState(ctx, id2, {}), 'NotFound');
    await cs.create(ctx, rec(id2, 'y'));
    assert.deepEqual((await cs.listWithState(ctx)).map((e) => [e.record.id, e.state]), [[id1, { status: 'running', pid: 42 }], [id2, undefined]]);
  } finally {
    await t.cleanup();
  }
});

test('containers: namespaces isolate ids and names', async () => {
  const t = await tempDb();
  try {
    const cs = new MetadataContainerStore(t.db);
    const a = rootCtx();
    const b = rootCtx({ namespace: 'k8s.io' });
    await cs.create(a, rec(id1, 'x'));
    await cs.create(b, rec(id1, 'x', { snapshotKey: 'k8s-key' }));
    assert.equal((await cs.get(b, id1)).namespace, 'k8s.io');
    await cs.delete(a, id1);
    await rejectsKind(cs.get(a, id1), 'NotFound');
    assert.equal((await cs.get(b, id1)).snapshotKey, 'k8s-key');
    assert.deepEqual(cs.allSnapshotRefs(), [{ namespace: 'k8s.io', id: id1, snapshotter: 'overlayfs', snapshotKey: 'k8s-key' }]);
  } finally {
    await t.cleanup();
  }
});
