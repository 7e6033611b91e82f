import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
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

/**
 * In a Node of its own: a freed 8 MiB block raises glibc's dynamic thresholds
 * (mmap 8 MiB, trim 16 MiB), so a 4 MiB block after it comes from the heap
 * and stays resident once freed. With the thresholds held it is mmapped
 * and unmapped. Returns the RSS (KiB) still held after that free.
 */
function heldAfterFree(hold: boolean): number {
  const script = `
    import { createRequire } from 'node:module';
    import { readFileSync } from 'node:fs';
    import { holdMallocThresholds } from ${JSON.stringify(new URL('./memory.ts', import.meta.url).href)};
    const koffi = createRequire(${JSON.stringify(import.meta.url)})('koffi');
    const libc = koffi.load('libc.so.6');
    const malloc = libc.func('void *malloc(size_t n)');
    const free = libc.func('void free(void *p)');
    const memset = libc.func('void *memset(void *p, int c, size_t n)');
    const rss = () => Number(/RssAnon:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
    if (${hold}) holdMallocThresholds();
    free(malloc(8 << 20));
    const before = rss();
    const p = malloc(4 << 20);
    memset(p, 1, 4 << 20);
    free(p);
    process.stdout.write(String(rss() - before));
  `;
  const out = execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script], { encoding: 'utf8' });
  return Number(out);
}

test('held malloc thresholds: a large block freed after a larger one goes back to the kernel', () => {
  assert.ok(heldAfterFree(false) >= 3 << 10, 'without them glibc keeps it (the case this guards against)');
  assert.ok(heldAfterFree(true) < 1 << 10);
});
