import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { silentLogger } from '../../core/log.ts';
import { acceptConnection, AuthorityRewriter, GreetingScanner, isValidAuthority, scanGreeting } from './authority-front.ts';
import { encodeLiteralBlock, HpackDecoder, huffmanEncode } from './hpack.ts';
import { createCriServer, CRI_PROTO_PATH, PROTO_LOADER_OPTIONS } from './server.ts';
import type { CriDeps } from './types.ts';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** Splits a byte stream into frames (after the preface). */
function frames(buf: Buffer): { type: number; flags: number; stream: number; payload: Buffer }[] {
  const out = [];
  for (let pos = 0; pos < buf.length; ) {
    const length = buf.readUIntBE(pos, 3);
    out.push({ type: buf[pos + 3]!, flags: buf[pos + 4]!, stream: buf.readUInt32BE(pos + 5), payload: buf.subarray(pos + 9, pos + 9 + length) });
    pos += 9 + length;
  }
  return out;
}

describe('CRI authority front', () => {
  it('knows which authorities nghttp2 refuses', () => {
    for (const ok of ['localhost', 'localhost:10010', '[::1]:80', '%2Frun%2Fcri.sock', "a!$&'()*+,;=~_-.b", '']) assert.ok(isValidAuthority(ok), ok);
    for (const bad of ['/run/berth/cri.sock', 'unix:///x', 'user@host', 'a b', 'a?b', 'a#b', 'host\u00e9']) assert.ok(!isValidAuthority(bad), bad);
  });

  it("agrees with Node's own HTTP/2 server on every printable character", async () => {
    const server = http2.createServer((_req, res) => res.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const session = http2.connect(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
    try {
      for (let c = 0x21; c < 0x7f; c++) {
        const authority = `a${String.fromCharCode(c)}b`;
        const served = await new Promise<boolean>((resolve) => {
          const req = session.request({ ':path': '/', ':authority': authority });
          req.on('response', () => resolve(true));
          req.on('error', () => resolve(false));
          req.on('close', () => resolve(req.rstCode === 0));
          req.resume();
          req.end();
        });
        assert.equal(isValidAuthority(authority), served, authority);
      }
    } finally {
      session.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('rewrites a socket path in :authority (Huffman, indexed, split over CONTINUATION) and re-encodes later blocks', () => {
    const path1 = '/run/berth/cri.sock';
    // First request: :authority as a Huffman literal with incremental indexing (name index 1), padded, in two frames.
    const authority = huffmanEncode(Buffer.from(path1));
    const block1 = Buffer.concat([Buffer.from([0x83, 0x86, 0x41, 0x80 | authority.length]), authority, Buffer.from([0x44, 0x05]), Buffer.from('/a/Vb')]);
    const padded = Buffer.concat([Buffer.from([3]), block1.subarray(0, 4), Buffer.alloc(3)]);
    const input = Buffer.concat([
      PREFACE,
      frame(0x4, 0, 0, Buffer.alloc(0)),
      frame(0x1, 0x08, 1, padded),
      frame(0x9, 0x04, 1, block1.subarray(4)),
      frame(0x0, 0x01, 1, Buffer.from('payload')),
      // Second request: :authority by its dynamic index (62), :path by the next (62 was pushed to 63 by :path).
      frame(0x1, 0x05, 3, Buffer.from([0x83, 0x86, 0xbf, 0xbe])),
    ]);
    const rw = new AuthorityRewriter();
    // Byte by byte, so that every boundary falls inside a chunk.
    const out = Buffer.concat([...input].flatMap((b) => rw.push(Buffer.from([b]))));
    assert.equal(rw.rewritten, 2);
    assert.deepEqual(out.subarray(0, PREFACE.length), PREFACE);
    const fs = frames(out.subarray(PREFACE.length));
    assert.deepEqual(fs.map((f) => [f.type, f.flags, f.stream]), [[4, 0, 0], [1, 0x04, 1], [0, 1, 1], [1, 0x05, 3]]);
    assert.equal(fs[2]!.payload.toString(), 'payload');
    const server = new HpackDecoder();
    const req = (i: number) => server.decode(fs[i]!.payload).map((f) => [f.name, f.value]);
    assert.deepEqual(req(1), [[':method', 'POST'], [':scheme', 'http'], [':authority', 'localhost'], [':path', '/a/Vb']]);
    assert.deepEqual(req(3), [[':method', 'POST'], [':scheme', 'http'], [':authority', 'localhost'], [':path', '/a/Vb']]);
    assert.equal(server.dynamicTable.size, 0, 'the server table is left alone');
  });

  it('passes blocks through untouched while none needs a change, and large blocks go out in CONTINUATIONs', () => {
    const ok = encodeLiteralBlock([{ name: ':authority', value: 'localhost' }]);
    const rw = new AuthorityRewriter();
    const input = Buffer.concat([PREFACE, frame(0x1, 0x04, 1, ok)]);
    assert.deepEqual(Buffer.concat(rw.push(input)), input);
    const big = encodeLiteralBlock([{ name: ':authority', value: '/x' }, { name: 'x-big', value: 'v'.repeat(40_000) }]);
    const out = Buffer.concat(rw.push(frame(0x1, 0x04, 3, big)));
    const fs = frames(out);
    assert.deepEqual(fs.map((f) => [f.type, f.flags]), [[1, 0], [9, 0], [9, 0x04]]);
    assert.ok(fs.every((f) => f.payload.length <= 16_384));
  });

  it('refuses malformed frames', () => {
    const rw = () => {
      const r = new AuthorityRewriter();
      r.push(PREFACE);
      return r;
    };
    assert.throws(() => rw().push(frame(0x9, 0x04, 1, Buffer.from([0x82]))), /CONTINUATION without/);
    assert.throws(() => rw().push(Buffer.concat([frame(0x1, 0, 1, Buffer.from([0x82])), frame(0x0, 0, 1, Buffer.alloc(1))])), /inside a header block/);
    assert.throws(() => rw().push(frame(0x1, 0x0c, 1, Buffer.from([9, 0x82]))), /padding/);
    assert.throws(() => rw().push(frame(0x1, 0x04, 1, Buffer.from([0xff, 0xff]))), /header block/);
    // Not HTTP/2 at all: passed on untouched, for the server to refuse.
    assert.deepEqual(Buffer.concat(new AuthorityRewriter().push(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toString(), 'GET / HTTP/1.1\r\n\r\n');
  });

  it('waits for the first request and the ACK of its SETTINGS, and drops that ACK', () => {
    const ack = frame(0x4, 0x01, 0, Buffer.alloc(0));
    const settings = frame(0x4, 0, 0, Buffer.alloc(0));
    const good = frame(0x1, 0x04, 1, encodeLiteralBlock([{ name: ':authority', value: 'localhost' }]));
    const bad = frame(0x1, 0x04, 1, encodeLiteralBlock([{ name: ':authority', value: '/run/cri.sock' }]));
    assert.equal(scanGreeting(Buffer.concat([PREFACE, settings, good])), undefined);
    assert.equal(scanGreeting(Buffer.concat([PREFACE, settings, ack])), undefined);
    assert.deepEqual(scanGreeting(Buffer.concat([PREFACE, settings, good, ack])), { native: true, bytes: Buffer.concat([PREFACE, settings, good]) });
    assert.deepEqual(scanGreeting(Buffer.concat([PREFACE, settings, ack, bad])), { native: false, bytes: Buffer.concat([PREFACE, settings, bad]) });
    assert.equal(scanGreeting(PREFACE.subarray(0, 10)), undefined);
    assert.equal(scanGreeting(Buffer.from('GET /'))!.native, true);
    // Byte by byte, as a slow client sends it.
    const scanner = new GreetingScanner();
    const whole = Buffer.concat([PREFACE, settings, ack, frame(0x9, 0, 0, Buffer.alloc(0)), bad]);
    const answers = [...whole].map((b) => scanner.push(Buffer.from([b])));
    assert.ok(answers.slice(0, -1).every((a) => a === undefined));
    assert.equal(answers.at(-1)!.native, false);
    // PINGs before the first request are answered by the front and not passed on.
    const pinged = new GreetingScanner();
    const ping8 = frame(0x6, 0, 0, Buffer.from('01234567'));
    const got = pinged.push(Buffer.concat([PREFACE, settings, ping8, ack, ping8, good]));
    assert.deepEqual(got, { native: true, bytes: Buffer.concat([PREFACE, settings, good]) });
    assert.deepEqual(pinged.replies, [frame(0x6, 0x01, 0, Buffer.from('01234567')), frame(0x6, 0x01, 0, Buffer.from('01234567'))]);
    // A long wait full of PINGs holds nothing; a greeting that never comes to a request is cut off.
    const waiting = new GreetingScanner();
    waiting.push(PREFACE);
    for (let i = 0; i < 100_000; i++) assert.equal(waiting.push(ping8), undefined);
    assert.equal(waiting.replies.length, 100_000);
    const windowUpdate = frame(0x8, 0, 0, Buffer.from([0, 0, 0, 1]));
    assert.throws(() => {
      for (let i = 0; i < 100_000; i++) waiting.push(windowUpdate);
    }, /no complete request/);
  });

  describe('in front of the CRI server', () => {
    let dir: string;
    let socketPath: string;
    let server: grpc.Server;
    let listener: net.Server;
    const routes: string[] = [];
    const errors: Error[] = [];
    const def = protoLoader.loadSync(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS);
    const pkg = grpc.loadPackageDefinition(def) as any;

    before(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'berth-cri-front-'));
      socketPath = path.join(dir, 'cri.sock');
      const deps = { log: silentLogger, shutdown: new AbortController().signal, version: '9.9.9' } as unknown as CriDeps;
      server = createCriServer(deps);
      const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
      listener = net.createServer((socket) =>
        acceptConnection(socket, (c) => injector.injectConnection(c), { onRoute: (r) => routes.push(r), onError: (e) => errors.push(e) }),
      );
      await new Promise<void>((resolve) => listener.listen(socketPath, resolve));
    });
    after(async () => {
      server?.forceShutdown();
      await new Promise<void>((resolve) => (listener ? listener.close(() => resolve()) : resolve()));
      await rm(dir, { recursive: true, force: true });
    });

    const version = (client: any) =>
      new Promise<any>((resolve, reject) => client.Version({}, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))));

    it('serves a grpc-js client on the socket itself', async () => {
      routes.length = 0;
      const client = new pkg.runtime.v1.RuntimeService(`unix:${socketPath}`, grpc.credentials.createInsecure());
      try {
        for (let i = 0; i < 3; i++) assert.equal((await version(client)).runtime_version, '9.9.9');
      } finally {
        client.close();
      }
      assert.deepEqual(routes, ['native']);
    });

    it('serves a client that sends the socket path as :authority, request after request', async () => {
      routes.length = 0;
      // As grpc-go dialing a bare path does: the path is the authority of every request.
      const client = new pkg.runtime.v1.RuntimeService(`unix:${socketPath}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': socketPath });
      try {
        for (let i = 0; i < 5; i++) assert.equal((await version(client)).runtime_version, '9.9.9');
        const big = { config: { metadata: { name: 'n'.repeat(100_000), uid: 'u', namespace: 'ns' } }, runtime_handler: 'x' };
        await assert.rejects(
          new Promise((resolve, reject) => client.CreateContainer(big, (err: Error | null) => (err ? reject(err) : resolve(undefined)))),
          // A request of 100 KB reaches the server whole: it names no sandbox, which the server says.
          (err: grpc.ServiceError) => err.code === grpc.status.INVALID_ARGUMENT,
        );
      } finally {
        client.close();
      }
      assert.deepEqual(routes, ['rewrite']);
    });

    it('answers a node:http2 client that sets :authority to the path, as nghttp2 alone would refuse', async () => {
      const session = http2.connect('http://localhost', { createConnection: () => net.connect(socketPath) });
      try {
        const body = Buffer.from([0, 0, 0, 0, 0]);
        const answer = await new Promise<{ status: string; headers: http2.IncomingHttpHeaders }>((resolve, reject) => {
          const req = session.request({
            ':method': 'POST',
            ':path': '/runtime.v1.RuntimeService/Version',
            ':authority': socketPath,
            'content-type': 'application/grpc',
            te: 'trailers',
          });
          let headers: http2.IncomingHttpHeaders = {};
          req.on('response', (h) => (headers = h));
          req.on('trailers', (t) => resolve({ status: String(t['grpc-status'] ?? headers['grpc-status']), headers }));
          req.on('error', reject);
          req.resume();
          req.end(body);
        });
        assert.equal(answer.headers[':status'], 200);
        assert.equal(answer.status, '0');
      } finally {
        session.close();
      }
    });

    it('survives clients that go away in the middle of their calls, on either route', async () => {
      const vanish = (authority: string, when: 'sent' | 'later' | 'answered') =>
        new Promise<void>((resolve) => {
          const socket = net.connect(socketPath);
          socket.on('error', () => {});
          const session = http2.connect('http://localhost', { createConnection: () => socket });
          session.on('error', () => {});
          const req = session.request({ ':method': 'POST', ':path': '/runtime.v1.RuntimeService/Version', ':authority': authority, 'content-type': 'application/grpc', te: 'trailers' });
          req.on('error', () => {});
          req.end(Buffer.from([0, 0, 0, 0, 0]));
          // Gone once the request is on its way, a little later, or as the answer comes.
          const gone = () => {
            socket.destroy();
            resolve();
          };
          if (when === 'sent') setImmediate(gone);
          else if (when === 'later') setTimeout(gone, 3);
          else req.once('response', gone);
          socket.once('close', () => resolve());
        });
      for (let i = 0; i < 20; i++) {
        await Promise.all((['sent', 'later', 'answered'] as const).flatMap((when) => [vanish(socketPath, when), vanish('localhost', when)]));
      }
      const client = new pkg.runtime.v1.RuntimeService(`unix:${socketPath}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': socketPath });
      try {
        assert.equal((await version(client)).runtime_version, '9.9.9');
      } finally {
        client.close();
      }
    });

    it('disconnects clients that send garbage or go away, and keeps serving', async () => {
      const before = errors.length;
      const send = (bytes: Buffer, end = true) =>
        new Promise<void>((resolve) => {
          const s = net.connect(socketPath, () => (end ? s.end(bytes) : s.write(bytes, () => s.destroy())));
          s.on('error', () => {});
          s.on('close', () => resolve());
          s.resume();
        });
      await send(Buffer.concat([PREFACE, frame(0x4, 0x01, 0, Buffer.alloc(0)), frame(0x1, 0x04, 1, Buffer.from([0xff, 0xff, 0xff]))]));
      await send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      await send(PREFACE.subarray(0, 7), false);
      await send(Buffer.concat([PREFACE, frame(0x4, 0, 0, Buffer.alloc(0)), frame(0x1, 0, 1, Buffer.from([0x82]))]), false);
      assert.equal(errors.length, before + 1, 'the malformed header block is reported');
      const client = new pkg.runtime.v1.RuntimeService(`unix:${socketPath}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': socketPath });
      try {
        assert.equal((await version(client)).runtime_version, '9.9.9');
      } finally {
        client.close();
      }
    });
  });
});
