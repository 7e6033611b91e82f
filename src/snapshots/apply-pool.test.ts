import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { rootCtx } from '../core/context.ts';
import { kindOf } from '../core/errors.ts';
import { ApplierPool } from './apply-pool.ts';
import { makeTar } from './testdata/tar.ts';

const isRoot = process.getuid?.() === 0;
const ctx = rootCtx();

async function* chunks(b: Buffer, size = 5000): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

test('the worker pool applies layers like applyLayer, several at once, and keeps error kinds', { skip: !isRoot && 'needs root' }, async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'berth-pool-'));
  const pool = new ApplierPool({ size: 2 });
  try {
    const big = 'y'.repeat(3 << 20);
    const tars = Array.from({ length: 5 }, (_, i) => makeTar([
      { name: 'd/', type: 'dir', mode: 0o750, uid: i },
      { name: 'd/f', data: `layer ${i}`, mode: 0o4755 },
      { name: 'd/big', data: big },
      { name: 'd/l', type: 'symlink', linkname: '/etc/x' },
      { name: 'd/.wh.gone' },
    ]));
    const { mkdir } = await import('node:fs/promises');
    const results = await Promise.all(tars.map(async (t, i) => {
      await mkdir(join(tmp, `${i}`));
      return { r: await pool.apply(ctx, join(tmp, `${i}`), chunks(gzipSync(t), 70_000), { format: 'overlay' }), i };
    }));
    for (const { r, i } of results) {
      assert.equal(r.diffId, `sha256:${createHash('sha256').update(tars[i]).digest('hex')}`);
      assert.equal(r.size, tars[i].length);
      const d = join(tmp, `${i}`, 'd');
      assert.equal(await readFile(join(d, 'f'), 'utf8'), `layer ${i}`);
      assert.equal((await stat(join(d, 'f'))).mode & 0o7777, 0o4755);
      assert.equal((await stat(d)).uid, i);
      assert.equal((await stat(join(d, 'big'))).size, big.length);
      assert.equal(await readlink(join(d, 'l')), '/etc/x');
      assert.ok((await stat(join(d, 'gone'))).isCharacterDevice());
    }
    await mkdir(join(tmp, 'evil'));
    await mkdir(join(tmp, 'aborted'));
    await assert.rejects(pool.apply(ctx, join(tmp, 'evil'), chunks(makeTar([{ name: '../x', data: 'x' }])), { format: 'plain' }), (e) => kindOf(e) === 'InvalidArgument' && /"\.\.\/x"/.test((e as Error).message));
    await assert.rejects(pool.apply(ctx, join(tmp, 'missing', 'dir'), chunks(makeTar([{ name: 'x', data: 'x' }])), { format: 'plain' }), (e) => (e as { code?: string }).code === 'ENOENT');
    const ac = new AbortController();
    async function* slow(): AsyncGenerator<Buffer> {
      let n = 0;
      for await (const c of chunks(gzipSync(tars[0]), 1000)) {
        if (n++ === 2) ac.abort(new Error('stop'));
        yield c;
      }
    }
    await assert.rejects(pool.apply(rootCtx({ signal: ac.signal }), join(tmp, 'aborted'), slow(), { format: 'overlay' }), /stop/);
  } finally {
    await pool.close();
    await rm(tmp, { recursive: true, force: true });
  }
  await assert.rejects(pool.apply(ctx, tmp, chunks(Buffer.alloc(0)), { format: 'plain' }), (e) => kindOf(e) === 'Unavailable');
});

test('an idle worker ends, and the next job starts a new one', { skip: !isRoot && 'needs root' }, async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'berth-pool-'));
  const pool = new ApplierPool({ size: 2, idleMs: 20 });
  try {
    const tar = makeTar([{ name: 'f', data: 'x'.repeat(3 << 20) }]);
    const { mkdir } = await import('node:fs/promises');
    for (const round of [1, 2]) {
      await mkdir(join(tmp, `${round}`));
      const r = await pool.apply(ctx, join(tmp, `${round}`), chunks(gzipSync(tar), 70_000), { format: 'overlay' });
      assert.equal(r.diffId, `sha256:${createHash('sha256').update(tar).digest('hex')}`);
      assert.equal((await stat(join(tmp, `${round}`, 'f'))).size, 3 << 20);
      while (pool.workers > 0) await new Promise((r) => setImmediate(r));
    }
  } finally {
    await pool.close();
    await rm(tmp, { recursive: true, force: true });
  }
});

test('a layer past the bound fails at once, even while its source waits for bytes that never come', { skip: !isRoot && 'needs root' }, async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'berth-pool-'));
  const pool = new ApplierPool({ size: 1 });
  try {
    const bomb = gzipSync(makeTar([{ name: 'zeros', data: '\0'.repeat(32 << 20) }]));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    async function* half(): AsyncGenerator<Buffer> {
      yield* chunks(bomb.subarray(0, bomb.length >> 1), 10_000);
      await held;
    }
    await assert.rejects(pool.apply(ctx, tmp, half(), { format: 'overlay', maxBytes: 1 << 20 }), (e) => kindOf(e) === 'ResourceExhausted');
    release();
  } finally {
    await pool.close();
    await rm(tmp, { recursive: true, force: true });
  }
});

test('handed-over chunks that own their buffer move to the worker; others are copied and stay intact', { skip: !isRoot && 'needs root' }, async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'berth-pool-'));
  const pool = new ApplierPool({ size: 1 });
  try {
    const { randomBytes } = await import('node:crypto');
    const tar = makeTar([{ name: 'f', data: randomBytes(3 << 20).toString('base64') }, { name: 'g', data: 'tail' }]);
    const gz = gzipSync(tar);
    const third = Math.floor(gz.length / 3);
    // Own buffers (a download's chunks), then a view into a larger buffer the caller keeps.
    const owned = [Buffer.from(gz.subarray(0, third)), Buffer.from(gz.subarray(third, 2 * third))];
    const kept = Buffer.concat([Buffer.from('keep'), gz.subarray(2 * third)]);
    const view = kept.subarray(4);
    async function* source(): AsyncGenerator<Uint8Array> {
      yield* owned;
      yield view;
    }
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(tmp, 'l'));
    const r = await pool.apply(ctx, join(tmp, 'l'), source(), { format: 'overlay', handOver: true });
    assert.equal(r.diffId, `sha256:${createHash('sha256').update(tar).digest('hex')}`);
    assert.equal(await readFile(join(tmp, 'l', 'g'), 'utf8'), 'tail');
    assert.deepEqual(owned.map((c) => c.buffer.byteLength), [0, 0], 'moved, not copied');
    assert.equal(kept.subarray(0, 4).toString(), 'keep');
    assert.ok(view.equals(gz.subarray(2 * third)), 'a view is copied');
  } finally {
    await pool.close();
    await rm(tmp, { recursive: true, force: true });
  }
});
