import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BerthEvent } from './events.ts';
import { EventBus, nowNano } from './events.ts';

const ev = (action: string, id = 'c1') => ({ type: 'container' as const, action, namespace: 'default', id, attributes: {} });

async function take(sub: AsyncIterable<BerthEvent>, n: number): Promise<string[]> {
  const out: string[] = [];
  if (n === 0) return out;
  for await (const e of sub) {
    out.push(e.action);
    if (out.length === n) break;
  }
  return out;
}

describe('EventBus', () => {
  it('delivers events published after subscribing, in order', async () => {
    const bus = new EventBus();
    bus.publish(ev('before'));
    const sub = bus.subscribe();
    bus.publish(ev('create'));
    bus.publish(ev('start'));
    const later = take(sub, 3);
    bus.publish(ev('die'));
    assert.deepEqual(await later, ['create', 'start', 'die']);
  });

  it('filters per subscriber', async () => {
    const bus = new EventBus();
    const dies = bus.subscribe((e) => e.action === 'die');
    const c2 = bus.subscribe((e) => e.id === 'c2');
    bus.publish(ev('start', 'c1'));
    bus.publish(ev('die', 'c1'));
    bus.publish(ev('start', 'c2'));
    bus.publish(ev('die', 'c2'));
    assert.deepEqual(await take(dies, 2), ['die', 'die']);
    assert.deepEqual(await take(c2, 2), ['start', 'die']);
  });

  it('replays buffered events newer than since', async () => {
    const bus = new EventBus();
    const a = bus.publish(ev('a'));
    bus.publish(ev('b'));
    bus.publish(ev('c'));
    const sub = bus.subscribe(() => true, BigInt(a.timeNano));
    bus.publish(ev('d'));
    assert.deepEqual(await take(sub, 3), ['b', 'c', 'd']);
    const all = bus.subscribe((e) => e.action !== 'b', 0n);
    assert.deepEqual(await take(all, 3), ['a', 'c', 'd']);
  });

  it('stamps events with strictly increasing times', () => {
    const bus = new EventBus();
    let prev = 0n;
    for (let i = 0; i < 50_000; i++) {
      const t = BigInt(bus.publish(ev('tick')).timeNano);
      assert.ok(t > prev);
      prev = t;
    }
    assert.ok(BigInt(nowNano()) > prev);
    // Close to the wall clock.
    assert.ok(prev / 1_000_000n <= BigInt(Date.now()) + 1000n);
    assert.equal(bus.publish({ ...ev('given'), timeNano: '42' }).timeNano, '42');
  });

  it('closes a subscriber that falls too far behind, after what it had queued', async () => {
    const bus = new EventBus();
    const slow = bus.subscribe();
    const fast = bus.subscribe();
    let n = 0;
    const counting = (async () => {
      for await (const e of fast) {
        if (e.action === 'end') break;
        n++;
      }
    })();
    // Published in bursts with turns of the event loop between them, so the
    // fast reader keeps up while the slow one never reads.
    for (let i = 0; i < 5000; i++) {
      bus.publish(ev(`e${i}`));
      if (i % 100 === 99) await new Promise((r) => setImmediate(r));
    }
    bus.publish(ev('end'));
    await counting;
    assert.equal(n, 5000);
    assert.equal(fast.overflowed, false);
    assert.equal(slow.overflowed, true);
    let got = 0;
    for await (const _ of slow) got++;
    assert.ok(got > 0 && got < 5000);
    // Closed: later events are not delivered.
    bus.publish(ev('after'));
  });

  it('close ends an iteration that is waiting', async () => {
    const bus = new EventBus();
    const sub = bus.subscribe();
    const done = take(sub, 10);
    bus.publish(ev('one'));
    setImmediate(() => sub.close());
    assert.deepEqual(await done, ['one']);
    assert.equal(sub.overflowed, false);
    // A closed subscription gets nothing more and can be closed again.
    bus.publish(ev('two'));
    sub.close();
    assert.deepEqual(await take(sub, 1), []);
  });

  it('breaking out of the loop unsubscribes', async () => {
    const bus = new EventBus();
    const sub = bus.subscribe();
    bus.publish(ev('x'));
    assert.deepEqual(await take(sub, 1), ['x']);
    bus.publish(ev('y'));
    assert.deepEqual(await take(sub, 1), []);
  });
});
