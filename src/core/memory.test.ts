import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { releaseMemoryNow, releaseMemorySoon } from './memory.ts';

const holder = globalThis as { gc?: () => void };
const hadGc = holder.gc;
afterEach(() => {
  holder.gc = hadGc;
});

test('a burst of work ends in one collection, once it has been quiet for a while', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let collections = 0;
  holder.gc = () => void collections++;
  releaseMemorySoon();
  t.mock.timers.tick(500);
  releaseMemorySoon();
  t.mock.timers.tick(999);
  assert.equal(collections, 0, 'the second call restarted the wait');
  t.mock.timers.tick(1);
  assert.equal(collections, 1);
  t.mock.timers.tick(5000);
  assert.equal(collections, 1);
});

test('without an exposed gc the heap is still trimmed', () => {
  delete holder.gc;
  assert.doesNotThrow(() => releaseMemoryNow());
});
