import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestCache } from './tokens.ts';

test('a token gives its request once', () => {
  const c = new RequestCache<string>();
  const t = c.insert('exec a');
  assert.match(t, /^[A-Za-z0-9_-]{8}$/);
  assert.equal(c.consume(t), 'exec a');
  assert.equal(c.consume(t), undefined);
  assert.equal(c.consume('nothere1'), undefined);
});

test('a token expires after its lifetime (kubelet: a minute)', () => {
  let now = 1_000_000;
  const c = new RequestCache<string>({ now: () => now });
  const early = c.insert('early');
  const late = c.insert('late');
  now += 60_000;
  assert.equal(c.consume(early), 'early', 'still valid at exactly the lifetime');
  now += 1;
  assert.equal(c.consume(late), undefined);
  // Expired entries are dropped at the next insert, so they do not count against the limit.
  const d = new RequestCache<string>({ now: () => now, maxInFlight: 2 });
  d.insert('1');
  d.insert('2');
  assert.throws(() => d.insert('3'), (e: { kind?: string; message: string }) => e.kind === 'ResourceExhausted' && /in-flight/.test(e.message));
  now += 60_001;
  d.insert('3');
  assert.equal(d.size, 1);
});
