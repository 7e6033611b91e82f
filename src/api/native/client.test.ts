import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { berthError, kindOf } from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';
import { ApiClient } from './client.ts';
import { Router, createApiServer } from './server.ts';

describe('native API client and server', () => {
  let dir: string;
  let server: Server;
  let client: ApiClient;
  const shutdown = new AbortController();
  let upgradedSignal: AbortSignal | undefined;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'berth-api-'));
    const router = new Router();
    router.add('GET', '/echo/:id', async (req) => ({ id: req.params.id, ns: req.ctx.namespace, q: req.query.getAll('f') }));
    router.add('GET', '/images/*name/json', async (req) => ({ name: req.params.name }));
    router.add('POST', '/json', async (req) => ({ got: await req.json() }));
    router.add('GET', '/missing', async () => {
      throw berthError('NotFound', 'no such thing: x');
    });
    router.add('GET', '/stream', async (req) => {
      const w = req.ndjson();
      for (let i = 0; i < 3; i++) await w.write({ i });
      w.fail(berthError('DataLoss', 'digest mismatch'));
    });
    router.add('POST', '/upload', async (req) => {
      let n = 0;
      for await (const c of req.body) n += (c as Buffer).length;
      return { bytes: n };
    });
    router.add('GET', '/download', async (req) => {
      const w = req.ndjson();
      const line = 'x'.repeat(1000);
      for (let i = 0; i < 2000; i++) await w.write({ line });
      w.end();
    });
    router.add('POST', '/echo-upgrade', async (req) => {
      upgradedSignal = req.ctx.signal;
      const sock = req.upgrade();
      sock.pipe(sock);
    });
    server = createApiServer({ router, log: silentLogger, shutdown: shutdown.signal });
    const sockPath = path.join(dir, 'api.sock');
    await new Promise<void>((r) => server.listen(sockPath, r));
    client = new ApiClient({ host: `unix://${sockPath}`, namespace: 'k8s.io' });
  });

  after(async () => {
    shutdown.abort();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('carries params, query, namespace and JSON bodies', async () => {
    assert.deepEqual(await client.call('GET', '/echo/a%2Fb', { query: { f: ['x', 'y'] } }), { id: 'a/b', ns: 'k8s.io', q: ['x', 'y'] });
    assert.deepEqual(await client.call('GET', '/images/127.0.0.1:5000/a/b:1/json'), { name: '127.0.0.1:5000/a/b:1' });
    assert.deepEqual(await client.call('POST', '/json', { body: { a: [1, 2] } }), { got: { a: [1, 2] } });
  });

  it('keeps the error kind across the socket', async () => {
    await assert.rejects(client.call('GET', '/missing'), (e) => kindOf(e) === 'NotFound' && /no such thing/.test((e as Error).message));
    await assert.rejects(client.call('GET', '/nope'), (e) => kindOf(e) === 'NotFound');
    const bad = new ApiClient({ host: 'unix://' + path.join(dir, 'api.sock'), namespace: 'bad namespace!' });
    await assert.rejects(bad.call('GET', '/echo/x'), (e) => kindOf(e) === 'InvalidArgument');
  });

  it('streams NDJSON and surfaces a trailing error line with its kind', async () => {
    const got: unknown[] = [];
    await assert.rejects(
      (async () => {
        for await (const o of client.stream('GET', '/stream')) got.push(o);
      })(),
      (e) => kindOf(e) === 'DataLoss',
    );
    assert.deepEqual(got, [{ i: 0 }, { i: 1 }, { i: 2 }]);
  });

  it('uploads and downloads large chunked bodies', async () => {
    const data = Buffer.alloc(3 << 20, 7);
    assert.deepEqual(await client.call('POST', '/upload', { upload: Readable.from([data.subarray(0, 1 << 20), data.subarray(1 << 20)]) }), { bytes: 3 << 20 });
    let lines = 0;
    for await (const _ of client.stream('GET', '/download')) lines++;
    assert.equal(lines, 2000);
  });

  it('upgrades a connection to a raw duplex stream', async () => {
    const sock = await client.upgrade('POST', '/echo-upgrade');
    sock.write('ping');
    sock.resume();
    const [chunk] = (await Promise.race([new Promise((r) => sock.once('data', (d) => r([d]))), new Promise((_, j) => setTimeout(() => j(new Error('no echo')), 5000))])) as Buffer[];
    assert.equal(chunk.toString(), 'ping');
    assert.equal(upgradedSignal?.aborted, false, 'the handler returned, the connection lives on');
    sock.destroy();
    // What listens on the signal of a connection that outlived its handler is released when the client leaves.
    for (let i = 0; i < 200 && !upgradedSignal?.aborted; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(upgradedSignal?.aborted, true);
  });

  it('says the daemon is not running when nothing listens', async () => {
    const c = new ApiClient({ host: `unix://${dir}/none.sock`, namespace: 'default' });
    await assert.rejects(c.call('GET', '/version'), (e) => kindOf(e) === 'Unavailable' && /is the daemon running/.test((e as Error).message));
  });
});
