import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCtx } from '../../src/core/context.ts';
import { lgetxattr, llistxattr } from '../../src/core/sys.ts';
import { applyLayer } from '../../src/snapshots/apply.ts';
import { mountAll, unmountAll } from '../../src/snapshots/mount.ts';
import { makeTar } from '../../src/snapshots/testdata/tar.ts';
import type { TarSpec } from '../../src/snapshots/testdata/tar.ts';

/**
 * The applier must unpack an image to the same tree as umoci: paths, types,
 * modes, owners, xattrs, link targets, device numbers, hard-link groups and
 * file contents. The image mixes layers written by python's tarfile (added
 * verbatim with `umoci raw add-layer`) and a diff umoci computes itself
 * (`umoci repack`), and is unpacked both in 'plain' format onto one tree and
 * in 'overlay' format as layers mounted together.
 */
const isRoot = process.getuid?.() === 0;
const ctx = rootCtx();

const layer1: TarSpec[] = [
  { name: 'etc/', type: 'dir' },
  { name: 'etc/passwd', data: 'root:x:0:0::/root:/bin/sh\n' },
  { name: 'etc/shadow', data: 'root:*::0:::::\n', mode: 0o640, gid: 42 },
  { name: 'bin/', type: 'dir' },
  { name: 'bin/busybox', data: 'ELF busybox', mode: 0o755, xattrs: { 'user.origin': 'test' } },
  { name: 'bin/ping', data: 'ELF ping', mode: 0o4755, xattrs: { 'security.capability': '\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' } },
  { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
  { name: 'bin/ls', type: 'hardlink', linkname: 'bin/busybox' },
  { name: 'bin/abs', type: 'symlink', linkname: '/bin/busybox' },
  { name: 'tmp/', type: 'dir', mode: 0o1777 },
  { name: 'home/', type: 'dir' },
  { name: 'home/alice/', type: 'dir', mode: 0o2750, uid: 1000, gid: 1000 },
  { name: 'home/alice/.profile', data: 'export A=1\n', uid: 1000, gid: 1000, mode: 0o600 },
  { name: 'dev/', type: 'dir' },
  { name: 'dev/null', type: 'char', major: 1, minor: 3, mode: 0o666 },
  { name: 'dev/loop0', type: 'block', major: 7, minor: 0, mode: 0o660, gid: 6 },
  { name: 'run/', type: 'dir' },
  { name: 'run/ctl', type: 'fifo', mode: 0o600 },
  { name: 'usr/', type: 'dir' },
  { name: 'usr/lib/', type: 'dir' },
  { name: 'usr/lib/libc.so', data: 'libc' },
  { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
  { name: 'var/', type: 'dir' },
  { name: 'var/lib/', type: 'dir' },
  { name: 'var/lib/apt/', type: 'dir' },
  { name: 'var/lib/apt/a', data: 'a' },
  { name: 'var/lib/apt/sub/', type: 'dir' },
  { name: 'var/lib/apt/sub/b', data: 'b' },
  { name: 'opt/', type: 'dir' },
  { name: 'opt/old/', type: 'dir' },
  { name: 'opt/old/x', data: 'x' },
  { name: `opt/${'long'.repeat(60)}`, data: 'long name' },
  { name: 'opt/café', data: 'unicode' },
  { name: 'srv/', type: 'dir' },
  { name: 'srv/data/', type: 'dir' },
  { name: 'srv/data/f', data: 'f' },
];

const layer3: TarSpec[] = [
  { name: 'var/lib/apt/', type: 'dir', xattrs: { 'user.layer': '3' } },
  { name: 'var/lib/apt/.wh..wh..opq' },
  { name: 'var/lib/apt/fresh', data: 'fresh' },
  { name: 'home/', type: 'dir' },
  { name: 'home/.wh.alice' },
  { name: 'srv/', type: 'dir' },
  { name: 'srv/data', data: 'now a file', mode: 0o444, uid: 7, gid: 8 },
  { name: 'etc/', type: 'dir' },
  { name: 'etc/ping-link', type: 'hardlink', linkname: 'etc/newfile' },
];
// A hard link needs its target in the same layer.
layer3.splice(layer3.length - 1, 0, { name: 'etc/newfile', data: 'linked', mode: 0o755 });

interface Node {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  sha?: string;
  link?: string;
  rdev?: number;
  xattrs: Record<string, string>;
  /** Index of the first path sharing this inode, for hard-link groups. */
  group?: string;
}

async function snapshotTree(root: string): Promise<Record<string, Node>> {
  const out: Record<string, Node> = {};
  const byIno = new Map<number, string>();
  const walk = async (rel: string): Promise<void> => {
    const abs = rel === '' ? root : join(root, rel);
    const st = await lstat(abs);
    const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : 'other';
    const xattrs: Record<string, string> = {};
    for (const name of llistxattr(abs)) {
      if (name.startsWith('trusted.overlay.') || name === 'security.selinux') continue;
      xattrs[name] = lgetxattr(abs, name).toString('hex');
    }
    const node: Node = { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, xattrs };
    if (type === 'symlink') {
      node.link = await readlink(abs);
      delete (node as Partial<Node>).mode;
    }
    if (type === 'char' || type === 'block') node.rdev = st.rdev;
    if (type === 'file') {
      node.size = st.size;
      node.sha = createHash('sha256').update(await readFile(abs)).digest('hex');
      if (st.nlink > 1) {
        if (!byIno.has(st.ino)) byIno.set(st.ino, rel);
        node.group = byIno.get(st.ino);
      }
    }
    out[rel === '' ? '.' : rel] = node;
    if (type === 'dir') for (const n of (await readdir(abs)).sort()) await walk(rel === '' ? n : `${rel}/${n}`);
  };
  await walk('');
  return out;
}

interface Manifest {
  layers: Array<{ digest: string; mediaType: string }>;
}

function blobPath(layout: string, digest: string): string {
  return join(layout, 'blobs', ...digest.split(':'));
}

async function manifestOf(layout: string): Promise<Manifest> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 't')!;
  return JSON.parse(await readFile(blobPath(layout, desc.digest), 'utf8')) as Manifest;
}

test('an image unpacks to the same tree as umoci unpack, in plain and overlay format', { skip: !isRoot && 'needs root (owners, devices, overlay mounts)' }, async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'berth-umoci-'));
  const merged = join(tmp, 'merged');
  let mountedOverlay = false;
  try {
    const layout = join(tmp, 'layout');
    const run = (...args: string[]) => execFileSync('umoci', args, { cwd: tmp, stdio: ['ignore', 'ignore', 'pipe'] });
    run('init', '--layout', layout);
    run('new', '--image', `${layout}:t`);
    await writeFile(join(tmp, 'l1.tar'), makeTar(layer1));
    run('raw', 'add-layer', '--image', `${layout}:t`, join(tmp, 'l1.tar'));

    // Layer 2 is a diff computed by umoci itself.
    run('unpack', '--image', `${layout}:t`, join(tmp, 'work'));
    const r = join(tmp, 'work', 'rootfs');
    await unlink(join(r, 'etc/shadow'));
    await rm(join(r, 'opt/old'), { recursive: true });
    await writeFile(join(r, 'etc/passwd'), 'root:x:0:0::/root:/bin/ash\n');
    await chmod(join(r, 'tmp'), 0o1770);
    await chown(join(r, 'usr/lib/libc.so'), 33, 33);
    await mkdir(join(r, 'srv/new/deep'), { recursive: true });
    await writeFile(join(r, 'srv/new/deep/file'), 'deep');
    await symlink('../etc/passwd', join(r, 'srv/new/pw'));
    run('repack', '--image', `${layout}:t`, join(tmp, 'work'));

    await writeFile(join(tmp, 'l3.tar'), makeTar(layer3));
    run('raw', 'add-layer', '--image', `${layout}:t`, join(tmp, 'l3.tar'));

    run('unpack', '--image', `${layout}:t`, join(tmp, 'bundle'));
    const expected = await snapshotTree(join(tmp, 'bundle', 'rootfs'));
    // The checks below are only meaningful if umoci applied what the layers say.
    assert.equal(expected['home/alice'], undefined);
    assert.equal(expected['var/lib/apt/a'], undefined);
    assert.equal(expected['srv/data'].type, 'file');
    assert.equal(expected['etc/shadow'], undefined);

    const { layers } = await manifestOf(layout);
    assert.equal(layers.length, 3);

    const plain = join(tmp, 'plain');
    await mkdir(plain);
    for (const l of layers) {
      const res = await applyLayer(ctx, plain, createReadStream(blobPath(layout, l.digest)), { format: 'plain' });
      assert.match(res.diffId, /^sha256:[0-9a-f]{64}$/);
    }
    // umoci gives the root directory of a bundle 0700 / its own times; compare the contents.
    const plainTree = await snapshotTree(plain);
    delete plainTree['.'];
    delete expected['.'];
    assert.deepEqual(plainTree, expected);

    const lowers: string[] = [];
    for (const [i, l] of layers.entries()) {
      const dir = join(tmp, `layer${i}`);
      await mkdir(dir);
      await applyLayer(ctx, dir, createReadStream(blobPath(layout, l.digest)), { format: 'overlay' });
      lowers.unshift(dir);
    }
    await mkdir(merged);
    await mountAll(ctx, [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${lowers.join(':')}`] }], merged);
    mountedOverlay = true;
    const overlayTree = await snapshotTree(merged);
    delete overlayTree['.'];
    assert.deepEqual(overlayTree, expected);
  } finally {
    if (mountedOverlay) await unmountAll(ctx, merged);
    await rm(tmp, { recursive: true, force: true });
  }
});
