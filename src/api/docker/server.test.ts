import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { berthError } from '../../core/errors.ts';
import { silentLogger } from '../../core/log.ts';
import { createDockerServer, DockerRouter, ok } from './server.ts';

describe('Docker API while the engine recovers', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-docker-ready-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** The Docker server with a ping, a version and one route of the engine's, on a socket of its own. */
  async function serve(ready: Promise<void>): Promise<{ get(p: string): Promise<{ status: number; body: string }>; close(): Promise<void> }> {
    const router = new DockerRouter();
    router.add('GET', '/_ping', async () => ({ body: 'OK' }));
    router.add('GET', '/version', async () => ok({ Version: 'test' }));
    router.add('GET', '/containers/json', async () => ok([]));
    const server = createDockerServer({ router, log: silentLogger, shutdown: new AbortController().signal, ready });
    const socketPath = path.join(dir, `d-${Math.random().toString(36).slice(2)}.sock`);
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    const get = (p: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        http
          .get({ socketPath, path: p, agent: false }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          })
          .on('error', reject);
      });
    return {
      get,
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  }

  it('answers /_ping and /version at once and holds other routes until recovery ends', async () => {
    const recovered = Promise.withResolvers<void>();
    const { get, close } = await serve(recovered.promise);
    try {
      let listed = false;
      const list = get('/v1.43/containers/json').finally(() => (listed = true));
      assert.deepEqual(await get('/_ping'), { status: 200, body: 'OK' });
      assert.equal((await get('/v1.43/version')).status, 200);
      assert.equal(listed, false, 'an engine route answered before the engine recovered');
      recovered.resolve();
      assert.deepEqual(await list, { status: 200, body: '[]' });
    } finally {
      await close();
    }
  });

  it("answers an engine route after a failed recovery with 503 and recovery's error", async () => {
    const failed = Promise.reject(berthError('Unavailable', 'berthd could not recover its state: a test says so'));
    failed.catch(() => {});
    const { get, close } = await serve(failed);
    try {
      const r = await get('/containers/json');
      assert.equal(r.status, 503);
      assert.match(JSON.parse(r.body).message, /could not recover its state: a test says so/);
      assert.equal((await get('/_ping')).status, 200);
    } finally {
      await close();
    }
  });
});
