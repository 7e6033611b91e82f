import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rootCtx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import type { Snapshotter } from '../snapshots/types.ts';
import { WriteBehind, currentBootId, holdingParents } from './write-behind.ts';

/** A durable() the test ends by hand: each call waits for `release()`, or fails with `fail()`. */
function heldSync() {
  const waiting: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  let calls = 0;
  return {
    durable: () =>
      new Promise<void>((resolve, reject) => {
        calls++;
        waiting.push({ resolve, reject });
      }),
    get calls() {
      return calls;
    },
    get waiting() {
      return waiting.length;
    },
    release() {
      for (const w of waiting.splice(0)) w.resolve();
    },
    fail(err: Error) {
      for (const w of waiting.splice(0)) w.reject(err);
    },
  };
}

const blob = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}` as Digest;
const lines = async (file: string) => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
const until = async (cond: () => boolean) => {
  while (!cond()) await new Promise((r) => setImmediate(r));
};

const lease = (id: string) => rootCtx({ lease: id });

describe('write-behind: pulled layers made durable after the answer', () => {
  let dir: string;
  let n = 0;
  const file = () => path.join(dir, `marks-${++n}`);
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'berth-wb-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a mark is on disk before mark() resolves; only a sync after its operation ended clears it', async () => {
    const f = file();
    const sync = heldSync();
    const wb = new WriteBehind(f, sync.durable, 'boot-a');
    assert.deepEqual(await wb.recover(), { marked: false, snapshots: [], blobs: [] });
    assert.equal(await readFile(f, 'utf8'), '', 'the file exists, empty, before any pull appends');
    await wb.mark(lease('l1'), { snapshots: ['sha256:c1'], blobs: [blob(1)] });
    assert.deepEqual(await lines(f), [{ seq: 1, boot: 'boot-a', snapshots: ['sha256:c1'], blobs: [blob(1)] }]);
    // The pull is still committing: a sync now (another operation's) must not clear its mark.
    const early = wb.sync();
    await until(() => sync.waiting === 1);
    sync.release();
    await early;
    assert.equal(wb.isPending('sha256:c1'), true);
    wb.settle('l1');
    await until(() => sync.waiting === 1);
    assert.equal(wb.isPending('sha256:c1'), true, 'still marked while the sync runs');
    sync.release();
    await until(() => !wb.isPending('sha256:c1'));
    await wb.flushAll();
    assert.equal(await readFile(f, 'utf8'), '');
  });

  it('an operation that ends while a sync runs gets a sync of its own after it', async () => {
    const f = file();
    const sync = heldSync();
    const wb = new WriteBehind(f, sync.durable, 'boot-a');
    await wb.mark(lease('a'), { snapshots: ['sha256:a'], blobs: [] });
    wb.settle('a');
    await until(() => sync.waiting === 1);
    await wb.mark(lease('b'), { snapshots: ['sha256:b'], blobs: [] });
    wb.settle('b');
    sync.release();
    // The first sync's rewrite keeps b's mark, then b's own sync starts.
    await until(() => sync.waiting === 1);
    assert.equal(wb.isPending('sha256:a'), false);
    assert.equal(wb.isPending('sha256:b'), true);
    assert.deepEqual(
      (await lines(f)).map((m) => m.snapshots),
      [['sha256:b']],
    );
    sync.release();
    await until(() => !wb.isPending('sha256:b'));
    assert.equal(sync.calls, 2);
  });

  it('dependents wait for the operation and the sync, share one sync, and the snapshotter waits in prepare and view', async () => {
    const f = file();
    const sync = heldSync();
    const wb = new WriteBehind(f, sync.durable, 'boot-a');
    const calls: string[] = [];
    const inner = {
      name: 'fake',
      capabilities: { parallelUnpack: true },
      prepare: async (_c: unknown, key: string, parent?: string) => {
        calls.push(`prepare ${key} on ${parent}`);
        return [];
      },
      view: async (_c: unknown, key: string, parent: string) => {
        calls.push(`view ${key} on ${parent}`);
        return [];
      },
    } as unknown as Snapshotter;
    const sn = holdingParents(inner, wb);
    await wb.mark(lease('p'), { snapshots: ['sha256:top'], blobs: [] });
    const ctx = rootCtx();
    await sn.prepare(ctx, 'unrelated', 'sha256:other');
    await sn.prepare(ctx, 'extract', undefined);
    const container = sn.prepare(ctx, 'ctr1', 'sha256:top');
    const view = sn.view(ctx, 'v1', 'sha256:top');
    await new Promise((r) => setImmediate(r));
    assert.equal(sync.calls, 0, 'no sync while the pull has not ended');
    wb.settle('p');
    await until(() => sync.waiting > 0);
    assert.deepEqual(calls, ['prepare unrelated on sha256:other', 'prepare extract on undefined']);
    sync.release();
    await Promise.all([container, view]);
    assert.deepEqual(calls.slice(2).sort(), ['prepare ctr1 on sha256:top', 'view v1 on sha256:top']);
    assert.equal(sync.calls, 1, 'the two dependents and the flush shared one sync');
  });

  it('a dependent whose request is cancelled stops waiting', async () => {
    const f = file();
    const sync = heldSync();
    const wb = new WriteBehind(f, sync.durable, 'boot-a');
    await wb.mark(lease('p'), { snapshots: ['sha256:top'], blobs: [] });
    const ac = new AbortController();
    const waiting = wb.waitFor('sha256:top', ac.signal);
    ac.abort(new Error('client went away'));
    await assert.rejects(waiting, /client went away/);
    wb.settle('p');
    await until(() => sync.waiting === 1);
    sync.release();
    await until(() => !wb.isPending('sha256:top'));
  });

  it('a failed sync keeps the marks, and a dependent gets its error', async () => {
    const f = file();
    const sync = heldSync();
    const wb = new WriteBehind(f, sync.durable, 'boot-a');
    const seen: unknown[] = [];
    wb.onFlushError((err) => seen.push(err));
    await wb.mark(lease('x'), { snapshots: ['sha256:x'], blobs: [] });
    wb.settle('x');
    await until(() => sync.waiting === 1);
    sync.fail(Object.assign(new Error('syncfs: EIO'), { code: 'EIO' }));
    await until(() => seen.length === 1);
    assert.equal(wb.isPending('sha256:x'), true);
    assert.equal((await lines(f)).length, 1);
    const waiting = wb.waitFor('sha256:x');
    await until(() => sync.waiting === 1);
    sync.fail(Object.assign(new Error('syncfs: EIO'), { code: 'EIO' }));
    await assert.rejects(waiting, { code: 'EIO' });
  });

  it('recover: marks of this boot are synced; marks of another boot are reported, kept through syncs, and go with forgetLost', async () => {
    const f = file();
    const other = { seq: 4, boot: 'boot-old', snapshots: ['sha256:s1', 'sha256:s2'], blobs: [blob(2)] };
    const mine = { seq: 7, boot: 'boot-a', snapshots: ['sha256:s3'], blobs: [blob(3)] };
    await writeFile(f, `${JSON.stringify(other)}\n${JSON.stringify(mine)}\n`);
    const sync = heldSync();
    const wb = new WriteBehind(f, sync.durable, 'boot-a');
    assert.deepEqual(await wb.recover(), { marked: true, snapshots: ['sha256:s1', 'sha256:s2'], blobs: [blob(2)] });
    assert.equal(wb.isPending('sha256:s3'), true);
    const synced = wb.sync();
    await until(() => sync.waiting === 1);
    sync.release();
    await synced;
    assert.equal(wb.isPending('sha256:s3'), false);
    assert.deepEqual(await lines(f), [other], 'a sync never clears a mark of another boot');
    await assert.rejects(wb.waitFor('sha256:s1'), { kind: 'FailedPrecondition' });
    await wb.forgetLost();
    assert.equal(await readFile(f, 'utf8'), '');
    assert.deepEqual(await new WriteBehind(f, sync.durable, 'boot-a').recover(), { marked: false, snapshots: [], blobs: [] });
  });

  it('a torn last line is skipped, and the next mark rewrites the file whole instead of joining it', async () => {
    const f = file();
    const mine = { seq: 7, boot: 'boot-a', snapshots: ['sha256:s3'], blobs: [] };
    await writeFile(f, `${JSON.stringify(mine)}\n{"seq":9,"boot":"bo`);
    const sync = heldSync();
    const wb = new WriteBehind(f, sync.durable, 'boot-a');
    assert.deepEqual(await wb.recover(), { marked: true, snapshots: [], blobs: [] });
    await wb.mark(lease('n'), { snapshots: ['sha256:s4'], blobs: [] });
    assert.deepEqual(
      (await lines(f)).map((m) => m.seq),
      [7, 8],
    );
  });

  it('a mark outside a lease is a bug, refused before anything is written', async () => {
    const f = file();
    const wb = new WriteBehind(f, heldSync().durable, 'boot-a');
    await wb.recover();
    await assert.rejects(wb.mark(rootCtx(), { snapshots: ['sha256:x'], blobs: [] }), { kind: 'Internal' });
    assert.equal(await readFile(f, 'utf8'), '');
    assert.equal(wb.isPending('sha256:x'), false);
  });

  it('nothing marked: no sync at a stop', async () => {
    const f = file();
    const sync = heldSync();
    const wb = new WriteBehind(f, sync.durable, 'boot-a');
    await wb.recover();
    await wb.mark(lease('e'), { snapshots: [], blobs: [] });
    wb.settle('e');
    await wb.flushAll();
    assert.equal(sync.calls, 0);
  });

  it("the boot ID is the kernel's", () => {
    assert.match(currentBootId(), /^[0-9a-f-]{36}$/);
  });
});
