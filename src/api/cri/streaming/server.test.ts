import assert from 'node:assert/strict';
import { Duplex, PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../../core/log.ts';
import { httpUpgrade, spdyConnect, wsConnect } from '../../../../test/helpers/streaming.ts';
import type { ProcessIO } from './remotecommand.ts';
import { StreamingServer, type StreamingRuntime, type StreamRequest } from './server.ts';

/**
 * The server's HTTP side with a stand-in runtime (the integration test
 * runs real containers): token lifetime, handshakes refused with kubelet's
 * statuses, and the creation timeout.
 */
function fakeProcess(): ProcessIO {
  // Output as the monitor frames it: one stdout frame, then the end.
  const frame = Buffer.concat([Buffer.from([1, 0, 0, 0, 0, 0, 0, 3]), Buffer.from('hi\n')]);
  const stream = Duplex.from({ readable: Duplex.from(async function* () { yield frame; }), writable: new PassThrough() });
  return { stream, tty: false, resize: async () => {}, closeStdin: async () => {}, wait: async () => 0, abort: async () => {} };
}

const runtime: StreamingRuntime = {
  exec: async () => fakeProcess(),
  attach: async () => fakeProcess(),
  dial: async () => {
    throw new Error('no pods here');
  },
};

async function server(t: { after(fn: () => Promise<void>): void }, opts: { tokenTtlMs?: number; creationTimeoutMs?: number; idleTimeoutMs?: number; runtime?: StreamingRuntime } = {}): Promise<StreamingServer> {
  const s = new StreamingServer({ address: '127.0.0.1', port: 0, runtime, log: createLogger({ level: 'error' }), ...opts });
  await s.start();
  t.after(() => s.close());
  return s;
}

const exec: StreamRequest = { kind: 'exec', containerId: 'c', cmd: ['true'], stdin: false, stdout: true, stderr: false, tty: false };
const spdy = { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' };

test('an expired token is 404, as an unknown one', async (t) => {
  const s = await server(t, { tokenTtlMs: 1 });
  const url = s.url(exec);
  const issued = Date.now();
  while (Date.now() - issued < 5) await new Promise((r) => setTimeout(r, 2));
  const r = await httpUpgrade(url, spdy);
  assert.equal(r.status, 404);
  assert.equal(r.body, '404 page not found\n');
});

test('SPDY handshakes kubelet refuses are refused the same way', async (t) => {
  const s = await server(t);
  const noVersion = await httpUpgrade(s.url(exec), { Connection: 'Upgrade', Upgrade: 'SPDY/3.1' });
  assert.equal(noVersion.status, 400);
  assert.match(noVersion.body, /X-Stream-Protocol-Version does not exist/);
  const plain = await httpUpgrade(s.url(exec), { 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' }, 'GET');
  assert.equal(plain.status, 400);
  assert.match(plain.body, /missing upgrade headers/);
  const pf = await httpUpgrade(s.url({ kind: 'portforward', podSandboxId: 'p', ports: [] }), spdy);
  assert.equal(pf.status, 403, 'a remote-command protocol on a port-forward URL');
  assert.equal(pf.headers['x-accepted-stream-protocol-versions'], 'portforward.k8s.io');
  assert.equal((await httpUpgrade(`${s.baseUrl}/logs/abcdefgh`, spdy)).status, 404);
  // The negotiated protocol is the client's first one the server knows.
  const { protocol, client } = await spdyConnect(s.url(exec), ['v5.channel.k8s.io', 'v3.channel.k8s.io', 'v4.channel.k8s.io']);
  assert.equal(protocol, 'v3.channel.k8s.io');
  client.close();
});

test('WebSocket handshakes: version 13, a valid key, a known subprotocol', async (t) => {
  const s = await server(t);
  const key = 'dGhlIHNhbXBsZSBub25jZQ==';
  const base = { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': key };
  assert.equal((await httpUpgrade(s.url(exec), { ...base, 'Sec-WebSocket-Version': '8' }, 'GET')).status, 400);
  assert.equal((await httpUpgrade(s.url(exec), { ...base, 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'short' }, 'GET')).status, 400);
  const unknown = await httpUpgrade(s.url(exec), { ...base, 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Protocol': 'v9.channel.k8s.io' }, 'GET');
  assert.equal(unknown.status, 403);
  const ok = await httpUpgrade(s.url(exec), { ...base, 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Protocol': 'nope, v5.channel.k8s.io' }, 'GET');
  assert.equal(ok.status, 101);
  assert.equal(ok.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  assert.equal(ok.headers['sec-websocket-protocol'], 'v5.channel.k8s.io');
  ok.socket.destroy();
  // No subprotocol at all is kubelet's "" (binary channels).
  const none = await wsConnect(s.url(exec), []);
  const msgs: Buffer[] = [];
  none.on('message', (m: Buffer) => msgs.push(m));
  await new Promise((r) => none.once('close', r));
  assert.deepEqual(msgs[0], Buffer.from([1]), 'the empty "ready" message on stdout first');
  assert.ok(msgs.some((m) => m.equals(Buffer.from([1, ...Buffer.from('hi\n')]))));
});

test('a SPDY client that never opens its streams is dropped after the creation timeout', async (t) => {
  const s = await server(t, { creationTimeoutMs: 50 });
  const { client } = await spdyConnect(s.url(exec), ['v4.channel.k8s.io']);
  await client.open({ streamtype: 'error' });
  await new Promise((r) => client.once('close', r));
  while (s.connections > 0) await new Promise((r) => setTimeout(r, 10));
});

test('a connection idle past the idle timeout is closed', async (t) => {
  // A process that never writes nor ends: only the timeout can end the session.
  const silent = new Duplex({ read() {}, write: (_c, _e, cb) => cb() });
  let aborted = false;
  const quiet: StreamingRuntime = { ...runtime, attach: async () => ({ ...fakeProcess(), stream: silent, abort: async () => void (aborted = true) }) };
  const s = await server(t, { idleTimeoutMs: 100, runtime: quiet });
  const ws = await wsConnect(s.url({ kind: 'attach', containerId: 'c', stdin: true, stdout: false, stderr: false, tty: false }), ['v5.channel.k8s.io']);
  await new Promise((r) => ws.once('close', r));
  // The server lets go of the process once its side of the connection is gone too.
  while (!silent.destroyed) await new Promise((r) => setTimeout(r, 5));
  assert.equal(aborted, true);
});
