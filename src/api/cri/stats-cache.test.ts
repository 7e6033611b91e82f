import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rootCtx } from '../../core/context.ts';
import { EventBus } from '../../core/events.ts';
import { silentLogger } from '../../core/log.ts';
import { CriStatsCache } from './stats-cache.ts';
import type { CriDeps } from './types.ts';

/** A pod's running container whose "process" is this test's own, so its cgroup is real. */
function fakeDeps(events: EventBus, shutdown: AbortSignal) {
  const calls = { containers: 0, sandboxes: 0, layers: 0 };
  const summary = {
    record: { id: 'c1', name: 'c1', namespace: 'k8s.io', imageId: 'sha256:x', imageName: 'x', snapshotKey: 'c1', snapshotter: 'overlayfs', createdAt: new Date().toISOString(), labels: {}, extensions: {}, config: { image: 'x', pod: { sandboxId: 's1', pausePid: process.pid, hostNetwork: false, pid: 'pod', ipc: 'pod', name: 'c', attempt: 0 } } },
    state: { status: 'running', pid: process.pid, restartCount: 0 },
  };
  const deps = {
    log: silentLogger,
    shutdown,
    events,
    containers: {
      list: async () => (calls.containers++, [summary]),
      writableLayerUsage: async () => (calls.layers++, { size: 4096, inodes: 1 }),
    },
    sandboxes: { list: async () => (calls.sandboxes++, []) },
  } as unknown as CriDeps;
  return { deps, calls };
}

describe('CRI stats cache', () => {
  const ctx = rootCtx({ log: silentLogger, namespace: 'k8s.io' });

  it('answers calls from its last sweep, and waits for a fresh one only after a change', async () => {
    const events = new EventBus();
    const stop = new AbortController();
    const { deps, calls } = fakeDeps(events, stop.signal);
    // A period far longer than the test: only the first read and the change below may sweep.
    const cache = new CriStatsCache(deps, { periodMs: 3_600_000 });
    try {
      const first = await cache.read(ctx);
      assert.equal(calls.containers, 1);
      const s = first.containers.get('c1');
      assert.ok(s?.cur && s.cur.cpuNs > 0, 'the cgroup of a live process was read');
      assert.equal(s.fs?.size, 4096, 'the first sweep walks the writable layers');
      for (let i = 0; i < 20; i++) await cache.read(ctx);
      assert.equal(calls.containers, 1, 'twenty calls, no more sweeps');
      events.publish({ type: 'container', action: 'start', namespace: 'k8s.io', id: 'c2', attributes: {} });
      await new Promise((r) => setImmediate(r));
      const after = await cache.read(ctx);
      assert.equal(calls.containers, 2, 'a change: one fresh sweep');
      assert.ok(after.containers.get('c1')?.prev, 'two sweeps give a rate');
      // Another namespace's containers are not this cache's concern.
      events.publish({ type: 'container', action: 'start', namespace: 'default', id: 'c3', attributes: {} });
      await new Promise((r) => setImmediate(r));
      await cache.read(ctx);
      assert.equal(calls.containers, 2);
      cache.invalidate();
      await cache.read(ctx);
      assert.equal(calls.containers, 3);
    } finally {
      cache.close();
      stop.abort();
    }
  });
});
