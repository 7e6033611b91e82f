import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { rootCtx } from '../core/context.ts';
import { digestOf } from '../core/digest.ts';
import { kindOf } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { LocalContentStore } from './local-store.ts';
import { contentStoreSuite } from './store-suite.ts';

contentStoreSuite('LocalContentStore', async () => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-content-'));
  const store = await LocalContentStore.open(rootCtx(), root);
  return {
    store,
    reopen: () => LocalContentStore.open(rootCtx(), root),
    cleanup: () => fsp.rm(root, { recursive: true, force: true }),
  };
});

test('on-disk layout: blobs/sha256/<hex>, ingest/<sha256(ref)>/ with its metadata files', async () => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-content-'));
  try {
    const ctx = rootCtx();
    const store = await LocalContentStore.open(ctx, root);
    const data = Buffer.from('layout');
    const digest = digestOf(data);
    const w = await store.writer(ctx, { ref: 'r/1', expected: { digest, size: data.length } });
    await w.write(data.subarray(0, 3));
    await w.close();
    const dir = store.ingestDir('r/1');
    assert.equal(path.dirname(dir), path.join(root, 'ingest'));
    assert.deepEqual((await fsp.readdir(dir)).sort(), ['data', 'expected', 'ref', 'startedat', 'total']);
    assert.equal(await fsp.readFile(path.join(dir, 'ref'), 'utf8'), 'r/1');
    const w2 = await store.writer(ctx, { ref: 'r/1', expected: { digest, size: data.length } });
    await w2.write(data.subarray(3));
    await w2.commit(ctx);
    assert.equal(store.blobPath(digest), path.join(root, 'blobs', 'sha256', digest.slice(7)));
    assert.deepEqual(await fsp.readFile(store.blobPath(digest)), data);
    await assert.rejects(fsp.access(dir));
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
});

test('a writer reopened with a different expected digest starts over', async () => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-content-'));
  try {
    const ctx = rootCtx();
    const store = await LocalContentStore.open(ctx, root);
    const w = await store.writer(ctx, { ref: 'x', expected: { digest: digestOf('a') } });
    await w.write(Buffer.from('partial'));
    await w.close();
    const w2 = await store.writer(ctx, { ref: 'x', expected: { digest: digestOf('b'), size: 1 } });
    assert.equal(w2.offset, 0);
    await w2.write(Buffer.from('b'));
    await w2.commit(ctx);
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
});

test('a full disk is ResourceExhausted and leaves no partial data', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root to mount a small tmpfs');
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-content-enospc-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'berth-test', dir]);
  try {
    const ctx = rootCtx();
    const store = await LocalContentStore.open(ctx, dir);
    const data = randomBytes(3 << 20);
    const w = await store.writer(ctx, { ref: 'big', expected: { digest: digestOf(data), size: data.length } });
    let err: unknown;
    try {
      for (let i = 0; i < data.length; i += 65536) await w.write(data.subarray(i, i + 65536));
      await w.commit(ctx);
    } catch (e) {
      err = e;
    }
    assert.equal(kindOf(err), 'ResourceExhausted');
    assert.match((err as Error).message, /no space left on device/);
    await assert.rejects(store.status(ctx, 'big'), (e) => kindOf(e) === 'NotFound');
    assert.deepEqual(await fsp.readdir(path.join(dir, 'ingest')), []);
    assert.deepEqual(await fsp.readdir(path.join(dir, 'blobs', 'sha256')), []);
    // Through stream() and pipeline the kind is the same.
    const w1 = await store.writer(ctx, { ref: 'big-stream', expected: { digest: digestOf(data), size: data.length } });
    await assert.rejects(pipeline(Readable.from([data.subarray(0, 1 << 20), data.subarray(1 << 20, 2 << 20), data.subarray(2 << 20)]), w1.stream()), (e) => kindOf(e) === 'ResourceExhausted');
    assert.deepEqual(await fsp.readdir(path.join(dir, 'ingest')), []);
    // The ref is usable again once there is room.
    const small = Buffer.from('fits');
    const w2 = await store.writer(ctx, { ref: 'big' });
    await w2.write(small);
    assert.equal((await w2.commit(ctx)).digest, digestOf(small));
  } finally {
    execFileSync('umount', [dir]);
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('open reconciles leftovers of a crash: orphan labels, temp files, ref-less ingests', async () => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-content-'));
  try {
    const ctx = rootCtx();
    const store = await LocalContentStore.open(ctx, root);
    const data = Buffer.from('kept');
    const w = await store.writer(ctx, { ref: 'k' });
    await w.write(data);
    const kept = (await w.commit(ctx, { labels: { a: 'b' } })).digest;
    const labels = path.join(root, 'labels', 'sha256');
    await fsp.writeFile(path.join(labels, `${'e'.repeat(64)}.json`), '{"x":"y"}');
    await fsp.writeFile(path.join(labels, `${kept.slice(7)}.json.123.abc.tmp`), '{}');
    await fsp.mkdir(path.join(root, 'ingest', 'f'.repeat(64)));
    const partial = await store.writer(ctx, { ref: 'partial' });
    await partial.write(Buffer.from('half'));
    await partial.close();

    const again = await LocalContentStore.open(ctx, root);
    assert.deepEqual(await fsp.readdir(labels), [`${kept.slice(7)}.json`]);
    assert.deepEqual((await again.info(ctx, kept)).labels, { a: 'b' });
    assert.deepEqual((await again.listStatuses(ctx)).map((s) => s.ref), ['partial']);
    assert.equal((await fsp.readdir(path.join(root, 'ingest'))).length, 1);
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
});

test('open goes on past leftovers it cannot remove: moved to the trash, logged, retried at the next open', { skip: process.getuid?.() !== 0 && 'needs root to mount' }, async () => {
  const { mount, umount2 } = await import('../core/sys.ts');
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-content-'));
  const warnings: string[] = [];
  const log: Logger = { debug() {}, info() {}, error() {}, warn: (m) => void warnings.push(m), child: () => log };
  const ctx = rootCtx({ log });
  let mnt: string | undefined;
  try {
    await LocalContentStore.open(ctx, root);
    // A ref-less ingest holding a mount point: its removal fails (EBUSY), its rename does not.
    const stuck = path.join(root, 'ingest', 'stuck');
    await fsp.mkdir(path.join(stuck, 'mnt'), { recursive: true });
    mount('tmpfs', path.join(stuck, 'mnt'), 'tmpfs', 0, 'size=1m');
    mnt = path.join(stuck, 'mnt');
    await LocalContentStore.open(ctx, root);
    assert.deepEqual(await fsp.readdir(path.join(root, 'ingest')), []);
    const [moved] = await fsp.readdir(path.join(root, 'trash'));
    mnt = path.join(root, 'trash', moved, 'mnt');
    assert.ok(warnings.some((w) => /moved it to the trash/.test(w)), warnings.join('; '));
    await LocalContentStore.open(ctx, root);
    assert.ok(warnings.some((w) => /still cannot be removed/.test(w)), warnings.join('; '));
    umount2(mnt, 2);
    mnt = undefined;
    await LocalContentStore.open(ctx, root);
    assert.deepEqual(await fsp.readdir(path.join(root, 'trash')), []);
  } finally {
    if (mnt) umount2(mnt, 2);
    await fsp.rm(root, { recursive: true, force: true });
  }
});
