import assert from 'node:assert/strict';
import type { Stats } from 'node:fs';
import { test } from 'node:test';
import { FileHashCache, RACY_MS } from './hash-cache.ts';

const stat = (o: Partial<Stats>): Stats => ({ dev: 1, ino: 10, size: 5, mtimeMs: 1000, ctimeMs: 1000, ...o }) as Stats;

test('a hash is found only while every stat field it was taken with is the same', () => {
  const c = new FileHashCache(10);
  const st = stat({});
  c.put('/a', st, 'h1', 1000 + RACY_MS + 1);
  assert.equal(c.get('/a', st), 'h1');
  for (const change of [{ dev: 2 }, { ino: 11 }, { size: 6 }, { mtimeMs: 1001 }, { ctimeMs: 1000.5 }]) assert.equal(c.get('/a', stat(change)), undefined, JSON.stringify(change));
  assert.equal(c.get('/b', st), undefined);
});

test('a file changed less than RACY_MS before it was read is not remembered, and forgets what was', () => {
  const c = new FileHashCache(10);
  c.put('/a', stat({}), 'old', 5000);
  c.put('/a', stat({ ctimeMs: 4500 }), 'new', 5000);
  assert.equal(c.get('/a', stat({})), undefined);
  assert.equal(c.get('/a', stat({ ctimeMs: 4500 })), undefined);
  assert.equal(c.size, 0);
});

test('the least recently used go first past the bound', () => {
  const c = new FileHashCache(2);
  const st = stat({});
  c.put('/a', st, 'a', 9000);
  c.put('/b', st, 'b', 9000);
  assert.equal(c.get('/a', st), 'a');
  c.put('/c', st, 'c', 9000);
  assert.equal(c.get('/b', st), undefined);
  assert.equal(c.get('/a', st), 'a');
  assert.equal(c.get('/c', st), 'c');
});
