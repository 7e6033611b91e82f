import assert from 'node:assert/strict';
import { test } from 'node:test';
import { byCodeUnit } from './order.ts';

test('byCodeUnit orders as Go sorts bytes: capitals first, punctuation by its code', () => {
  assert.deepEqual(['b', 'a', 'B', 'a-b', 'a_b', 'a1', 'A'].sort(byCodeUnit), ['A', 'B', 'a', 'a-b', 'a1', 'a_b', 'b']);
  assert.equal(byCodeUnit('x', 'x'), 0);
});

test('byCodeUnit orders ISO timestamps by time', () => {
  const times = ['2026-12-07T05:00:00.000Z', '2025-01-01T00:00:00.000Z', '2026-12-07T04:59:59.999Z'];
  assert.deepEqual(times.sort(byCodeUnit), ['2025-01-01T00:00:00.000Z', '2026-12-07T04:59:59.999Z', '2026-12-07T05:00:00.000Z']);
});
