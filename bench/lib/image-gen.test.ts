import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ensureLayout } from './image-gen.ts';
import { tarStream } from './tar.ts';
import { median } from './report.ts';

test('tarStream writes what tar(1) reads back: parents, long paths, links, modes', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-tar-'));
  try {
    const long = `a/${'d'.repeat(60)}/${'e'.repeat(60)}/file.txt`;
    const chunks = [
      ...tarStream([
        { path: long, type: 'file', data: Buffer.from('hello') },
        { path: 'bin/tool', type: 'file', mode: 0o755, size: 3, data: () => [Buffer.from('ab'), Buffer.from('c')] },
        { path: 'bin/alias', type: 'symlink', link: 'tool' },
        { path: 'bin/hard', type: 'hardlink', link: 'bin/tool' },
      ]),
    ];
    writeFileSync(path.join(dir, 'x.tar'), Buffer.concat(chunks));
    const list = execFileSync('tar', ['-tvf', path.join(dir, 'x.tar')], { encoding: 'utf8' });
    assert.match(list, /^drwxr-xr-x .* a\/$/m);
    assert.match(list, /^-rwxr-xr-x .* bin\/tool$/m);
    assert.match(list, /bin\/alias -> tool/);
    assert.match(list, /bin\/hard link to bin\/tool/);
    execFileSync('tar', ['-xf', path.join(dir, 'x.tar'), '-C', dir]);
    assert.equal(readFileSync(path.join(dir, long), 'utf8'), 'hello');
    assert.equal(readFileSync(path.join(dir, 'bin/hard'), 'utf8'), 'abc');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the tiny image layout unpacks with umoci into a runnable busybox rootfs', { skip: process.getuid?.() !== 0 && 'umoci unpack needs root' }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-layout-'));
  try {
    const layout = await ensureLayout(dir, 'tiny', () => {});
    assert.equal(layout.layers.length, 1);
    execFileSync('umoci', ['unpack', '--image', `${layout.dir}:${layout.tag}`, path.join(dir, 'bundle')], { stdio: 'ignore' });
    assert.ok(existsSync(path.join(dir, 'bundle/rootfs/bin/busybox')));
    assert.equal(readFileSync(path.join(dir, 'bundle/rootfs/www/index.html'), 'utf8').includes('berth bench'), true);
    const cfg = JSON.parse(readFileSync(path.join(dir, 'bundle/config.json'), 'utf8'));
    assert.deepEqual(cfg.process.args, ['sh']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('median', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});
