import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { link, lstat, mkdir, mkdtemp, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { rootCtx } from '../../core/context.ts';

const ctx = rootCtx();
import { kindOf } from '../../core/errors.ts';
import type { TarItem } from '../../core/tar-write.ts';
import { tarStream } from '../../core/tar-write.ts';
import { extractIntoRoot, packFromRoot, statInRoot, tarItemOf } from './archive.ts';

/** `tar -tv` of a stream by GNU tar: "type name[ -> target| link to target]" a line. */
async function gnuList(tar: Readable): Promise<string[]> {
  const child = spawn('tar', ['-tvf', '-'], { stdio: ['pipe', 'pipe', 'inherit'] });
  tar.pipe(child.stdin);
  let failed: unknown;
  tar.once('error', (err) => {
    failed = err;
    child.kill();
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise((r) => child.on('close', r));
  if (failed) throw failed;
  assert.equal(code, 0);
  // Columns: perms owner size date time name...
  return out
    .trim()
    .split('\n')
    .map((l) => {
      const cols = l.split(/\s+/);
      return `${cols[0][0]} ${cols.slice(5).join(' ')}`;
    });
}

async function gnuExtract(tar: Readable, dir: string): Promise<void> {
  const child = spawn('tar', ['-xf', '-', '-C', dir], { stdio: ['pipe', 'inherit', 'inherit'] });
  tar.pipe(child.stdin);
  assert.equal(await new Promise((r) => child.on('close', r)), 0);
}

describe('archive', () => {
  let tmp: string;
  let root: string;
  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'berth-archive-'));
    root = path.join(tmp, 'rootfs');
    await mkdir(path.join(root, 'srv/data/sub'), { recursive: true });
    await writeFile(path.join(root, 'srv/data/a.txt'), 'alpha\n');
    await writeFile(path.join(root, 'srv/data/sub/b.txt'), 'beta\n');
    await link(path.join(root, 'srv/data/a.txt'), path.join(root, 'srv/data/sub/a-again'));
    await symlink('/etc/hostname', path.join(root, 'srv/data/abs'));
    await symlink('a.txt', path.join(root, 'srv/data/rel'));
    await symlink('/srv', path.join(root, 'srv-link'));
    await mkdir(path.join(root, 'target'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('packs a single file under its base name', async () => {
    assert.deepEqual(await gnuList(await packFromRoot(ctx, root, [], '/srv/data/a.txt')), ['- a.txt']);
    // Through a symlinked parent, still inside the root.
    assert.deepEqual(await gnuList(await packFromRoot(ctx, root, [], '/srv-link/data/sub/b.txt')), ['- b.txt']);
  });

  it('packs a directory tree with symlinks and hard links', async () => {
    assert.deepEqual(await gnuList(await packFromRoot(ctx, root, [], '/srv/data')), [
      'd data/',
      '- data/a.txt',
      'l data/abs -> /etc/hostname',
      'l data/rel -> a.txt',
      'd data/sub/',
      'h data/sub/a-again link to data/a.txt',
      '- data/sub/b.txt',
    ]);
    const out = path.join(tmp, 'unpacked');
    await mkdir(out);
    await gnuExtract(await packFromRoot(ctx, root, [], '/srv/data/'), out);
    assert.equal(await readFile(path.join(out, 'data/sub/b.txt'), 'utf8'), 'beta\n');
    assert.equal(await readlink(path.join(out, 'data/abs')), '/etc/hostname');
    const [a, again] = await Promise.all([lstat(path.join(out, 'data/a.txt')), lstat(path.join(out, 'data/sub/a-again'))]);
    assert.equal(a.ino, again.ino);
  });

  it('copies a final symlink as a link, and its target with a trailing slash', async () => {
    assert.deepEqual(await gnuList(await packFromRoot(ctx, root, [], '/srv/data/rel')), ['l rel -> a.txt']);
    assert.deepEqual(await gnuList(await packFromRoot(ctx, root, [], '/srv-link')), ['l srv-link -> /srv']);
    assert.equal((await gnuList(await packFromRoot(ctx, root, [], '/srv-link/')))[0], 'd srv-link/');
    // A link whose target is missing in the root is still there to stat and copy.
    const st = await statInRoot(ctx, root, [], '/srv/data/abs');
    assert.equal(st.linkTarget, '/etc/hostname');
    assert.equal(st.name, 'abs');
    assert.deepEqual(await gnuList(await packFromRoot(ctx, root, [], '/srv/data/abs')), ['l abs -> /etc/hostname']);
  });

  it('packs device nodes with their major and minor numbers', async () => {
    const dev = path.join(root, 'dev');
    await mkdir(dev);
    execFileSync('mknod', [path.join(dev, 'null'), 'c', '1', '3']);
    execFileSync('mknod', [path.join(dev, 'big'), 'b', '259', '1000']);
    execFileSync('mkfifo', [path.join(dev, 'fifo')]);
    const listing = await new Promise<string>((resolve, reject) => {
      void packFromRoot(ctx, root, [], '/dev').then((tar) => {
        const child = spawn('tar', ['-tvf', '-'], { stdio: ['pipe', 'pipe', 'inherit'] });
        tar.pipe(child.stdin);
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
        child.on('close', () => resolve(out));
      }, reject);
    });
    await rm(dev, { recursive: true });
    assert.match(listing, /^b\S+ \S+\s+259,1000 .* dev\/big$/m);
    assert.match(listing, /^c\S+ \S+\s+1,3 .* dev\/null$/m);
    assert.match(listing, /^p\S+ .* dev\/fifo$/m);
  });

  it('a regular file swapped for a FIFO, a symlink or another file after it was looked at fails the copy at once, reading nothing through them', async () => {
    const f = path.join(root, 'swapped');
    await writeFile(f, 'original\n');
    const st = await lstat(f);
    const copy = async () => {
      const item = await tarItemOf(f, 'swapped', st, new Map());
      for await (const _ of tarStream([item!])) {
        // drained
      }
    };
    const isChanged = (err: unknown) => kindOf(err) === 'Conflict' && /"swapped" changed while it was being copied/.test((err as Error).message);
    // An open of a FIFO for reading would wait for a writer that never comes.
    await rm(f);
    execFileSync('mkfifo', [f]);
    await assert.rejects(copy(), isChanged);
    await rm(f);
    await symlink('/etc/hostname', f);
    await assert.rejects(copy(), isChanged);
    // Made before the original goes, so it cannot reuse its inode number.
    await writeFile(`${f}.new`, 'imposter\n');
    await rename(`${f}.new`, f);
    await assert.rejects(copy(), isChanged);
    await rm(f);
  });

  it('a directory the container swaps for a symlink while it is packed never leads out of the root', async () => {
    const box = path.join(root, 'box');
    await mkdir(path.join(box, 'd'), { recursive: true });
    await writeFile(path.join(box, 'd', 'inner'), 'inner\n');
    const beyond = path.join(tmp, 'beyond-root');
    await mkdir(beyond, { recursive: true });
    await writeFile(path.join(beyond, 'secret'), 'secret\n');
    await symlink(beyond, path.join(box, 'd.link'));
    // A process group of its own: killing the shell alone would leave its current `mv` renaming after the clean-up's listing.
    const swapper = spawn('sh', ['-c', 'while :; do mv -T d d.dir; mv -T d.link d; mv -T d d.link; mv -T d.dir d; done'], { cwd: box, stdio: 'ignore', detached: true });
    try {
      for (let i = 0; i < 100; i++) {
        const names = await gnuList(await packFromRoot(ctx, root, [], '/box'));
        assert.ok(!names.some((n) => n.includes('secret')), `round ${i}: the copy reached out of the root: ${names.join(', ')}`);
      }
    } finally {
      process.kill(-swapper.pid!, 'SIGKILL');
      await new Promise((r) => swapper.once('close', r));
      await rm(box, { recursive: true, force: true, maxRetries: 5 });
    }
  });

  it('stats inside the root and reports a missing path as NotFound', async () => {
    const st = await statInRoot(ctx, root, [], '/srv/data/sub/b.txt');
    assert.equal(st.name, 'b.txt');
    assert.equal(st.size, 5);
    await assert.rejects(statInRoot(ctx, root, [], '/nope'), (err) => kindOf(err) === 'NotFound');
    await assert.rejects(packFromRoot(ctx, root, [], '/nope/x'), (err) => kindOf(err) === 'NotFound');
  });

  it('extracts into a directory of the root', async () => {
    const items: TarItem[] = [
      { entry: { name: 'new/', type: 'dir', mode: 0o755 } },
      { entry: { name: 'new/f', type: 'file', mode: 0o644, size: 3 }, body: 'hi\n' },
    ];
    await extractIntoRoot(ctx, root, [], '/target', tarStream(items));
    assert.equal(await readFile(path.join(root, 'target/new/f'), 'utf8'), 'hi\n');
    await assert.rejects(extractIntoRoot(ctx, root, [], '/missing', tarStream(items)), (err) => kindOf(err) === 'NotFound');
    await assert.rejects(extractIntoRoot(ctx, root, [], '/srv/data/a.txt', tarStream(items)), (err) => kindOf(err) === 'InvalidArgument');
  });

  it('refuses a tar that climbs out with ..', async () => {
    const items: TarItem[] = [{ entry: { name: '../../escaped', type: 'file', mode: 0o644, size: 1 }, body: 'x' }];
    await assert.rejects(extractIntoRoot(ctx, root, [], '/target', tarStream(items)), (err) => kindOf(err) === 'InvalidArgument');
    await assert.rejects(lstat(path.join(root, 'escaped')), { code: 'ENOENT' });
    await assert.rejects(lstat(path.join(tmp, 'escaped')), { code: 'ENOENT' });
  });

  it('refuses a write through a symlink that leads out', async () => {
    const outside = path.join(tmp, 'outside');
    await mkdir(outside);
    for (const linkname of [outside, '../../../outside', '/']) {
      const items: TarItem[] = [
        { entry: { name: 'esc', type: 'symlink', linkname } },
        { entry: { name: 'esc/owned', type: 'file', mode: 0o644, size: 1 }, body: 'x' },
      ];
      const dir = await mkdtemp(path.join(root, 'x-'));
      await assert.rejects(extractIntoRoot(ctx, root, [], '/' + path.basename(dir), tarStream(items)), (err) => kindOf(err) === 'InvalidArgument');
      await assert.rejects(lstat(path.join(outside, 'owned')), { code: 'ENOENT' });
      await assert.rejects(lstat('/owned'), { code: 'ENOENT' });
    }
    // A hard link to a file outside is refused too.
    const hard: TarItem[] = [{ entry: { name: 'h', type: 'hardlink', linkname: '../../../../../../../etc/hostname' } }];
    await assert.rejects(extractIntoRoot(ctx, root, [], '/target', tarStream(hard)), (err) => kindOf(err) === 'InvalidArgument');
  });
});

describe('extract without replacing a directory by a non-directory (docker cp)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-guard-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A tar made by GNU tar in `format`, of `names` under `src`. */
  const tarOf = (src: string, names: string[], format: string): Buffer => execFileSync('tar', ['-c', `--format=${format}`, '-C', src, ...names]);
  const from = (b: Buffer) => (async function* () {
    // Odd chunk sizes, so headers straddle chunks.
    for (let i = 0; i < b.length; i += 333) yield b.subarray(i, i + 333);
  })();

  it('refuses a file over a directory and a directory over a file, in every tar format; passes the rest through unchanged', async () => {
    const root = path.join(dir, 'root');
    await mkdir(path.join(root, 'tmp', 'thing', 'sub'), { recursive: true });
    await writeFile(path.join(root, 'tmp', 'thing', 'sub', 'keep'), 'keep');
    await writeFile(path.join(root, 'tmp', 'afile'), 'a');
    const src = path.join(dir, 'src');
    const long = 'l'.repeat(120);
    await mkdir(path.join(src, 'afile'), { recursive: true });
    await mkdir(path.join(src, 'ok', long), { recursive: true });
    await writeFile(path.join(src, 'thing'), 'x');
    await writeFile(path.join(src, 'ok', long, 'f'), 'fine');
    for (const format of ['gnu', 'posix', 'ustar']) {
      const names = format === 'ustar' ? ['thing'] : ['ok', 'thing'];
      const fileOverDir = tarOf(src, names, format);
      await assert.rejects(extractIntoRoot(ctx, root, [], '/tmp', from(fileOverDir), { noOverwriteDirNonDir: true }), (e: Error) => kindOf(e) === 'Conflict' && /cannot overwrite directory "\/tmp\/thing" with non-directory "thing"/.test(e.message), format);
      assert.equal(await readFile(path.join(root, 'tmp', 'thing', 'sub', 'keep'), 'utf8'), 'keep', `${format}: the directory stays`);
      if (format !== 'ustar') assert.equal(await readFile(path.join(root, 'tmp', 'ok', long, 'f'), 'utf8'), 'fine', `${format}: entries before the refused one are in`);
      await assert.rejects(extractIntoRoot(ctx, root, [], '/tmp', from(tarOf(src, ['afile'], format)), { noOverwriteDirNonDir: true }), /cannot overwrite non-directory "\/tmp\/afile" with directory "afile\/"/);
      assert.equal(await readFile(path.join(root, 'tmp', 'afile'), 'utf8'), 'a');
    }
    // Without the option, as berth's own cp: the entry replaces what is there.
    await extractIntoRoot(ctx, root, [], '/tmp', from(tarOf(src, ['thing'], 'gnu')));
    assert.equal(await readFile(path.join(root, 'tmp', 'thing'), 'utf8'), 'x');
  });
});
