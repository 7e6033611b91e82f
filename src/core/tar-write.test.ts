import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, readlink, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { encodeHeader, tarStream, type TarItem } from './tar-write.ts';

// GNU tar is the independent reader: what it lists and extracts is what we meant to write.
async function writeAndList(items: TarItem[]): Promise<{ dir: string; file: string; listing: string[] }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-tar-'));
  const file = path.join(dir, 'a.tar');
  await pipeline(tarStream(items), createWriteStream(file));
  const listing = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n').filter(Boolean);
  return { dir, file, listing };
}

test('ustar entries of every type round-trip through GNU tar', async (t) => {
  const longDir = 'a'.repeat(120) + '/' + 'b'.repeat(90);
  const veryLong = 'd/'.repeat(150) + 'leaf.txt';
  const items: TarItem[] = [
    { entry: { name: 'etc', type: 'dir', mode: 0o755 } },
    { entry: { name: 'etc/hostname', type: 'file', size: 4, mode: 0o600, uid: 1000, gid: 1000, mtime: 1_700_000_000 }, body: 'box\n' },
    { entry: { name: 'etc/link', type: 'symlink', linkname: 'hostname' } },
    { entry: { name: 'etc/hard', type: 'hardlink', linkname: 'etc/hostname' } },
    { entry: { name: `${longDir}/`, type: 'dir' } },
    { entry: { name: `${longDir}/f`, type: 'file', size: 600 }, body: Buffer.alloc(600, 7) },
    { entry: { name: veryLong, type: 'file', size: 1 }, body: 'x' },
    { entry: { name: 'long-link', type: 'symlink', linkname: 'z'.repeat(200) } },
    { entry: { name: 'ünïcode.txt', type: 'file', size: 2 }, body: 'hi' },
    { entry: { name: 'xattr', type: 'file', size: 0, xattrs: { 'user.k': 'v' } } },
    { entry: { name: 'bigid', type: 'file', size: 0, uid: 100_000_000, gid: 100_000_001 } },
    { entry: { name: 'fifo', type: 'fifo' } },
  ];
  const { dir, file, listing } = await writeAndList(items);
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.deepEqual(listing, [
    'etc/', 'etc/hostname', 'etc/link', 'etc/hard', `${longDir}/`, `${longDir}/f`, veryLong, 'long-link',
    'ünïcode.txt', 'xattr', 'bigid', 'fifo',
  ]);
  const verbose = execFileSync('tar', ['--numeric-owner', '-tvf', file], { encoding: 'utf8' });
  assert.match(verbose, /-rw------- 1000\/1000\s+4 2023-11-14 \d\d:\d\d etc\/hostname/);
  assert.match(verbose, /100000000\/100000001/);
  assert.match(verbose, /etc\/hard link to etc\/hostname/);
  const out = path.join(dir, 'x');
  execFileSync('mkdir', [out]);
  execFileSync('tar', ['-xf', file, '-C', out]);
  assert.equal(await readFile(path.join(out, 'etc/hostname'), 'utf8'), 'box\n');
  assert.equal(await readlink(path.join(out, 'etc/link')), 'hostname');
  assert.equal(await readlink(path.join(out, 'long-link')), 'z'.repeat(200));
  assert.equal((await stat(path.join(out, 'etc/hard'))).ino, (await stat(path.join(out, 'etc/hostname'))).ino);
  assert.deepEqual(await readFile(path.join(out, longDir, 'f')), Buffer.alloc(600, 7));
  assert.equal(await readFile(path.join(out, 'ünïcode.txt'), 'utf8'), 'hi');
  const xattrs = execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-tvvf', file], { encoding: 'utf8' });
  assert.match(xattrs, /x: 1 user\.k/);
});

test('a body that does not match its size fails the stream', async () => {
  const items: TarItem[] = [{ entry: { name: 'f', type: 'file', size: 10 }, body: 'short' }];
  await assert.rejects(pipeline(tarStream(items), async function* (src) {
    for await (const _ of src) yield;
  }), (err: { kind?: string }) => err.kind === 'InvalidArgument');
});

test('headers are whole blocks with a valid checksum', () => {
  const h = encodeHeader({ name: 'a', type: 'file', size: 1 });
  assert.equal(h.length, 512);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  assert.equal(parseInt(h.subarray(148, 154).toString(), 8), sum);
  assert.equal(encodeHeader({ name: 'x'.repeat(300), type: 'file' }).length % 512, 0);
  assert.throws(() => encodeHeader({ name: 'l', type: 'symlink' }), (e: { kind?: string }) => e.kind === 'InvalidArgument');
});
