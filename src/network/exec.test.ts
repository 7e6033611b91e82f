import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rootCtx } from '../core/context.ts';
import { kindOf } from '../core/errors.ts';
import { run, spawnCollect } from './exec.ts';

describe('spawnCollect (posix_spawn with pipes)', () => {
  it('feeds stdin, collects stdout and stderr, and reports the exit code', async () => {
    const r = await spawnCollect('/bin/sh', ['-c', 'cat; echo oops >&2; exit 3'], { input: 'hello' });
    assert.deepEqual(r, { code: 3, stdout: 'hello', stderr: 'oops\n' });
  });

  it('adds env to the daemon\'s environment and finds names in PATH', async () => {
    const r = await spawnCollect('sh', ['-c', 'echo "$CNI_COMMAND:${PATH:+path}"'], { env: { CNI_COMMAND: 'ADD' } });
    assert.equal(r.stdout, 'ADD:path\n');
  });

  it('reports death by a signal as 128 + the signal', async () => {
    assert.equal((await spawnCollect('/bin/sh', ['-c', 'kill -9 $$'])).code, 137);
  });

  it('rejects for a missing program, and run() names it', async () => {
    await assert.rejects(spawnCollect('/nonexistent/prog', []), (e) => (e as NodeJS.ErrnoException).code === 'ENOENT');
    await assert.rejects(run(rootCtx(), 'no-such-program-here', []), (e) => kindOf(e) === 'Unknown' && /no-such-program-here/.test((e as Error).message));
  });

  it('on abort kills the child and rejects at once, even when a grandchild holds its pipes', async () => {
    const ac = new AbortController();
    const p = spawnCollect('/bin/sh', ['-c', 'sleep 2 & cat >/dev/null; sleep 30'], { signal: ac.signal, input: 'x' });
    setTimeout(() => ac.abort(), 50);
    const t0 = Date.now();
    await assert.rejects(p, (e) => (e as Error).name === 'AbortError');
    assert.ok(Date.now() - t0 < 5000);
  });
});
