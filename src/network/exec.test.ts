import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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

  it('an abort that comes after the child has closed its pipes and exited, before it is reaped, leaves its result standing', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-exec-'));
    try {
      const pidFile = path.join(dir, 'pid');
      const ac = new AbortController();
      const p = spawnCollect('/bin/sh', ['-c', `echo $$ > ${pidFile}.tmp; mv ${pidFile}.tmp ${pidFile}; echo done; exec >&- 2>&-; sleep 0.2; exit 7`], { signal: ac.signal });
      while (!existsSync(pidFile)) await new Promise((r) => setTimeout(r, 5));
      const pid = Number(readFileSync(pidFile, 'utf8'));
      // The child's pipes closed (no fd 1 left in it), then a few turns of the loop for berthd's side to see them close.
      while (existsSync(`/proc/${pid}/fd/1`)) await new Promise((r) => setTimeout(r, 5));
      for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
      // The loop held until the child has exited (a zombie, or reaped by a poll whose answer waits for the loop): nothing can reap it in between.
      const nap = new Int32Array(new SharedArrayBuffer(4));
      while (!exited(pid)) Atomics.wait(nap, 0, 0, 5);
      ac.abort();
      const r = await p;
      assert.equal(r.code, 7);
      assert.equal(r.stdout, 'done\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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

/** Whether `pid` has exited: a zombie, or gone. */
function exited(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}
