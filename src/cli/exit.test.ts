import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';

const exitModule = path.join(import.meta.dirname, 'exit.ts');

/** A child that writes `bytes` to a pipe nobody reads yet, says so on stderr, then exits through exitOnceFlushed. */
const child = (bytes: number) => `
import { exitOnceFlushed } from ${JSON.stringify(exitModule)};
const chunk = Buffer.alloc(65536, 97);
for (let n = 0; n < ${bytes}; n += chunk.length) process.stdout.write(chunk.subarray(0, Math.min(chunk.length, ${bytes} - n)));
process.stderr.write('exiting\\n');
exitOnceFlushed(3, [process.stdout, process.stderr]);
`;

describe('exitOnceFlushed', () => {
  it('exits with the code only once a pipe its reader left full has taken every byte', async () => {
    const bytes = (3 << 20) + 7;
    const p = spawn(process.execPath, ['--input-type=module', '-e', child(bytes)], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.pause();
    // Read nothing until the child has written everything and asked to exit: its pipe is full, the rest queued.
    await new Promise<void>((resolve) => {
      let err = '';
      p.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('exiting')) resolve();
      });
    });
    let got = 0;
    p.stdout.on('data', (d: Buffer) => (got += d.length));
    p.stdout.resume();
    const code = await new Promise<number | null>((resolve) => p.once('close', resolve));
    assert.equal(code, 3);
    assert.equal(got, bytes);
  });
});
