import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { rootCtx } from '../core/context.ts';
import { kindOf } from '../core/errors.ts';
import { lgetxattr } from '../core/sys.ts';
import { applyLayer, detectCompression } from './apply.ts';
import { makeTar } from './testdata/tar.ts';
import type { TarSpec } from './testdata/tar.ts';

const isRoot = process.getuid?.() === 0;
const ctx = rootCtx();

async function* chunks(b: Buffer, size = 7000): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-apply-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const basic: TarSpec[] = [
  { name: 'bin/', type: 'dir', mode: 0o755, mtime: 1600000000 },
  { name: 'bin/ping', data: 'ELF', mode: 0o4755, uid: 0, gid: 0, xattrs: { 'security.capability': '\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' } },
  { name: 'bin/sh', data: '#!', mode: 0o755 },
  { name: 'bin/ash', type: 'hardlink', linkname: 'bin/sh' },
  { name: 'bin/busybox', type: 'symlink', linkname: '/bin/sh', uid: 5, gid: 6 },
  { name: 'tmp/', type: 'dir', mode: 0o1777 },
  { name: 'home/u/', type: 'dir', mode: 0o2750, uid: 1000, gid: 1000 },
  { name: 'home/u/f', data: 'mine', mode: 0o600, uid: 1000, gid: 1001, mtime: 1234567890, xattrs: { 'user.note': 'hi' } },
  { name: 'dev/null', type: 'char', major: 1, minor: 3, mode: 0o666 },
  { name: 'dev/sda', type: 'block', major: 8, minor: 0, mode: 0o660, gid: 6 },
  { name: 'run/fifo', type: 'fifo', mode: 0o620 },
  { name: '/abs/file', data: 'made relative' },
];

test('detects compression by magic', () => {
  assert.equal(detectCompression(gzipSync('x')), 'gzip');
  assert.equal(detectCompression(zstdCompressSync('x')), 'zstd');
  assert.equal(detectCompression(Buffer.from('ustar')), 'none');
  assert.equal(detectCompression(Buffer.alloc(0)), 'none');
});

test('applies every entry type with owners, modes, times and xattrs; diffId is the tar digest', { skip: !isRoot && 'needs root' }, async () => {
  const tar = makeTar(basic);
  const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
  for (const [label, blob] of [['none', tar], ['gzip', gzipSync(tar)], ['zstd', zstdCompressSync(tar)]] as const) {
    await withTmp(async (dir) => {
      const res = await applyLayer(ctx, dir, chunks(blob), { format: 'overlay' });
      assert.equal(res.diffId, diffId, label);
      assert.equal(res.size, tar.length);
      const ping = await stat(join(dir, 'bin/ping'));
      assert.equal(ping.mode & 0o7777, 0o4755);
      assert.equal(lgetxattr(join(dir, 'bin/ping'), 'security.capability').length, 20);
      assert.equal((await stat(join(dir, 'bin/ash'))).ino, (await stat(join(dir, 'bin/sh'))).ino);
      assert.equal(await readlink(join(dir, 'bin/busybox')), '/bin/sh');
      const bb = await lstat(join(dir, 'bin/busybox'));
      assert.deepEqual([bb.uid, bb.gid], [5, 6]);
      assert.equal((await stat(join(dir, 'tmp'))).mode & 0o7777, 0o1777);
      const home = await stat(join(dir, 'home/u'));
      assert.deepEqual([home.mode & 0o7777, home.uid, home.gid], [0o2750, 1000, 1000]);
      const f = await stat(join(dir, 'home/u/f'));
      assert.deepEqual([f.mode & 0o7777, f.uid, f.gid, f.mtimeMs], [0o600, 1000, 1001, 1234567890000]);
      assert.equal(await readFile(join(dir, 'home/u/f'), 'utf8'), 'mine');
      assert.equal(lgetxattr(join(dir, 'home/u/f'), 'user.note').toString(), 'hi');
      assert.equal((await stat(join(dir, 'bin'))).mtimeMs, 1600000000000);
      const dnull = await stat(join(dir, 'dev/null'));
      assert.ok(dnull.isCharacterDevice());
      assert.deepEqual([dnull.rdev, dnull.mode & 0o7777], [0x103, 0o666]);
      const sda = await stat(join(dir, 'dev/sda'));
      assert.ok(sda.isBlockDevice());
      assert.deepEqual([sda.rdev, sda.gid], [0x800, 6]);
      assert.ok((await stat(join(dir, 'run/fifo'))).isFIFO());
      assert.equal((await stat(join(dir, 'run/fifo'))).mode & 0o7777, 0o620);
      assert.equal(await readFile(join(dir, 'abs/file'), 'utf8'), 'made relative');
    });
  }
});

const withWhiteouts: TarSpec[] = [
  { name: 'etc/', type: 'dir' },
  { name: 'etc/.wh.old.conf' },
  { name: 'var/', type: 'dir' },
  { name: 'var/.wh..wh..opq' },
  { name: 'var/keep', data: 'new' },
];

test('overlay format: whiteouts become 0/0 char devices, opaque dirs get the xattr', { skip: !isRoot && 'needs root' }, async () => {
  await withTmp(async (dir) => {
    await applyLayer(ctx, dir, chunks(makeTar(withWhiteouts)), { format: 'overlay' });
    const wh = await stat(join(dir, 'etc/old.conf'));
    assert.ok(wh.isCharacterDevice());
    assert.equal(wh.rdev, 0);
    assert.equal(lgetxattr(join(dir, 'var'), 'trusted.overlay.opaque').toString(), 'y');
    assert.deepEqual((await readdir(join(dir, 'var'))).sort(), ['keep']);
    assert.deepEqual((await readdir(join(dir, 'etc'))).sort(), ['old.conf']);
  });
});

test('plain format: whiteouts delete, opaque dirs keep only what the layer wrote', { skip: !isRoot && 'needs root' }, async () => {
  await withTmp(async (dir) => {
    await mkdir(join(dir, 'etc'));
    await writeFile(join(dir, 'etc/old.conf'), 'x');
    await writeFile(join(dir, 'etc/other'), 'x');
    await mkdir(join(dir, 'var/lib/deep'), { recursive: true });
    await writeFile(join(dir, 'var/lib/deep/x'), 'x');
    await writeFile(join(dir, 'var/old'), 'x');
    await applyLayer(ctx, dir, chunks(makeTar(withWhiteouts)), { format: 'plain' });
    assert.deepEqual((await readdir(join(dir, 'etc'))).sort(), ['other']);
    assert.deepEqual((await readdir(join(dir, 'var'))).sort(), ['keep']);
    assert.equal(await readFile(join(dir, 'var/keep'), 'utf8'), 'new');
  });
});

test('a later entry replaces an earlier one of another type', { skip: !isRoot && 'needs root' }, async () => {
  await withTmp(async (dir) => {
    await applyLayer(ctx, dir, chunks(makeTar([
      { name: 'a', data: 'file' },
      { name: 'a/', type: 'dir' },
      { name: 'a/b', data: 'x' },
      { name: 'c/', type: 'dir' },
      { name: 'c/d', data: 'x' },
      { name: 'c', type: 'symlink', linkname: 'a' },
      { name: 'e', data: 'one' },
      { name: 'e', data: 'two' },
    ])), { format: 'plain' });
    assert.equal(await readFile(join(dir, 'a/b'), 'utf8'), 'x');
    assert.equal(await readlink(join(dir, 'c')), 'a');
    assert.equal(await readFile(join(dir, 'e'), 'utf8'), 'two');
  });
});

test('a relative symlink inside the tree may be a parent component', { skip: !isRoot && 'needs root' }, async () => {
  await withTmp(async (dir) => {
    await applyLayer(ctx, dir, chunks(makeTar([
      { name: 'usr/lib/', type: 'dir' },
      { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
      { name: 'lib/libc.so', data: 'c' },
    ])), { format: 'plain' });
    assert.equal(await readFile(join(dir, 'usr/lib/libc.so'), 'utf8'), 'c');
  });
});

const escapes: Array<[string, TarSpec[]]> = [
  ['dot-dot', [{ name: '../x', data: 'x' }]],
  ['dot-dot inside', [{ name: 'a/../../x', data: 'x' }]],
  ['relative symlink dir', [{ name: 'evil', type: 'symlink', linkname: '../..' }, { name: 'evil/x', data: 'x' }]],
  ['absolute symlink dir', [{ name: 'evil', type: 'symlink', linkname: '/tmp' }, { name: 'evil/x', data: 'x' }]],
  ['chained symlinks', [{ name: 'a', type: 'symlink', linkname: 'b' }, { name: 'b', type: 'symlink', linkname: '../outside' }, { name: 'a/x', data: 'x' }]],
  ['hardlink to /etc/passwd', [{ name: 'pw', type: 'hardlink', linkname: '/etc/passwd' }]],
  ['hardlink climbing out', [{ name: 'pw', type: 'hardlink', linkname: '../../../../../../etc/passwd' }]],
  ['hardlink through symlink', [{ name: 'etc', type: 'symlink', linkname: '/etc' }, { name: 'pw', type: 'hardlink', linkname: 'etc/passwd' }]],
  ['whiteout of dot-dot', [{ name: 'a/', type: 'dir' }, { name: 'a/.wh...' }]],
  ['whiteout through symlink', [{ name: 'evil', type: 'symlink', linkname: '/tmp' }, { name: 'evil/.wh.x' }]],
  ['dir replaced by escaping symlink', [{ name: 'a/', type: 'dir' }, { name: 'a/f', data: 'x' }, { name: 'a', type: 'symlink', linkname: '../..' }, { name: 'a/f', data: 'x' }]],
  ['symlink loop', [{ name: 'a', type: 'symlink', linkname: 'b' }, { name: 'b', type: 'symlink', linkname: 'a' }, { name: 'a/x', data: 'x' }]],
  ['symlink one level up via a subdir', [{ name: 'd/', type: 'dir' }, { name: 'd/up', type: 'symlink', linkname: '../..' }, { name: 'd/up/x', data: 'x' }]],
];

for (const format of ['overlay', 'plain'] as const) {
  test(`${format} format: entries that would land outside are refused with InvalidArgument`, { skip: !isRoot && 'needs root' }, async () => {
    for (const [label, spec] of escapes) {
      await withTmp(async (base) => {
        const dir = join(base, 'a', 'b', 'snap');
        await mkdir(dir, { recursive: true });
        await writeFile(join(base, 'a', 'outside'), 'keep');
        await mkdir(join(base, 'a', 'outside-dir'));
        await symlink('outside-dir', join(base, 'a', 'outside2'));
        const before = await readdir(base, { recursive: true });
        await assert.rejects(applyLayer(ctx, dir, chunks(makeTar(spec)), { format }), (e) => {
          assert.equal(kindOf(e), 'InvalidArgument', `${label}: ${(e as Error).message}`);
          assert.match((e as Error).message, /layer entry "/);
          return true;
        }, label);
        // The snapshot may hold a symlink to /tmp: remove it before listing, as a recursive readdir follows symlinks.
        await rm(dir, { recursive: true });
        await mkdir(dir);
        assert.deepEqual((await readdir(base, { recursive: true })).sort(), before.sort(), label);
        assert.equal(await readFile(join(base, 'a', 'outside'), 'utf8'), 'keep');
      });
    }
  });
}

test('a truncated or corrupt layer fails without hanging', { skip: !isRoot && 'needs root' }, async () => {
  const tar = makeTar([{ name: 'big', data: randomBytes(100_000).toString('hex') }]);
  await withTmp(async (dir) => {
    await assert.rejects(applyLayer(ctx, dir, chunks(gzipSync(tar).subarray(0, 500)), { format: 'overlay' }), (e) => kindOf(e) === 'DataLoss');
    await assert.rejects(applyLayer(ctx, dir, chunks(zstdCompressSync(tar).subarray(0, 500)), { format: 'overlay' }), (e) => kindOf(e) === 'DataLoss');
    const bad = Buffer.from(gzipSync(tar));
    bad[bad.length - 6] ^= 0xff;
    await assert.rejects(applyLayer(ctx, dir, chunks(bad), { format: 'overlay' }), (e) => kindOf(e) === 'InvalidArgument');
    await assert.rejects(applyLayer(ctx, dir, chunks(tar.subarray(0, 5000)), { format: 'overlay' }), (e) => kindOf(e) === 'DataLoss');
  });
});

test('an aborted apply rejects with the abort reason', { skip: !isRoot && 'needs root' }, async () => {
  const ac = new AbortController();
  const tar = makeTar(Array.from({ length: 50 }, (_, i) => ({ name: `f${i}`, data: 'x'.repeat(10_000) })));
  async function* slow(): AsyncGenerator<Buffer> {
    let i = 0;
    for await (const c of chunks(gzipSync(tar), 100)) {
      if (i++ === 3) ac.abort(new Error('stop'));
      yield c;
    }
  }
  await withTmp(async (dir) => {
    await assert.rejects(applyLayer(rootCtx({ signal: ac.signal }), dir, slow(), { format: 'overlay' }), /stop/);
  });
});

test('cleanPath resolves dots lexically and refuses names that climb out', async () => {
  const { cleanPath } = await import('./extract.ts');
  assert.deepEqual(cleanPath('./a//b/./c/'), ['a', 'b', 'c']);
  assert.deepEqual(cleanPath('a/b/../c'), ['a', 'c']);
  assert.deepEqual(cleanPath('/etc/passwd'), ['etc', 'passwd']);
  assert.deepEqual(cleanPath('/../../x'), ['x']);
  assert.deepEqual(cleanPath('.'), []);
  assert.equal(cleanPath('../x'), undefined);
  assert.equal(cleanPath('a/../../x'), undefined);
  assert.equal(cleanPath('a/b/../../..'), undefined);
});
