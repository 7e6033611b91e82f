import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { createLogger } from '../core/log.ts';
import { lazyDoor } from './lazy-door.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'lazy-door-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const quiet = createLogger({ level: 'error', sink: { write: () => true } });

/** A listener on a fresh socket whose connections go through `accept`; answers what a client sent first. */
async function listen(accept: (s: net.Socket) => void): Promise<{ address: string; close(): void; sockets: Set<net.Socket> }> {
  const address = path.join(dir, `s${Math.random().toString(36).slice(2)}`);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    accept(s);
  });
  await new Promise<void>((r) => server.listen(address, r));
  return { address, sockets, close: () => (server.close(), sockets.forEach((s) => s.destroy())) };
}

function ask(address: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(address, () => c.write(text));
    let got = '';
    c.on('data', (d) => (got += d));
    c.on('close', () => resolve(got));
    // A door that closes the connection at once may do so before the write.
    c.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
  });
}

const echo = (s: net.Socket) => s.once('data', (d) => s.end(`echo ${d}`));

it('serves connections that arrived while it loaded, loading once', async () => {
  let loads = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const door = lazyDoor('test', quiet, async () => {
    loads++;
    await gate;
    return echo;
  });
  const l = await listen(door.accept);
  const answers = Promise.all([ask(l.address, 'a'), ask(l.address, 'b')]);
  // Both connections are accepted and wait, their data unread.
  while (l.sockets.size < 2) await new Promise((r) => setImmediate(r));
  release();
  assert.deepEqual(await answers, ['echo a', 'echo b']);
  assert.equal(await ask(l.address, 'c'), 'echo c');
  assert.equal(loads, 1);
  l.close();
});

it('closes the connections of a load that fails and tries again on the next one', async () => {
  let loads = 0;
  const door = lazyDoor('test', quiet, async () => {
    if (++loads === 1) throw new Error('broken');
    return echo;
  });
  const l = await listen(door.accept);
  assert.equal(await ask(l.address, 'a'), '');
  assert.equal(await ask(l.address, 'b'), 'echo b');
  assert.equal(loads, 2);
  l.close();
});

it('survives a client that goes away while the door loads', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const door = lazyDoor('test', quiet, async () => {
    await gate;
    return echo;
  });
  const l = await listen(door.accept);
  const c = net.connect(l.address);
  await new Promise((r) => c.once('connect', r));
  while (l.sockets.size < 1) await new Promise((r) => setImmediate(r));
  c.destroy();
  while (l.sockets.size > 0) await new Promise((r) => setImmediate(r));
  release();
  assert.equal(await ask(l.address, 'x'), 'echo x');
  l.close();
});
