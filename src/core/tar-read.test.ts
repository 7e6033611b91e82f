import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir, symlink, link, readFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { kindOf } from './errors.ts';
import { readTar } from './tar-read.ts';
import type { TarHeader } from './tar-read.ts';

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-tar-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Every entry with its data's sha256, reading data through the requested API. */
async function list(source: AsyncIterable<Uint8Array>, how: 'chunks' | 'stream' | 'bytes' | 'skip' = 'chunks'): Promise<Array<TarHeader & { sha?: string }>> {
  const out: Array<TarHeader & { sha?: string }> = [];
  for await (const e of readTar(source)) {
    const h = createHash('sha256');
    if (how === 'chunks') for await (const c of e.chunks()) h.update(c);
    else if (how === 'stream') for await (const c of e.stream()) h.update(c as Buffer);
    else if (how === 'bytes') h.update(await e.bytes());
    const { chunks: _c, stream: _s, bytes: _b, ...header } = e;
    out.push({ ...header, sha: how === 'skip' ? undefined : h.digest('hex') });
  }
  return out;
}

function sha(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A source that yields `data` in chunks of `size`, to exercise headers split across chunks. */
async function* chunked(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

test('GNU tar: long names and links, hard links, symlinks, devices, fifos, large ids', async () => {
  await withTmp(async (dir) => {
    const root = join(dir, 'root');
    const longDir = join(root, 'd'.repeat(90), 'e'.repeat(90));
    await mkdir(longDir, { recursive: true });
    const big = randomBytes(300_000);
    await writeFile(join(longDir, 'f'.repeat(120)), big);
    await writeFile(join(root, 'small'), 'hello\n');
    await link(join(root, 'small'), join(root, 'hard'));
    await symlink('t'.repeat(150), join(root, 'longlink'));
    execFileSync('mknod', [join(root, 'null'), 'c', '1', '3']);
    execFileSync('mkfifo', ['-m', '0640', join(root, 'fifo')]);
    const tarFile = join(dir, 'a.tar');
    execFileSync('tar', ['--format=gnu', '-C', root, '--owner=3000000:3000000', '--group=7:7', '--sort=name', '-cf', tarFile, '.']);
    const data = await readFile(tarFile);
    for (const [how, size] of [['chunks', 65536], ['stream', 1000], ['bytes', 7], ['skip', 512]] as const) {
      const entries = await list(chunked(data, size), how);
      const byPath = new Map(entries.map((e) => [e.path, e]));
      const f = byPath.get(`./${'d'.repeat(90)}/${'e'.repeat(90)}/${'f'.repeat(120)}`)!;
      assert.equal(f.type, 'file');
      assert.equal(f.size, big.length);
      if (how !== 'skip') assert.equal(f.sha, sha(big));
      assert.equal(f.uid, 3000000);
      assert.equal(f.gid, 7);
      // --sort=name archives ./hard first, so ./small is the link.
      assert.equal(byPath.get('./hard')!.type, 'file');
      assert.equal(byPath.get('./small')!.type, 'hardlink');
      assert.equal(byPath.get('./small')!.linkpath, './hard');
      assert.equal(byPath.get('./longlink')!.type, 'symlink');
      assert.equal(byPath.get('./longlink')!.linkpath, 't'.repeat(150));
      assert.equal(byPath.get('./null')!.type, 'char');
      assert.equal(byPath.get('./null')!.devmajor, 1);
      assert.equal(byPath.get('./null')!.devminor, 3);
      assert.equal(byPath.get('./fifo')!.type, 'fifo');
      assert.equal(byPath.get('./fifo')!.mode, 0o640);
      assert.equal(byPath.get('./')!.type, 'directory');
    }
  });
});

test('python tarfile pax: xattrs, long paths, fractional mtime, unicode names, setuid', async () => {
  await withTmp(async (dir) => {
    const tarFile = join(dir, 'p.tar');
    execFileSync('python3', ['-c', `
import tarfile, io, sys
t = tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT)
def add(name, data=b'', **kw):
    ti = tarfile.TarInfo(name)
    for k, v in kw.items(): setattr(ti, k, v)
    ti.size = len(data) if ti.type == tarfile.REGTYPE else 0
    t.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
add('bin/', type=tarfile.DIRTYPE, mode=0o755)
add('bin/ping', b'ELF', mode=0o4755, uid=0, gid=0, pax_headers={'SCHILY.xattr.security.capability': '\\x01\\x00\\x00\\x02', 'SCHILY.xattr.user.note': 'h\\u00e9'})
add('x/' + 'y' * 200, b'long', mode=0o644, mtime=1700000000.5)
add('caf\\u00e9', b'u', mode=0o600, uid=1000, gid=1000, uname='alice', gname='staff')
add('ln', type=tarfile.SYMTYPE, linkname='l' * 300)
t.close()
`, tarFile]);
    const entries = await list(createReadStream(tarFile, { highWaterMark: 4096 }));
    const byPath = new Map(entries.map((e) => [e.path, e]));
    const ping = byPath.get('bin/ping')!;
    assert.equal(ping.mode, 0o4755);
    assert.equal(ping.sha, sha('ELF'));
    // Python writes pax values as UTF-8 of the str; \\x01 etc are code points below 0x80.
    assert.deepEqual(ping.xattrs.get('security.capability'), Buffer.from([1, 0, 0, 2]));
    assert.equal(ping.xattrs.get('user.note')!.toString(), 'hé');
    const long = byPath.get(`x/${'y'.repeat(200)}`)!;
    assert.equal(long.mtime, 1700000000.5);
    assert.equal(long.sha, sha('long'));
    const cafe = byPath.get('café')!;
    assert.equal(cafe.uname, 'alice');
    assert.equal(cafe.gname, 'staff');
    assert.equal(cafe.uid, 1000);
    assert.equal(byPath.get('ln')!.linkpath, 'l'.repeat(300));
    assert.equal(byPath.get('bin/')!.type, 'directory');
  });
});

test('pulls from the source only as the consumer reads', async () => {
  const chunk = Buffer.alloc(4096);
  const header = Buffer.alloc(512);
  header.write('big', 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write((1 << 20).toString(8).padStart(11, '0') + '\0', 124);
  header.write('00000000000\0', 136);
  header.write('0', 156);
  header.write('ustar\x0000', 257);
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of header) sum += c;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  let pulled = 0;
  async function* source(): AsyncGenerator<Buffer> {
    yield header;
    for (let i = 0; i < 256; i++) {
      pulled++;
      yield chunk;
    }
    yield Buffer.alloc(1024);
  }
  const it = readTar(source());
  const first = await it.next();
  assert.equal(first.done, false);
  assert.equal(pulled, 0);
  const data = first.value!.chunks();
  await data.next();
  await data.next();
  assert.ok(pulled <= 2, `pulled ${pulled} chunks for two reads`);
  assert.equal((await it.next()).done, true);
  assert.equal(pulled, 256);
});

test('malformed archives: bad checksum is InvalidArgument, truncation is DataLoss', async () => {
  await withTmp(async (dir) => {
    await writeFile(join(dir, 'f'), randomBytes(5000));
    const data = execFileSync('tar', ['-C', dir, '-cf', '-', 'f']);
    const bad = Buffer.from(data);
    bad[10] ^= 1;
    await assert.rejects(list(chunked(bad, 512)), (e) => kindOf(e) === 'InvalidArgument');
    await assert.rejects(list(chunked(data.subarray(0, 3000), 512)), (e) => kindOf(e) === 'DataLoss');
    await assert.rejects(list(chunked(data.subarray(0, 3000), 512), 'skip'), (e) => kindOf(e) === 'DataLoss');
    // A tar without its end-of-archive blocks is still complete.
    assert.equal((await list(chunked(data.subarray(0, 512 + 5120), 100))).length, 1);
    assert.deepEqual(await list(chunked(Buffer.alloc(0), 1)), []);
  });
});

test('pax global headers apply to every later entry; LIBARCHIVE xattrs are decoded', async () => {
  const pax = (records: Record<string, string>) => {
    let body = '';
    for (const [k, v] of Object.entries(records)) {
      const rest = ` ${k}=${v}\n`;
      // The length counts its own digits.
      let len = Buffer.byteLength(rest) + 1;
      while (String(len).length + Buffer.byteLength(rest) !== len) len = String(len).length + Buffer.byteLength(rest);
      body += `${len}${rest}`;
    }
    return Buffer.from(body);
  };
  const header = (name: string, flag: string, size: number) => {
    const h = Buffer.alloc(512);
    h.write(name, 0);
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(size.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write(flag, 156);
    h.write('ustar\x0000', 257);
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const c of h) sum += c;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    return h;
  };
  const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);
  const g = pax({ uname: 'globaluser', comment: 'x' });
  const x = pax({ 'LIBARCHIVE.xattr.user.a%3Db': Buffer.from([0, 1, 255]).toString('base64') });
  const tar = Buffer.concat([
    header('pax_global_header', 'g', g.length), pad(g),
    header('one', '0', 0),
    header('PaxHeaders/two', 'x', x.length), pad(x),
    header('two', '0', 3), pad(Buffer.from('abc')),
    Buffer.alloc(1024),
  ]);
  const entries = await list(chunked(tar, 300));
  assert.deepEqual(entries.map((e) => [e.path, e.uname, e.sha]), [['one', 'globaluser', sha('')], ['two', 'globaluser', sha('abc')]]);
  assert.deepEqual(entries[1].xattrs.get('user.a=b'), Buffer.from([0, 1, 255]));
  assert.equal(entries[0].xattrs.size, 0);
});

test('header checksums: unsigned and signed sums are accepted at any alignment, a wrong one is refused', async () => {
  // A name of bytes above 127 makes the signed and unsigned sums differ.
  const header = (signed: boolean, wrong = false) => {
    const b = Buffer.alloc(512);
    b.fill(0xe9, 0, 90);
    b.write('0000644\0', 100, 'latin1');
    b.write('0000000\0', 108, 'latin1');
    b.write('0000000\0', 116, 'latin1');
    b.write('00000000000\0', 124, 'latin1');
    b.write('00000000000\0', 136, 'latin1');
    b[156] = 0x30;
    b.write('ustar\x0000', 257, 'latin1');
    b.fill(0x20, 148, 156);
    let sum = 0;
    for (const c of b) sum += signed && c > 127 ? c - 256 : c;
    b.write(`${(sum + (wrong ? 1 : 0)).toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    return Buffer.concat([b, Buffer.alloc(1024)]);
  };
  for (const shift of [0, 1, 2, 3]) {
    for (const signed of [false, true]) {
      // The header as a view at an offset of a larger buffer, as a slice of a decompressed chunk would be.
      const backing = Buffer.alloc(shift + 1536);
      header(signed).copy(backing, shift);
      const entries = await list(chunked(backing.subarray(shift), 1536));
      assert.deepEqual(entries.map((e) => [e.type, e.size]), [['file', 0]]);
    }
    const backing = Buffer.alloc(shift + 1536);
    header(false, true).copy(backing, shift);
    await assert.rejects(list(chunked(backing.subarray(shift), 1536)), (e) => kindOf(e) === 'InvalidArgument');
  }
});
