import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ApiRequest } from '../api/native/server.ts';
import { Router } from '../api/native/server.ts';
import { berthError, kindOf } from '../core/errors.ts';
import { EngineRouter } from './engine-router.ts';

const req = {} as ApiRequest;

describe('EngineRouter', () => {
  it('holds a gated request until the engine is ready, and leaves the others alone', async () => {
    const router = new Router();
    const ready = Promise.withResolvers<void>();
    const engine = new EngineRouter(router, ready.promise);
    const served: string[] = [];
    engine.add('GET', '/containers/json', async () => {
      served.push('containers');
      return [];
    });
    router.add('GET', '/_ping', async () => 'OK');

    assert.equal(await router.match('GET', '/_ping')!.handler(req), 'OK');
    const list = router.match('GET', '/containers/json')!.handler(req);
    // Every task queued so far runs first: the handler must not have been reached.
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(served, []);
    ready.resolve();
    assert.deepEqual(await list, []);
    assert.deepEqual(served, ['containers']);
  });

  it("answers with recovery's error when recovery failed", async () => {
    const router = new Router();
    const failed = Promise.reject(berthError('Unavailable', 'berthd could not recover its state: disk gone'));
    failed.catch(() => {});
    new EngineRouter(router, failed).add('GET', '/images/json', async () => assert.fail('the handler ran'));
    await assert.rejects(router.match('GET', '/images/json')!.handler(req), (err) => kindOf(err) === 'Unavailable');
  });
});
