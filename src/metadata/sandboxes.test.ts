import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rootCtx } from '../core/context.ts';
import { SandboxStore, podKey, type SandboxRecord } from './sandboxes.ts';
import { rejectsKind, tempDb } from './test-helpers.ts';

const ctx = rootCtx({ namespace: 'k8s.io' });
const rec = (id: string, name: string, attempt = 0): SandboxRecord => ({
  id,
  namespace: 'k8s.io',
  name,
  uid: `u-${name}`,
  podNamespace: 'default',
  attempt,
  hostname: name,
  labels: { app: name },
  annotations: {},
  namespaces: { network: 'pod', pid: 'container', ipc: 'pod' },
  network: 'bridge',
  ip: '',
  state: 'notready',
  createdAtNs: '1',
});

describe('SandboxStore', () => {
  let t: Awaited<ReturnType<typeof tempDb>>;
  let store: SandboxStore;
  before(async () => {
    t = await tempDb();
    store = new SandboxStore(t.db);
  });
  after(() => t.cleanup());

  it('refuses a second sandbox for the same pod attempt, not for the next attempt', async () => {
    store.create(ctx, rec('aa11', 'web'));
    await rejectsKind(() => store.create(ctx, rec('bb22', 'web')), 'AlreadyExists');
    store.create(ctx, rec('ab33', 'web', 1));
    assert.equal(podKey(rec('x', 'web', 1)), 'web_default_u-web_1');
    // Another namespace has its own names.
    store.create(rootCtx({ namespace: 'other' }), rec('cc44', 'web'));
    assert.deepEqual(store.namespaces(), ['k8s.io', 'other']);
  });

  it('resolves ids and unique prefixes; an ambiguous prefix is InvalidArgument', async () => {
    assert.equal(store.resolve(ctx, 'aa').id, 'aa11');
    await rejectsKind(() => store.resolve(ctx, 'a'), 'InvalidArgument');
    await rejectsKind(() => store.resolve(ctx, 'zz'), 'NotFound');
    await rejectsKind(() => store.resolve(ctx, ''), 'NotFound');
  });

  it('updates the state and IP, lists in creation order, deletes', async () => {
    assert.equal(store.update(ctx, 'aa11', { state: 'ready', ip: '10.0.0.2' }).state, 'ready');
    assert.equal(store.get(ctx, 'aa11').ip, '10.0.0.2');
    assert.deepEqual(store.list(ctx).map((r) => r.id), ['aa11', 'ab33']);
    assert.equal(store.has('k8s.io', 'aa11'), true);
    store.delete(ctx, 'aa11');
    assert.equal(store.has('k8s.io', 'aa11'), false);
    await rejectsKind(() => store.get(ctx, 'aa11'), 'NotFound');
  });
});
