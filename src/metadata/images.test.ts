import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootCtx } from '../core/context.ts';
import { digestOf } from '../core/digest.ts';
import { MediaTypes } from '../core/media-types.ts';
import type { Descriptor } from '../core/media-types.ts';
import { MetadataDb } from './db.ts';
import { MetadataImageStore } from './images.ts';
import { rejectsKind, tempDb } from './test-helpers.ts';

const desc = (s: string): Descriptor => ({ mediaType: MediaTypes.ociIndex, digest: digestOf(s), size: s.length });

test('images: create, get, list with filters, update, delete', async () => {
  const t = await tempDb();
  try {
    const images = new MetadataImageStore(t.db);
    const ctx = rootCtx();
    const a = await images.create(ctx, { name: 'docker.io/library/busybox:latest', target: desc('a'), labels: { l: '1' } });
    assert.equal(a.name, 'docker.io/library/busybox:latest');
    await images.create(ctx, { name: 'docker.io/library/busybox:1.36', target: desc('a') });
    await images.create(ctx, { name: 'docker.io/library/alpine:3', target: { ...desc('b'), annotations: { x: 'y' } } });
    await rejectsKind(images.create(ctx, { name: 'docker.io/library/alpine:3', target: desc('c') }), 'AlreadyExists');

    const got = await images.get(ctx, 'docker.io/library/alpine:3');
    assert.deepEqual(got.target, { ...desc('b'), annotations: { x: 'y' } });
    assert.ok(got.createdAt instanceof Date);

    assert.deepEqual((await images.list(ctx)).map((i) => i.name), ['docker.io/library/alpine:3', 'docker.io/library/busybox:1.36', 'docker.io/library/busybox:latest']);
    assert.deepEqual((await images.list(ctx, { digest: digestOf('a') })).map((i) => i.name), ['docker.io/library/busybox:1.36', 'docker.io/library/busybox:latest']);
    assert.deepEqual((await images.list(ctx, { namePrefix: 'docker.io/library/alpine' })).length, 1);
    assert.deepEqual((await images.list(ctx, { labels: { l: true } })).map((i) => i.name), ['docker.io/library/busybox:latest']);
    assert.deepEqual((await images.list(ctx, { labels: { l: '2' } })).length, 0);
    assert.deepEqual((await images.list(ctx, { name: 'docker.io/library/busybox:1.36' })).length, 1);

    const up = await images.update(ctx, 'docker.io/library/busybox:latest', { target: desc('z') });
    assert.equal(up.target.digest, digestOf('z'));
    assert.deepEqual(up.labels, { l: '1' });
    assert.ok(up.updatedAt >= up.createdAt);
    const up2 = await images.update(ctx, 'docker.io/library/busybox:latest', { labels: {} });
    assert.deepEqual(up2.labels, {});
    assert.equal((await images.get(ctx, 'docker.io/library/busybox:latest')).target.digest, digestOf('z'));
    await rejectsKind(images.update(ctx, 'nope', { labels: {} }), 'NotFound');

    await images.delete(ctx, 'docker.io/library/busybox:1.36');
    await rejectsKind(images.get(ctx, 'docker.io/library/busybox:1.36'), 'NotFound');
    await rejectsKind(images.delete(ctx, 'docker.io/library/busybox:1.36'), 'NotFound');
  } finally {
    await t.cleanup();
  }
});

test('images: put creates or replaces, keeping createdAt', async () => {
  const t = await tempDb();
  try {
    const images = new MetadataImageStore(t.db);
    const ctx = rootCtx();
    const a = await images.put(ctx, { name: 'x', target: desc('a'), labels: { l: '1' } });
    const b = await images.put(ctx, { name: 'x', target: desc('b') });
    assert.equal(b.target.digest, digestOf('b'));
    assert.deepEqual(b.labels, {});
    assert.equal(b.createdAt.getTime(), a.createdAt.getTime());
    assert.equal((await images.list(ctx)).length, 1);
    await rejectsKind(images.put(ctx, { name: '', target: desc('a') }), 'InvalidArgument');
  } finally {
    await t.cleanup();
  }
});

test('images: invalid input changes nothing', async () => {
  const t = await tempDb();
  try {
    const images = new MetadataImageStore(t.db);
    const ctx = rootCtx();
    await rejectsKind(images.create(ctx, { name: '', target: desc('a') }), 'InvalidArgument');
    await rejectsKind(images.create(ctx, { name: 'x', target: { mediaType: 'm', digest: 'sha256:nothex', size: 1 } }), 'InvalidArgument');
    await images.create(ctx, { name: 'x', target: desc('a') });
    await rejectsKind(images.update(ctx, 'x', { target: { mediaType: '', digest: digestOf('q'), size: 1 } }), 'InvalidArgument');
    assert.equal((await images.get(ctx, 'x')).target.digest, digestOf('a'));
    assert.equal((await images.list(ctx)).length, 1);
  } finally {
    await t.cleanup();
  }
});

test('images: namespaces isolate records', async () => {
  const t = await tempDb();
  try {
    const images = new MetadataImageStore(t.db);
    const def = rootCtx();
    const k8s = rootCtx({ namespace: 'k8s.io' });
    await images.create(def, { name: 'x', target: desc('a') });
    await images.create(k8s, { name: 'x', target: desc('b') });
    assert.equal((await images.get(def, 'x')).target.digest, digestOf('a'));
    assert.equal((await images.get(k8s, 'x')).target.digest, digestOf('b'));
    await images.delete(k8s, 'x');
    assert.equal((await images.list(k8s)).length, 0);
    assert.equal((await images.list(def)).length, 1);
    assert.equal(images.allTargets().length, 1);
  } finally {
    await t.cleanup();
  }
});

test('images: two connections to one database see one another and never both create a name', async () => {
  const t = await tempDb();
  try {
    const a = new MetadataImageStore(t.db);
    const db2 = new MetadataDb(t.file);
    const b = new MetadataImageStore(db2);
    const ctx = rootCtx();
    await a.create(ctx, { name: 'shared', target: desc('a') });
    await rejectsKind(b.create(ctx, { name: 'shared', target: desc('b') }), 'AlreadyExists');
    assert.equal((await b.get(ctx, 'shared')).target.digest, digestOf('a'));
    db2.close();
  } finally {
    await t.cleanup();
  }
});
