import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { lgetxattr, llistxattr } from '../../src/core/sys.ts';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { buildImage, busyboxImage, pushToRegistry } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { cleanupDaemonMounts } from '../helpers/images.ts';

const execFileP = promisify(execFile);
const skip = process.getuid?.() !== 0 ? 'needs root (overlayfs, chown, xattrs)' : undefined;

/** Everything about a tree that an unpack must reproduce, keyed by path. */
async function describeTree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string) => {
    const abs = path.join(root, rel);
    const st = await lstat(abs);
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : st.isCharacterDevice() ? 'char' : st.isFIFO() ? 'fifo' : 'other';
    const xattrs = llistxattr(abs)
      .filter((n) => !n.startsWith('trusted.overlay.') && n !== 'security.selinux')
      .sort()
      .map((n) => `${n}=${lgetxattr(abs, n).toString('hex')}`);
    let extra = '';
    if (type === 'symlink') extra = `-> ${await readlink(abs)}`;
    if (type === 'file') extra = `sha256=${createHash('sha256').update(await readFile(abs)).digest('hex')} nlink=${st.nlink}`;
    const mode = type === 'symlink' ? '' : (st.mode & 0o7777).toString(8);
    if (rel) out.set(rel, `${type} ${mode} ${st.uid}:${st.gid} ${extra} [${xattrs.join(',')}]`);
    if (type === 'dir') for (const e of (await readdir(abs)).sort()) await walk(path.join(rel, e));
  };
  await walk('');
  return out;
}

/** Mount the committed snapshot chain ending at `chainId` read-only on `target` (an overlay of its layers). */
function snapshotDirs(root: string, chainId: string, snapshotter = 'overlayfs'): string[] {
  const db = new DatabaseSync(path.join(root, 'metadata.db'), { readOnly: true });
  try {
    const dirs: string[] = [];
    let row = db.prepare(`SELECT id, parent_id FROM snapshots WHERE key = ? AND kind = 'committed' AND snapshotter = ?`).get(chainId, snapshotter) as { id: number; parent_id: number | null } | undefined;
    while (row) {
      dirs.push(path.join(root, 'snapshots', snapshotter, 'snapshots', String(row.id), 'fs'));
      row = row.parent_id === null ? undefined : (db.prepare(`SELECT id, parent_id FROM snapshots WHERE id = ?`).get(row.parent_id) as typeof row);
    }
    return dirs;
  } finally {
    db.close();
  }
}

describe('images: an overlayfs unpack equals umoci unpack', { skip }, () => {
  let d: TestDaemon;
  let reg: TestRegistry;
  let work: string;
  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'berth-tree-'));
    reg = await startRegistry();
    d = await startDaemon();
  });
  after(async () => {
    await execFileP('umount', [path.join(work, 'merged')]).catch(() => {});
    // Unmount first, so removing the daemon's temp dir never descends into a mount.
    await cleanupDaemonMounts(d);
    await d?.stop().catch(() => {});
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('reproduces paths, types, modes, owners, xattrs, link targets, whiteouts and opaque dirs', async () => {
    const layout = path.join(work, 'layout');
    const spec = treeSpec();
    const built = await buildImage(layout, spec, { tag: 'tree' });
    const ref = `${reg.host}/tree:1`;
    await pushToRegistry(layout, ref, { tag: 'tree' });

    const r = await d.cli(['pull', ref]);
    assert.equal(r.code, 0, r.stderr + d.logs());
    const inspect = JSON.parse((await d.cli(['image', 'inspect', ref])).stdout)[0];
    const chainId = inspect.GraphDriver.Data.ChainID as string;
    const dirs = snapshotDirs(d.root, chainId);
    assert.equal(dirs.length, built.layers.length);
    const merged = path.join(work, 'merged');
    await mkdir(merged);
    await execFileP('mount', ['-t', 'overlay', 'overlay', '-o', `ro,index=off,lowerdir=${dirs.join(':')}`, merged]);
    const ours = await describeTree(merged);
    await execFileP('umount', [merged]);

    await execFileP('umoci', ['unpack', '--image', `${layout}:tree`, path.join(work, 'bundle')]);
    const theirs = await describeTree(path.join(work, 'bundle', 'rootfs'));
    assert.ok(theirs.has('data/a.txt') && !theirs.has('gone') && theirs.has('opaque/new') && !theirs.has('opaque/old'));
    assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort());
    for (const [p, v] of theirs) assert.equal(ours.get(p), v, `path ${p}`);
  });

  it('the copy snapshotter (layers applied in order) gives the same tree', async () => {
    const nd = await startDaemon({ config: 'version = 1\n[images]\nsnapshotter = "native"\n' });
    try {
      const ref = `${reg.host}/tree:1`;
      const r = await nd.cli(['pull', ref]);
      assert.equal(r.code, 0, r.stderr + nd.logs());
      const chainId = JSON.parse((await nd.cli(['image', 'inspect', ref])).stdout)[0].GraphDriver.Data.ChainID as string;
      const [top] = snapshotDirs(nd.root, chainId, 'native');
      const ours = await describeTree(top);
      const theirs = await describeTree(path.join(work, 'bundle', 'rootfs'));
      assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort());
      for (const [p, v] of theirs) assert.equal(ours.get(p), v, `path ${p}`);
    } finally {
      await cleanupDaemonMounts(nd);
      await nd.stop();
    }
  });
});

/** Two layers over busybox exercising owners, modes, xattrs, links, whiteouts and an opaque dir. */
function treeSpec() {
  return busyboxImage([
    {
      files: [
        { path: 'data', type: 'dir', mode: 0o750, uid: 1000, gid: 1000 },
        { path: 'data/a.txt', content: 'alpha\n', mode: 0o640, uid: 1000, gid: 100, xattrs: { 'user.origin': 'layer2' } },
        { path: 'data/suid', content: '#!/bin/sh\n', mode: 0o4755 },
        { path: 'data/link', type: 'symlink', target: '../etc/passwd' },
        { path: 'data/hard', type: 'hardlink', target: 'data/a.txt' },
        { path: 'gone', type: 'dir' },
        { path: 'gone/file', content: 'x' },
        { path: 'opaque', type: 'dir' },
        { path: 'opaque/old', content: 'old' },
      ],
      // umoci reads gzip and plain layers only; zstd pulls are covered elsewhere.
      compression: 'gzip',
      createdBy: 'data',
    },
    {
      files: [
        { path: 'gone', type: 'whiteout' },
        { path: 'etc/motd', type: 'whiteout' },
        { path: 'opaque', type: 'opaque' },
        { path: 'opaque/new', content: 'new', mode: 0o600 },
        { path: 'tmp/sticky', type: 'dir', mode: 0o1777 },
      ],
      compression: 'none',
      createdBy: 'changes',
    },
  ]);
}
