import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rootCtx } from '../core/context.ts';
import { MetadataImageStore } from './images.ts';
import { MetadataLeaseManager } from './leases.ts';
import { NamespaceStore } from './namespaces.ts';
import { rejectsKind, tempDb } from './test-helpers.ts';

test('a created namespace is listed with its labels until removed; one that holds records is refused', async () => {
  const t = await tempDb();
  try {
    const ctx = rootCtx();
    const images = new MetadataImageStore(t.db);
    const leases = new MetadataLeaseManager(t.db);
    const ns = new NamespaceStore(t.db);
    assert.deepEqual(await ns.list(ctx), []);
    await ns.create(ctx, 'empty', { team: 'a' });
    await images.create(rootCtx({ namespace: 'busy' }), { name: 'x', target: { mediaType: 'm', digest: `sha256:${'b'.repeat(64)}`, size: 2 } });
    await leases.create(rootCtx({ namespace: 'busy' }));
    assert.deepEqual(await ns.list(ctx), [
      { name: 'busy', labels: {} },
      { name: 'empty', labels: { team: 'a' } },
    ]);
    await rejectsKind(ns.create(ctx, 'busy'), 'AlreadyExists');
    await rejectsKind(ns.create(ctx, 'bad/name'), 'InvalidArgument');
    await rejectsKind(ns.remove(ctx, 'busy'), 'FailedPrecondition');
    await assert.rejects(ns.remove(ctx, 'busy'), /namespace "busy" must be empty, but it still has images, leases/);
    await rejectsKind(ns.remove(ctx, 'nowhere'), 'NotFound');
    await ns.remove(ctx, 'empty');
    assert.deepEqual((await ns.list(ctx)).map((n) => n.name), ['busy']);
    // A namespace made on purpose and then used keeps its labels and still needs emptying first.
    await ns.create(ctx, 'later');
    await leases.create(rootCtx({ namespace: 'later' }), { id: 'l1' });
    await rejectsKind(ns.remove(ctx, 'later'), 'FailedPrecondition');
    await leases.delete(rootCtx({ namespace: 'later' }), 'l1');
    await ns.remove(ctx, 'later');
    assert.deepEqual((await ns.list(ctx)).map((n) => n.name), ['busy']);
  } finally {
    await t.cleanup();
  }
});
