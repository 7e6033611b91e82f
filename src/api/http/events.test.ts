import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rootCtx } from '../../core/context.ts';
import { EventBus, type BerthEvent } from '../../core/events.ts';
import { eventTimeNano, matchEvent, queryEvents } from './events.ts';

const ev = (over: Partial<BerthEvent>): BerthEvent => ({ type: 'container', action: 'start', namespace: 'default', id: 'abc123', attributes: { name: 'web', image: 'busybox', app: 'x' }, timeNano: '1', ...over });

test("docker's event times as nanoseconds", () => {
  assert.equal(eventTimeNano('1700000000'), 1_700_000_000_000_000_000n);
  assert.equal(eventTimeNano('1700000000.5'), 1_700_000_000_500_000_000n);
  assert.equal(eventTimeNano('1700000000.000000001'), 1_700_000_000_000_000_001n);
  assert.throws(() => eventTimeNano('10m'), (err: { kind?: string }) => err.kind === 'InvalidArgument');
});

test("docker's event filters", () => {
  assert.ok(matchEvent(ev({}), { type: ['container'], event: ['start', 'die'], container: ['web'], label: ['app=x'] }));
  assert.ok(matchEvent(ev({ action: 'health_status: healthy' }), { event: ['health_status'] }));
  assert.ok(matchEvent(ev({}), { container: ['abc'] }));
  assert.ok(!matchEvent(ev({}), { container: ['other'] }));
  assert.ok(!matchEvent(ev({}), { event: ['die'] }));
  // Labels are all required, as dockerd's MatchKVList; other keys take any of their values.
  assert.ok(matchEvent(ev({}), { label: ['app=x', 'name=web'] }));
  assert.ok(!matchEvent(ev({}), { label: ['app=x', 'other'] }));
  assert.ok(matchEvent(ev({ type: 'network', id: 'n1', attributes: { name: 'net' } }), { network: ['net'] }));
});

test('a query replays since, stops at until, and checks its filters first', async () => {
  const bus = new EventBus();
  const ctx = rootCtx();
  bus.publish({ type: 'container', action: 'create', namespace: 'default', id: 'a', attributes: {}, timeNano: '1000000000' });
  bus.publish({ type: 'container', action: 'start', namespace: 'default', id: 'a', attributes: {}, timeNano: '2000000000' });
  bus.publish({ type: 'container', action: 'start', namespace: 'other', id: 'b', attributes: {}, timeNano: '2500000000' });
  bus.publish({ type: 'container', action: 'die', namespace: 'default', id: 'a', attributes: {}, timeNano: '3000000000' });
  const got: string[] = [];
  for await (const e of queryEvents(ctx, bus, { since: '0', until: '2.9' })) got.push(e.action);
  assert.deepEqual(got, ['create', 'start']);
  assert.throws(() => queryEvents(ctx, bus, { filters: { bogus: ['1'] } }), /invalid filter 'bogus'/);
});
