import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rootCtx } from '../../core/context.ts';
import { EventBus } from '../../core/events.ts';
import { HealthMonitor, effectiveHealthcheck, healthCommand } from './health.ts';

const ms = 1_000_000;

describe('health checks', () => {
  it('merges the container fields over the image check; NONE or no test means none', () => {
    assert.deepEqual(effectiveHealthcheck({ Test: ['CMD', 'true'], Interval: 5000 * ms, Retries: 2 }, { Interval: 100 * ms }), { Test: ['CMD', 'true'], Interval: 100 * ms, Retries: 2 });
    assert.equal(effectiveHealthcheck({ Test: ['CMD', 'true'] }, { Test: ['NONE'] }), undefined);
    assert.equal(effectiveHealthcheck(undefined, { Interval: 100 * ms }), undefined);
    assert.deepEqual(healthCommand(['CMD-SHELL', 'curl -f localhost']), ['/bin/sh', '-c', 'curl -f localhost']);
    assert.deepEqual(healthCommand(['CMD', 'check', '--fast']), ['check', '--fast']);
  });

  // The probe here is a script of exit codes: the state machine is what is under test
  // (test/integration/containers.test.ts runs real checks in real containers).
  it('goes healthy on a success and unhealthy after `retries` failures in a row, publishing each change', async () => {
    const events = new EventBus();
    const seen: string[] = [];
    const sub = events.subscribe();
    void (async () => {
      for await (const e of sub) seen.push(e.action);
    })();
    const codes = [1, 0, 1, 1, 0];
    let calls = 0;
    const h = new HealthMonitor({
      probe: async () => ({ exitCode: codes[Math.min(calls++, codes.length - 1)], stdout: Buffer.from('out'), stderr: Buffer.alloc(0), timedOut: false }),
      configOf: async () => ({ Test: ['CMD', 'x'], Interval: 5 * ms, Retries: 2 }),
      events,
    });
    await h.watch(rootCtx(), 'c1');
    for (let i = 0; i < 400 && calls < codes.length + 1; i++) await new Promise((r) => setTimeout(r, 5));
    h.close();
    sub.close();
    assert.deepEqual(seen.slice(0, 3), ['health_status: healthy', 'health_status: unhealthy', 'health_status: healthy']);
    const state = h.health('c1')!;
    assert.equal(state.Status, 'healthy');
    assert.ok(state.Log.length <= 5);
    assert.equal(state.Log.at(-1)?.Output, 'out');
  });

  it('does not count failures during the start period', async () => {
    let calls = 0;
    const h = new HealthMonitor({
      probe: async () => (calls++, { exitCode: 1, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), timedOut: false }),
      configOf: async () => ({ Test: ['CMD', 'x'], Interval: 2 * ms, Retries: 1, StartPeriod: 10_000 * ms }),
      events: new EventBus(),
    });
    await h.watch(rootCtx(), 'c2');
    for (let i = 0; i < 100 && calls < 5; i++) await new Promise((r) => setTimeout(r, 5));
    h.close();
    assert.equal(h.health('c2')?.Status, 'starting');
    assert.equal(h.health('c2')?.FailingStreak, 0);
  });
});
