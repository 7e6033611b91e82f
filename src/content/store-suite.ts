import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Ctx } from '../core/context.ts';
import { rootCtx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { digestOf } from '../core/digest.ts';
import { kindOf } from '../core/errors.ts';
import type { ContentStore } from './types.ts';
import { FetchOnce } from './fetch-once.ts';

/** What a ContentStore implementation hands the conformance suite. */
export interface ContentStoreFixture {
  store: ContentStore;
  /** A fresh store over the same data, as after a daemon restart (unflushed writer state is lost). */
  reopen?(): Promise<ContentStore>;
  cleanup(): Promise<void>;
}

async function rejectsKind(p: Promise<unknown>, kind: string): Promise<void> {
  await assert.rejects(p, (err) => {
    assert.equal(kindOf(err), kind, `expected ${kind}, got ${kindOf(err)}: ${(err as Error).message}`);
    return true;
  });
}

async function readStream(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Chunks of uneven sizes, so buffering boundaries are crossed in every way. */
function* unevenChunks(data: Buffer): Generator<Buffer> {
  const sizes = [1, 7, 4096, 65536, 1 << 20, (1 << 20) + 3, 333_333];
  for (let pos = 0, i = 0; pos < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length], data.length - pos);
    yield data.subarray(pos, pos + n);
    pos += n;
  }
}

async function put(ctx: Ctx, store: ContentStore, data: Buffer, labels?: Record<string, string>): Promise<Digest> {
  const digest = digestOf(data);
  const w = await store.writer(ctx, { ref: `put-${digest}`, expected: { digest, size: data.length } });
  await w.write(data);
  await w.commit(ctx, { labels });
  return digest;
}

/**
 * The ContentStore conformance suite (containerd's ContentSuite in spirit):
 * every implementation, including a proxy over the API, must pass it.
 */
export function contentStoreSuite(name: string, factory: () => Promise<ContentStoreFixture>): void {
  describe(`ContentStore conformance: ${name}`, () => {
    let fx: ContentStoreFixture;
    let store: ContentStore;
    const ctx = rootCtx();
    before(async () => {
      fx = await factory();
      store = fx.store;
    });
    after(async () => {
      await fx.cleanup();
    });

    test('ingest through a stream, then info, read and read from an offset', async () => {
      const data = randomBytes(5 * (1 << 20) + 123);
      const digest = digestOf(data);
      const w = await store.writer(ctx, { ref: 'stream-1', expected: { digest, size: data.length } });
      assert.equal(w.offset, 0);
      await pipeline(Readable.from(unevenChunks(data)), w.stream());
      const info = await w.commit(ctx, { labels: { a: '1' } });
      assert.equal(info.digest, digest);
      assert.equal(info.size, data.length);
      assert.deepEqual(info.labels, { a: '1' });
      assert.ok(info.createdAt instanceof Date);
      assert.deepEqual(await readStream(await store.reader(ctx, digest)), data);
      assert.deepEqual(await readStream(await store.reader(ctx, digest, { offset: 1_000_001 })), data.subarray(1_000_001));
      assert.equal((await readStream(await store.reader(ctx, digest, { offset: data.length }))).length, 0);
      await rejectsKind(store.reader(ctx, digest, { offset: data.length + 1 }), 'InvalidArgument');
      await rejectsKind(store.status(ctx, 'stream-1'), 'NotFound');
    });

    test('commit without expectations computes the digest; readAll honours its cap', async () => {
      const data = Buffer.from('{"hello":"world"}');
      const w = await store.writer(ctx, { ref: 'free-1' });
      await w.write(data);
      const info = await w.commit(ctx);
      assert.equal(info.digest, digestOf(data));
      assert.deepEqual(await store.readAll(ctx, info.digest, 1024), data);
      await rejectsKind(store.readAll(ctx, info.digest, 4), 'ResourceExhausted');
    });

    test('a sha512 expectation is verified with sha512', async () => {
      const data = randomBytes(3000);
      const digest = `sha512:${createHash('sha512').update(data).digest('hex')}` as Digest;
      const w = await store.writer(ctx, { ref: 'sha512-1', expected: { digest, size: data.length } });
      await w.write(data);
      assert.equal((await w.commit(ctx)).digest, digest);
      assert.deepEqual(await store.readAll(ctx, digest, 1 << 20), data);
    });

    test('digest() follows the bytes written, in the expected algorithm; a synced commit after flush() commits them', async () => {
      const data = randomBytes((2 << 20) + 12345);
      const digest = digestOf(data);
      const w = await store.writer(ctx, { ref: 'synced-1', expected: { digest, size: data.length } });
      for (const c of unevenChunks(data)) await w.write(c);
      assert.equal(w.digest(), digest);
      await w.flush();
      assert.equal((await store.status(ctx, 'synced-1')).offset, data.length);
      const info = await w.commit(ctx, { synced: true });
      assert.equal(info.digest, digest);
      assert.deepEqual(await readStream(await store.reader(ctx, digest)), data);
      // A write after flush() is not covered by the caller's sync: commit fsyncs as usual, and still commits.
      const more = randomBytes(5000);
      const w2 = await store.writer(ctx, { ref: 'synced-2', expected: { digest: digestOf(more), size: more.length } });
      await w2.flush();
      await w2.write(more);
      assert.equal((await w2.commit(ctx, { synced: true })).digest, digestOf(more));
      const sha512 = `sha512:${createHash('sha512').update(more).digest('hex')}` as Digest;
      const w3 = await store.writer(ctx, { ref: 'synced-3', expected: { digest: sha512 } });
      await w3.write(more);
      assert.equal(w3.digest(), sha512);
      await w3.close();
      await store.abort(ctx, 'synced-3');
    });

    test('unknown digests are NotFound', async () => {
      const d = digestOf('nothing here');
      await rejectsKind(store.info(ctx, d), 'NotFound');
      await rejectsKind(store.reader(ctx, d), 'NotFound');
      await rejectsKind(store.readAll(ctx, d, 10), 'NotFound');
      await rejectsKind(store.delete(ctx, d), 'NotFound');
      await rejectsKind(store.updateLabels(ctx, d, { a: 'b' }), 'NotFound');
    });

    test('resume after close: status shows the offset and the reopened writer continues there', async () => {
      const data = randomBytes(3 * (1 << 20) + 17);
      const digest = digestOf(data);
      const ref = 'resume-1';
      const cut = (1 << 20) + 5;
      const w1 = await store.writer(ctx, { ref, expected: { digest, size: data.length } });
      await w1.write(data.subarray(0, cut));
      await w1.close();
      await w1.close();
      const st = await store.status(ctx, ref);
      assert.equal(st.ref, ref);
      assert.equal(st.offset, cut);
      assert.equal(st.total, data.length);
      assert.equal(st.expected, digest);
      assert.ok((await store.listStatuses(ctx)).some((s) => s.ref === ref));
      const w2 = await store.writer(ctx, { ref, expected: { digest, size: data.length } });
      assert.equal(w2.offset, cut);
      await pipeline(Readable.from(unevenChunks(data.subarray(cut))), w2.stream());
      await w2.commit(ctx);
      assert.deepEqual(await store.readAll(ctx, digest, 8 << 20), data);
    });

    test('resume after a crash: a fresh store re-hashes what reached the disk', async (t) => {
      if (!fx.reopen) return t.skip('implementation cannot simulate a restart');
      const data = randomBytes(4 * (1 << 20) + 99);
      const digest = digestOf(data);
      const ref = 'crash-1';
      const w1 = await store.writer(ctx, { ref, expected: { digest, size: data.length } });
      await w1.write(data.subarray(0, 2 * (1 << 20) + 1000));
      // No close: the process "dies" with w1 open.
      const again = await fx.reopen();
      const w2 = await again.writer(ctx, { ref, expected: { digest, size: data.length } });
      assert.ok(w2.offset > 0 && w2.offset <= 2 * (1 << 20) + 1000, `resumed at ${w2.offset}`);
      await w2.write(data.subarray(w2.offset));
      await w2.commit(ctx);
      assert.deepEqual(await again.readAll(ctx, digest, 8 << 20), data);
      await w1.close().catch(() => undefined);
    });

    test('a second writer on the same ref is refused while the first holds it', async () => {
      const w1 = await store.writer(ctx, { ref: 'lock-1' });
      await rejectsKind(store.writer(ctx, { ref: 'lock-1' }), 'Unavailable');
      await rejectsKind(store.abort(ctx, 'lock-1'), 'Unavailable');
      const other = await store.writer(ctx, { ref: 'lock-2' });
      await other.close();
      await w1.close();
      const w3 = await store.writer(ctx, { ref: 'lock-1' });
      await w3.close();
      await store.abort(ctx, 'lock-1');
      await store.abort(ctx, 'lock-2');
      await rejectsKind(store.status(ctx, 'lock-1'), 'NotFound');
      await rejectsKind(store.abort(ctx, 'lock-1'), 'NotFound');
    });

    test('size mismatch is FailedPrecondition and discards the partial data', async () => {
      const data = randomBytes(1000);
      const w = await store.writer(ctx, { ref: 'size-1', expected: { digest: digestOf(data), size: 1001 } });
      await w.write(data);
      await rejectsKind(w.commit(ctx), 'FailedPrecondition');
      await rejectsKind(store.status(ctx, 'size-1'), 'NotFound');
      await rejectsKind(store.info(ctx, digestOf(data)), 'NotFound');
      await rejectsKind(w.write(data), 'FailedPrecondition');
    });

    test('digest mismatch (expected or given at commit) is FailedPrecondition and discards', async () => {
      const data = randomBytes(1000);
      const wrong = digestOf('something else');
      const w = await store.writer(ctx, { ref: 'dig-1', expected: { digest: wrong } });
      await w.write(data);
      await rejectsKind(w.commit(ctx), 'FailedPrecondition');
      await rejectsKind(store.status(ctx, 'dig-1'), 'NotFound');
      const w2 = await store.writer(ctx, { ref: 'dig-2' });
      await w2.write(data);
      await rejectsKind(w2.commit(ctx, { digest: wrong, size: 1000 }), 'FailedPrecondition');
      await rejectsKind(store.info(ctx, wrong), 'NotFound');
      await rejectsKind(store.info(ctx, digestOf(data)), 'NotFound');
      // The ref is free again.
      const w3 = await store.writer(ctx, { ref: 'dig-2' });
      assert.equal(w3.offset, 0);
      await w3.close();
      await store.abort(ctx, 'dig-2');
    });

    test('AlreadyExists when the blob is present, at open and at commit', async () => {
      const data = randomBytes(100);
      const digest = await put(ctx, store, data);
      await rejectsKind(store.writer(ctx, { ref: 'exists-1', expected: { digest } }), 'AlreadyExists');
      const w = await store.writer(ctx, { ref: 'exists-2' });
      await w.write(data);
      await rejectsKind(w.commit(ctx), 'AlreadyExists');
      await rejectsKind(store.status(ctx, 'exists-2'), 'NotFound');
      assert.deepEqual(await store.readAll(ctx, digest, 1000), data);
    });

    test('delete removes a blob and its labels', async () => {
      const data = randomBytes(64);
      const digest = await put(ctx, store, data, { keep: 'no' });
      await store.delete(ctx, digest);
      await rejectsKind(store.info(ctx, digest), 'NotFound');
      await rejectsKind(store.delete(ctx, digest), 'NotFound');
      // Written again, the blob does not inherit the old labels.
      await put(ctx, store, data);
      assert.deepEqual((await store.info(ctx, digest)).labels, {});
    });

    test('walk visits every committed blob and no ingest', async () => {
      const a = await put(ctx, store, randomBytes(10));
      const b = await put(ctx, store, randomBytes(11));
      const w = await store.writer(ctx, { ref: 'walk-partial' });
      await w.write(randomBytes(5));
      await w.close();
      const seen = new Map<string, number>();
      await store.walk(ctx, (info) => {
        seen.set(info.digest, info.size);
      });
      assert.equal(seen.get(a), 10);
      assert.equal(seen.get(b), 11);
      assert.ok(![...seen.keys()].includes(digestOf(Buffer.alloc(0))));
      await store.abort(ctx, 'walk-partial');
    });

    test('labels: set at commit, merged by updateLabels, empty value deletes', async () => {
      const digest = await put(ctx, store, randomBytes(20), { x: '1', y: '2' });
      assert.deepEqual((await store.info(ctx, digest)).labels, { x: '1', y: '2' });
      const info = await store.updateLabels(ctx, digest, { y: '', z: '3' });
      assert.deepEqual(info.labels, { x: '1', z: '3' });
      assert.deepEqual((await store.info(ctx, digest)).labels, { x: '1', z: '3' });
      assert.deepEqual((await store.updateLabels(ctx, digest, { x: '', z: '' })).labels, {});
    });

    test('fetch-once: concurrent ensures of one digest share one download', async () => {
      const data = randomBytes(2 * (1 << 20));
      const digest = digestOf(data);
      const once = new FetchOnce(store);
      let downloads = 0;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const fetch = async (c: Ctx) => {
        downloads++;
        await gate;
        const w = await store.writer(c, { ref: `fo-${digest}`, expected: { digest, size: data.length } });
        await pipeline(Readable.from(unevenChunks(data)), w.stream());
        await w.commit(c);
      };
      const all = [once.ensure(ctx, digest, fetch), once.ensure(ctx, digest, fetch), once.ensure(ctx, digest, fetch)];
      while (downloads === 0) await new Promise((r) => setImmediate(r));
      assert.equal(once.inflight, 1);
      release();
      const results = await Promise.all(all);
      assert.equal(downloads, 1);
      assert.deepEqual(results.map((r) => r.outcome).sort(), ['fetched', 'shared', 'shared']);
      for (const r of results) assert.equal(r.info.size, data.length);
      assert.equal((await once.ensure(ctx, digest, fetch)).outcome, 'present');
      assert.equal(downloads, 1);
    });

    test('fetch-once: a failed first fetch does not fail the waiters, who fetch themselves', async () => {
      const data = randomBytes(1000);
      const digest = digestOf(data);
      const once = new FetchOnce(store);
      let calls = 0;
      const fetch = async (c: Ctx) => {
        calls++;
        if (calls === 1) {
          await new Promise((r) => setImmediate(r));
          throw new Error('registry went away');
        }
        const w = await store.writer(c, { ref: `fo2-${digest}`, expected: { digest, size: data.length } });
        await w.write(data);
        await w.commit(c);
      };
      // Which caller becomes the fetcher depends on scheduling: one fails with the registry, the other fetches itself.
      const settled = await Promise.allSettled([once.ensure(ctx, digest, fetch), once.ensure(ctx, digest, fetch)]);
      assert.deepEqual(settled.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
      assert.equal(calls, 2);
      assert.deepEqual(await store.readAll(ctx, digest, 2000), data);
    });

    test('fetch-once: a waiter stops waiting when its own signal aborts', async () => {
      const digest = digestOf('never arrives');
      const once = new FetchOnce(store);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const first = once.ensure(ctx, digest, async () => {
        await gate;
        throw new Error('gave up');
      });
      // The first caller must own the download before the waiter asks (a store may look before it registers).
      for (let i = 0; i < 1000 && once.inflight === 0; i++) await new Promise((r) => setImmediate(r));
      assert.equal(once.inflight, 1);
      const ac = new AbortController();
      const waiter = once.ensure(rootCtx({ signal: ac.signal }), digest, async () => {
        throw new Error('must not run');
      });
      await new Promise((r) => setImmediate(r));
      ac.abort();
      await rejectsKind(waiter, 'Canceled');
      release();
      await assert.rejects(first, /gave up/);
      assert.equal(once.inflight, 0);
    });
  });
}
