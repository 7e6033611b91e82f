import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { readUserFile } from './user-file.ts';

describe('readUserFile', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-user-file-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a regular file', async () => {
    writeFileSync(path.join(dir, 'app.env'), 'A=1\nB=2\n');
    assert.equal(await readUserFile(path.join(dir, 'app.env')), 'A=1\nB=2\n');
  });

  it('refuses a device, a directory and a FIFO by name, without waiting for a writer', async () => {
    await assert.rejects(readUserFile('/dev/zero'), { kind: 'InvalidArgument', message: 'open /dev/zero: not a regular file' });
    await assert.rejects(readUserFile(dir, { name: 'the-dir' }), { message: 'open the-dir: not a regular file' });
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    await assert.rejects(readUserFile(fifo, { name: 'fifo' }), { message: 'open fifo: not a regular file' });
  });

  it('refuses a file over the limit and names a missing one as docker does', async () => {
    writeFileSync(path.join(dir, 'big'), Buffer.alloc(2048, 'x'));
    await assert.rejects(readUserFile(path.join(dir, 'big'), { limit: 1024, name: 'big' }), { message: 'read big: larger than the 1024-byte limit' });
    // /proc files claim size 0: the limit holds while reading too.
    await assert.rejects(readUserFile('/proc/self/maps', { limit: 16 }), { kind: 'InvalidArgument' });
    await assert.rejects(readUserFile(path.join(dir, 'nope.env'), { name: 'nope.env' }), { message: 'open nope.env: no such file or directory' });
  });

  it('stops when its signal aborts', async () => {
    const abort = new AbortController();
    abort.abort(Object.assign(new Error('client went away'), { kind: 'Canceled' }));
    await assert.rejects(readUserFile(path.join(dir, 'app.env'), { signal: abort.signal }), /client went away/);
  });
});
