import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
 * In a Node of its own: a worker thread frees an 8 MiB block (raising glibc's
 * dynamic thresholds to mmap 8 MiB, trim 16 MiB), then fills and frees a
 * 4 MiB one, which comes from its arena's heap and is left as the free top.
 * The main thread then runs the trim berthd runs after a burst. Returns
 * whether that block was in the main arena's heap (the only one whose top
 * malloc_trim returns) and the RSS (KiB) still held after the trim, with
 * glibc's arenas as they come or with bin/berthd's limit.
 */
function afterTrim(oneArena: boolean): { inMainHeap: boolean; heldKiB: number } {
  const sys = JSON.stringify(new URL('./sys.ts', import.meta.url).href);
  const koffiFrom = JSON.stringify(import.meta.url);
  const script = `
    import { readFileSync } from 'node:fs';
    import { Worker } from 'node:worker_threads';
    import { mallocTrim } from ${sys};
    const rss = () => Number(/RssAnon:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
    const worker = new Worker(\`
      import { readFileSync } from 'node:fs';
      import { parentPort } from 'node:worker_threads';
      import { createRequire } from 'node:module';
      const koffi = createRequire(${koffiFrom})('koffi');
      const libc = koffi.load('libc.so.6');
      const malloc = libc.func('void *malloc(size_t n)');
      const free = libc.func('void free(void *p)');
      const memset = libc.func('void *memset(void *p, int c, size_t n)');
      free(malloc(8 << 20));
      parentPort.once('message', () => {
        const p = malloc(4 << 20);
        const at = koffi.address(p);
        const heap = readFileSync('/proc/self/maps', 'utf8').split(String.fromCharCode(10)).find((l) => l.endsWith('[heap]'));
        const [lo, hi] = (heap ?? '0-0').split(' ')[0].split('-').map((x) => BigInt('0x' + x));
        memset(p, 1, 4 << 20);
        free(p);
        parentPort.postMessage(at >= lo && at < hi);
      });
      parentPort.postMessage('ready');
    \`, { eval: true });
    await new Promise((r) => worker.once('message', r));
    mallocTrim();
    const before = rss();
    worker.postMessage('go');
    const inMainHeap = await new Promise((r) => worker.once('message', r));
    mallocTrim();
    process.stdout.write(JSON.stringify({ inMainHeap, heldKiB: rss() - before }));
    process.exit(0);
  `;
  const { MALLOC_ARENA_MAX: _inherited, ...env } = process.env;
  if (oneArena) env.MALLOC_ARENA_MAX = berthdArenaMax();
  const out = execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script], { encoding: 'utf8', env });
  return JSON.parse(out) as { inMainHeap: boolean; heldKiB: number };
}

/** The arena limit bin/berthd starts berthd with. */
function berthdArenaMax(): string {
  const script = readFileSync(new URL('../../bin/berthd', import.meta.url), 'utf8');
  const value = /^export MALLOC_ARENA_MAX=(\d+)$/m.exec(script)?.[1];
  assert.ok(value, 'bin/berthd sets MALLOC_ARENA_MAX');
  return value;
}

test("berthd's one malloc arena: a block a thread freed goes back to the kernel at the trim after a burst", () => {
  // Without the limit the worker's block is in an arena of its own, whose top the trim leaves resident.
  assert.equal(afterTrim(false).inMainHeap, false);
  const one = afterTrim(true);
  assert.equal(one.inMainHeap, true);
  assert.ok(one.heldKiB < 1 << 10, `${one.heldKiB} KiB still resident after the trim`);
});
