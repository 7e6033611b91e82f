import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { acceptKey, applyMask, encodeFrame, Opcode, WebSocketConn, WsFrameReader } from './websocket.ts';

test('the accept key of RFC 6455\'s example', () => {
  assert.equal(acceptKey('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
});

test('frames: 7, 16 and 64-bit lengths, masking, split anywhere', () => {
  const mask = Buffer.from([1, 2, 3, 4]);
  for (const len of [0, 125, 126, 65535, 65536]) {
    const payload = Buffer.alloc(len, 0x5a);
    const f = encodeFrame(Opcode.BINARY, payload, { mask });
    assert.equal(f[1] & 0x7f, len < 126 ? len : len < 65536 ? 126 : 127);
    const r = new WsFrameReader(1 << 20);
    const out = [...r.push(f.subarray(0, 3)), ...r.push(f.subarray(3))];
    assert.equal(out.length, 1);
    assert.equal(out[0].masked, true);
    assert.deepEqual(out[0].payload, payload);
  }
  assert.deepEqual(applyMask(applyMask(Buffer.from('hello'), Buffer.from([9, 8, 7, 6])), Buffer.from([9, 8, 7, 6])), Buffer.from('hello'));
  assert.throws(() => new WsFrameReader(10).push(encodeFrame(Opcode.BINARY, Buffer.alloc(11))), /larger than/);
});

/** A server-side connection and the raw client socket facing it. */
async function pair(t: { after(fn: () => void): void }, maxMessage?: number): Promise<{ ws: WebSocketConn; client: net.Socket }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [sock] = (await once(server, 'connection')) as [net.Socket];
  t.after(() => {
    client.destroy();
    sock.destroy();
    server.close();
  });
  return { ws: new WebSocketConn(sock, { server: true, maxMessage }), client };
}

const mask = Buffer.from([0xa1, 0xb2, 0xc3, 0xd4]);

test('fragments make one message; a ping between them is answered with a pong', async (t) => {
  const { ws, client } = await pair(t);
  const got = once(ws, 'message');
  let answer = Buffer.alloc(0);
  const pong = new Promise<void>((resolve) =>
    client.on('data', (d: Buffer) => {
      answer = Buffer.concat([answer, d]);
      if (answer.length >= 4) resolve();
    }),
  );
  client.write(encodeFrame(Opcode.TEXT, Buffer.from('hel'), { fin: false, mask }));
  client.write(encodeFrame(Opcode.PING, Buffer.from('p!'), { mask }));
  client.write(encodeFrame(Opcode.CONTINUATION, Buffer.from('lo '), { fin: false, mask }));
  client.write(encodeFrame(Opcode.CONTINUATION, Buffer.from('wörld'), { mask }));
  const [data, binary] = (await got) as [Buffer, boolean];
  assert.equal(data.toString(), 'hello wörld');
  assert.equal(binary, false);
  await pong;
  assert.deepEqual(answer, encodeFrame(Opcode.PONG, Buffer.from('p!')), 'the pong echoes the ping, unmasked');
});

for (const [name, frame, code] of [
  ['an unmasked client frame', encodeFrame(Opcode.BINARY, Buffer.from('x')), 1002],
  ['a control frame over 125 bytes', encodeFrame(Opcode.PING, Buffer.alloc(126), { mask }), 1002],
  ['a fragmented control frame', encodeFrame(Opcode.PING, Buffer.from('x'), { fin: false, mask }), 1002],
  ['a continuation without a message', encodeFrame(Opcode.CONTINUATION, Buffer.from('x'), { mask }), 1002],
  ['reserved bits', Buffer.from([0xc2, 0x80, ...mask]), 1002],
  ['text that is not UTF-8', encodeFrame(Opcode.TEXT, Buffer.from([0xff, 0xfe]), { mask }), 1007],
] as const) {
  test(`${name} closes the connection with ${code}`, async (t) => {
    const { ws, client } = await pair(t);
    let answer = Buffer.alloc(0);
    client.on('data', (d: Buffer) => (answer = Buffer.concat([answer, d])));
    const closed = once(ws, 'close');
    client.write(frame);
    await closed;
    assert.equal(answer[0], 0x80 | Opcode.CLOSE);
    assert.equal(answer.readUInt16BE(2), code);
  });
}

test('a close is echoed and the server ends the connection', async (t) => {
  const { ws, client } = await pair(t);
  let answer = Buffer.alloc(0);
  client.on('data', (d: Buffer) => (answer = Buffer.concat([answer, d])));
  const ended = once(client, 'end');
  const closed = once(ws, 'close');
  const body = Buffer.from([0x03, 0xe8]);
  client.write(encodeFrame(Opcode.CLOSE, body, { mask }));
  await ended;
  assert.deepEqual(answer, encodeFrame(Opcode.CLOSE, body));
  client.end();
  const [code] = (await closed) as [number];
  assert.equal(code, 1000);
});

test('binary messages go out unmasked; a message over the limit is refused with 1009', async (t) => {
  const { ws, client } = await pair(t, 1000);
  let answer = Buffer.alloc(0);
  const got = new Promise<void>((resolve) =>
    client.on('data', (d: Buffer) => {
      answer = Buffer.concat([answer, d]);
      if (answer.length >= 5) resolve();
    }),
  );
  ws.send(Buffer.from([1, 2, 3]));
  await got;
  assert.deepEqual(answer.subarray(0, 5), Buffer.from([0x82, 3, 1, 2, 3]));
  answer = Buffer.alloc(0);
  const closed = once(ws, 'close');
  client.write(encodeFrame(Opcode.BINARY, Buffer.alloc(600), { fin: false, mask }));
  client.write(encodeFrame(Opcode.CONTINUATION, Buffer.alloc(600), { mask }));
  await closed;
  assert.equal(answer.readUInt16BE(2), 1009);
});
