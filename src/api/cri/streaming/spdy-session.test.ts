import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { collect, SpdyClient } from '../../../../test/helpers/streaming.ts';
import { FrameType } from './spdy-frames.ts';
import { SpdySession, type SpdyStream } from './spdy-session.ts';

/** A server session and the test client (its own framing, real zlib) on a loopback connection. */
async function pair(t: { after(fn: () => void): void }, accept?: (h: Record<string, string[]>) => string | undefined) {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const sock = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [conn] = (await once(server, 'connection')) as [net.Socket];
  t.after(() => {
    sock.destroy();
    conn.destroy();
    server.close();
  });
  return { session: new SpdySession(conn, { server: true, accept }), client: new SpdyClient(sock, Buffer.alloc(0)) };
}

test('streams: headers arrive, data flows both ways, FIN is a half-close', async (t) => {
  const { session, client } = await pair(t);
  const seen: string[] = [];
  session.on('stream', (s: SpdyStream) => {
    seen.push(`${s.id}:${s.header('streamType')}`);
    s.pipe(s); // echo, ending when the client ends
  });
  const a = await client.open({ streamtype: 'stdout', port: '80' });
  const b = await client.open({ streamtype: 'stderr', port: '80' });
  await Promise.all([a.replied, b.replied]);
  a.write('hello ');
  a.write('world');
  a.end();
  b.write('x'.repeat(100_000));
  b.end();
  assert.equal((await collect(a.data)).toString(), 'hello world');
  assert.equal((await collect(b.data)).toString().length, 100_000);
  assert.deepEqual(seen, ['1:stdout', '3:stderr']);
  assert.ok(client.frames.some((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0), 'the session window is given back');
  await new Promise((r) => setImmediate(r));
  assert.equal(session.streamCount, 0, 'streams finished on both sides are gone');
});

test('a refused stream is reset with REFUSED_STREAM; a ping is echoed', async (t) => {
  const { session, client } = await pair(t, (h) => (h['streamtype']?.[0] === 'bogus' ? 'no' : undefined));
  const refused = once(session, 'refused');
  const rst = once(client, 'rst');
  const s = await client.open({ streamtype: 'bogus' });
  assert.deepEqual(await rst, [s.id, 3]);
  assert.equal((await refused)[1], 'no');
  const pong = once(client, 'ping');
  client.ping(7);
  assert.deepEqual(await pong, [7]);
});

test('a reset by the client ends the stream on the server', async (t) => {
  const { session, client } = await pair(t);
  const got = once(session, 'stream');
  const s = await client.open({ streamtype: 'stdin' });
  const [stream] = (await got) as [SpdyStream];
  const closed = once(stream, 'close');
  s.rst();
  await closed;
  assert.equal(stream.resetByPeer, true);
});

for (const [name, frame] of [
  ['a stream id of the server\'s parity', 'even'],
  ['a control frame larger than the limit', 'huge'],
] as const) {
  test(`${name} ends the session with GOAWAY PROTOCOL_ERROR`, async (t) => {
    const { session, client } = await pair(t);
    const errored = once(session, 'protocolError');
    const goaway = once(client, 'goaway');
    // Listened for from the start: the server may close before the GOAWAY is awaited.
    const closed = once(client, 'close');
    if (frame === 'huge') {
      const h = Buffer.alloc(8);
      h.writeUInt32BE(0x80030001, 0);
      h.writeUInt32BE(0x00ffffff, 4);
      client.raw(h);
    } else {
      // A SYN_STREAM for stream 2 with an empty block (the server's inflater first needs zlib's header; send a real one).
      await client.open({ a: 'b' });
      const p = Buffer.alloc(10);
      p.writeUInt32BE(2, 0);
      const h = Buffer.alloc(8);
      h.writeUInt32BE(0x80030001, 0);
      h.writeUInt32BE(10 + 5, 4);
      client.raw(Buffer.concat([h, p, Buffer.from([0, 0, 0, 0xff, 0xff])]));
    }
    await errored;
    assert.deepEqual(await goaway, [1]);
    await closed;
  });
}
