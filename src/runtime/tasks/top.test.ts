import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { topOf, ttyName } from './top.ts';

describe('topOf', () => {
  it('describes this test process with ps -ef columns', async () => {
    const { titles, processes } = await topOf([process.pid]);
    assert.deepEqual(titles, ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']);
    assert.equal(processes.length, 1);
    const [uid, pid, ppid, c, stime, , time, cmd] = processes[0];
    assert.equal(uid, process.geteuid!() === 0 ? 'root' : String(process.geteuid!()));
    assert.equal(pid, String(process.pid));
    assert.equal(ppid, String(process.ppid));
    assert.match(c, /^\d+$/);
    assert.match(stime, /^\d\d:\d\d$/);
    assert.match(time, /^\d\d:\d\d:\d\d$/);
    assert.ok(cmd.includes('node'), cmd);
    assert.ok(cmd.includes('top.test.ts') || cmd.includes('--test'), cmd);
  });

  it('skips pids that are gone', async () => {
    assert.deepEqual((await topOf([2 ** 22 + 1])).processes, []);
  });
});

describe('ttyName', () => {
  it('decodes tty_nr as ps does', () => {
    assert.equal(ttyName(0), '?');
    assert.equal(ttyName((136 << 8) | 3), 'pts/3');
    // pts/300: minor 44 on major 137.
    assert.equal(ttyName((137 << 8) | 44), 'pts/300');
    assert.equal(ttyName((4 << 8) | 1), 'tty1');
  });
});
