import assert from 'node:assert/strict';
import { Duplex, PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import type { ApiClient } from '../api/native/client.ts';
import { attachStreams } from './attach.ts';
import type { CommandEnv } from './command.ts';

/** A tty attach over an in-memory socket: what the container received, and whether we detached. */
async function typeInto(chunks: Buffer[], detachKeys?: number[]): Promise<{ sent: Buffer; detached: boolean }> {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const received: Buffer[] = [];
  const sock = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      received.push(chunk);
      cb();
    },
    final(cb) {
      this.push(null);
      cb();
    },
  });
  const env = { stdin, stdout, stderr: new PassThrough(), env: {}, cwd: '/', stdinIsTTY: () => false, onSignal: () => () => {}, client: () => ({}) as ApiClient } as unknown as CommandEnv;
  const a = attachStreams(env, {} as ApiClient, sock, { tty: true, stdin: true, detachKeys });
  for (const c of chunks) stdin.write(c);
  stdin.end();
  const { detached } = await a.done;
  return { sent: Buffer.concat(received), detached };
}

describe('attachStreams detach keys', () => {
  it('passes input through and detaches on ctrl-p ctrl-q', async () => {
    const r = await typeInto([Buffer.from('ls\r'), Buffer.from([0x10]), Buffer.from([0x11, 0x61])]);
    assert.equal(r.detached, true);
    assert.equal(r.sent.toString(), 'ls\r');
  });

  it('sends a broken sequence on, and still sees one that starts inside it', async () => {
    const r = await typeInto([Buffer.from([0x10, 0x61, 0x10, 0x10, 0x11])]);
    assert.equal(r.detached, true);
    assert.deepEqual([...r.sent], [0x10, 0x61, 0x10]);
  });

  it('honours custom keys and ends without detaching at end of input', async () => {
    const r = await typeInto([Buffer.from('x\x01y')], [0x01, 0x02]);
    assert.equal(r.detached, false);
    assert.equal(r.sent.toString(), 'x\x01y');
  });
});
