import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rootCtx } from '../../core/context.ts';
import { readRootfsFile, resolveInRoot, resolveUserInRootfs } from './rootfs-files.ts';

describe('rootfs files', () => {
  let dir: string;
  let root: string;
  const ctx = rootCtx();
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'berth-rootfs-'));
    root = path.join(dir, 'rootfs');
    mkdirSync(path.join(root, 'etc'), { recursive: true });
    mkdirSync(path.join(root, 'usr/lib'), { recursive: true });
    writeFileSync(path.join(dir, 'secret'), 'host secret');
    writeFileSync(path.join(root, 'usr/lib/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n');
    symlinkSync('../usr/lib/passwd', path.join(root, 'etc/passwd'));
    writeFileSync(path.join(root, 'etc/group'), 'app:x:1000:\nwheel:x:10:app\n');
    symlinkSync('/../../secret', path.join(root, 'escape-abs'));
    symlinkSync('../../../../secret', path.join(root, 'etc/escape-rel'));
    symlinkSync('loop2', path.join(root, 'loop1'));
    symlinkSync('loop1', path.join(root, 'loop2'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('follows symlinks inside the rootfs', async () => {
    assert.equal(await resolveInRoot(ctx, root, '/etc/passwd'), path.join(root, 'usr/lib/passwd'));
    assert.match((await readRootfsFile(ctx, root, '/etc/passwd')) ?? '', /^root:/);
  });
  it('never leaves the rootfs through absolute or relative links', async () => {
    assert.equal(await resolveInRoot(ctx, root, '/escape-abs'), path.join(root, 'secret'));
    assert.equal(await resolveInRoot(ctx, root, '/etc/escape-rel'), path.join(root, 'secret'));
    assert.equal(await readRootfsFile(ctx, root, '/escape-abs'), undefined);
    assert.equal(await readRootfsFile(ctx, root, '/../../secret'), undefined);
  });
  it('returns undefined for missing files and directories, refuses loops', async () => {
    assert.equal(await readRootfsFile(ctx, root, '/etc/shadow'), undefined);
    assert.equal(await readRootfsFile(ctx, root, '/etc'), undefined);
    await assert.rejects(readRootfsFile(ctx, root, '/loop1'), /too many levels/);
  });
  it('resolves a user from the rootfs', async () => {
    assert.deepEqual(await resolveUserInRootfs(ctx, root, 'app'), { uid: 1000, gid: 1000, additionalGids: [10], home: '/app' });
    const empty = path.join(dir, 'empty');
    mkdirSync(empty);
    assert.deepEqual(await resolveUserInRootfs(ctx, empty, '123:456'), { uid: 123, gid: 456, additionalGids: [], home: '/' });
    await assert.rejects(resolveUserInRootfs(ctx, empty, 'app'), /unable to find user app/);
  });
});
