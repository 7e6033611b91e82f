import assert from 'node:assert/strict';
import { test } from 'node:test';
import { byCodeUnit, naturalOrder } from './order.ts';

test('byCodeUnit orders as Go sorts bytes: capitals first, punctuation by its code', () => {
  assert.deepEqual(['b', 'a', 'B', 'a-b', 'a_b', 'a1', 'A'].sort(byCodeUnit), ['A', 'B', 'a', 'a-b', 'a1', 'a_b', 'b']);
  assert.equal(byCodeUnit('x', 'x'), 0);
});

test('byCodeUnit orders ISO timestamps by time', () => {
  const times = ['2026-12-07T05:00:00.000Z', '2025-01-01T00:00:00.000Z', '2026-12-07T04:59:59.999Z'];
  assert.deepEqual(times.sort(byCodeUnit), ['2025-01-01T00:00:00.000Z', '2026-12-07T04:59:59.999Z', '2026-12-07T05:00:00.000Z']);
});

test('naturalOrder sorts numbers in names by value, digits first, as docker network ls does (fewer leading zeros first, decided at the number)', () => {
  assert.deepEqual(['net10', 'net2', 'net1', 'bridge', 'net02', 'Net3', 'net', 'host', 'net2a', 'none'].sort(naturalOrder), ['Net3', 'bridge', 'host', 'net', 'net1', 'net2', 'net2a', 'net02', 'net10', 'none']);
  assert.deepEqual(['a-b', 'a1', 'a_b', 'a'].sort(naturalOrder), ['a', 'a1', 'a-b', 'a_b']);
  assert.equal(naturalOrder('x7', 'x7'), 0);
  assert.equal(naturalOrder('99999999999999999999', '100000000000000000000'), -1, 'longer than a double holds');
});
