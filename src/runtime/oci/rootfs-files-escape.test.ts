import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { kindOf } from '../../core/errors.ts';
import { readRootfsFile, resolveInRoot } from './rootfs-files.ts';
import { rootCtx } from '../../core/context.ts';

const ctx = rootCtx();

describe('resolveInRoot', () => {
  let root: string;
  before(async () => {
    root = path.join(await mkdtemp(path.join(tmpdir(), 'berth-rootfs-')), 'root');
    await mkdir(path.join(root, 'etc'), { recursive: true });
    await mkdir(path.join(root, 'usr/lib'), { recursive: true });
    await writeFile(path.join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
    await symlink('/etc/passwd', path.join(root, 'abs-link'));
    await symlink('../../../../../../etc/passwd', path.join(root, 'usr/lib/climb'));
    await symlink('/', path.join(root, 'usr/lib/to-root'));
    await symlink('usr/lib', path.join(root, 'lib'));
    await symlink('loop-b', path.join(root, 'loop-a'));
    await symlink('loop-a', path.join(root, 'loop-b'));
    await symlink('/etc', path.join(root, 'etc-link'));
    // Beside the root: what an escape would reach.
    await writeFile(path.join(root, '..', 'secret'), 'outside\n');
  });
  after(async () => {
    await rm(path.dirname(root), { recursive: true, force: true });
  });

  const inside = (p: string) => p === root || p.startsWith(root + '/');

  it('follows absolute symlinks relative to the root', async () => {
    assert.equal(await resolveInRoot(ctx, root, '/abs-link'), path.join(root, 'etc/passwd'));
    assert.equal(await resolveInRoot(ctx, root, '/usr/lib/to-root/etc/passwd'), path.join(root, 'etc/passwd'));
  });

  it('clamps .. chains at the root', async () => {
    assert.equal(await resolveInRoot(ctx, root, '../../../secret'), path.join(root, 'secret'));
    assert.equal(await resolveInRoot(ctx, root, '/usr/lib/climb'), path.join(root, 'etc/passwd'));
    assert.equal(await resolveInRoot(ctx, root, '/etc/../../..'), root);
    assert.equal(await resolveInRoot(ctx, root, '/'), root);
  });

  it('clamps .. after a missing component too', async () => {
    for (const p of ['/missing/../../secret', '/missing/../../../../etc/passwd', '/etc/passwd/../../../secret', '/nope/a/../../../..']) {
      const r = await resolveInRoot(ctx, root, p);
      assert.ok(inside(r), `${p} resolved to ${r}`);
    }
    assert.equal(await resolveInRoot(ctx, root, '/missing/../../secret'), path.join(root, 'secret'));
    assert.equal(await resolveInRoot(ctx, root, '/missing/x/../y'), path.join(root, 'missing/y'));
  });

  it('resolves through symlinked parent directories', async () => {
    assert.equal(await resolveInRoot(ctx, root, '/lib/climb'), path.join(root, 'etc/passwd'));
    assert.equal(await resolveInRoot(ctx, root, '/etc-link/passwd'), path.join(root, 'etc/passwd'));
    assert.equal(await resolveInRoot(ctx, root, '/lib/../etc'), path.join(root, 'usr/etc'));
  });

  it('refuses symlink loops', async () => {
    await assert.rejects(resolveInRoot(ctx, root, '/loop-a/x'), (err) => kindOf(err) === 'InvalidArgument');
  });

  it('reads files inside the root only', async () => {
    assert.equal(await readRootfsFile(ctx, root, '/abs-link'), 'root:x:0:0::/root:/bin/sh\n');
    assert.equal(await readRootfsFile(ctx, root, '/usr/lib/climb'), 'root:x:0:0::/root:/bin/sh\n');
    assert.equal(await readRootfsFile(ctx, root, '/../secret'), undefined);
    assert.equal(await readRootfsFile(ctx, root, '/missing/../../secret'), undefined);
    // Back out of a missing directory and through a symlink: still resolved in the root.
    assert.equal(await readRootfsFile(ctx, root, '/missing/../abs-link'), 'root:x:0:0::/root:/bin/sh\n');
    assert.equal(await readRootfsFile(ctx, root, '/missing/deeper/../../etc-link/passwd'), 'root:x:0:0::/root:/bin/sh\n');
    assert.equal(await readRootfsFile(ctx, root, '/etc'), undefined);
    assert.equal(await readRootfsFile(ctx, root, '/etc/passwd/x'), undefined);
    await assert.rejects(readRootfsFile(ctx, root, '/etc/passwd', 4), (err) => kindOf(err) === 'InvalidArgument');
  });
});
