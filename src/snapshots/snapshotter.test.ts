import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCtx } from '../core/context.ts';
import { kindOf } from '../core/errors.ts';
import { MetadataDb } from '../metadata/db.ts';
import { applyLayer } from './apply.ts';
import { mountAll, planMount, unmountAll, withMounts, writableDir } from './mount.ts';
import { NativeSnapshotter } from './native.ts';
import { OverlaySnapshotter } from './overlay.ts';
import { makeTar } from './testdata/tar.ts';
import type { Snapshotter } from './types.ts';

const isRoot = process.getuid?.() === 0;
const ctx = rootCtx();

async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').map((l) => l.split(' ')[4]).filter((p) => p !== undefined && (p === dir || p.startsWith(`${dir}/`)));
}

type Open = (root: string, db: MetadataDb) => Promise<Snapshotter>;
const impls: Array<[string, Open]> = [
  ['overlayfs', (root, db) => OverlaySnapshotter.open(ctx, { root, db })],
  ['native', (root, db) => NativeSnapshotter.open(ctx, { root, db })],
];

/** A temp root with a database and a snapshotter; checks that no mount is left at the end. */
async function withSnapshotter(open: Open, fn: (sn: Snapshotter, tmp: string, db: MetadataDb) => Promise<void>): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), 'berth-sn-'));
  const db = new MetadataDb(join(tmp, 'meta.db'));
  try {
    const sn = await open(join(tmp, 'sn'), db);
    await fn(sn, tmp, db);
    await sn.close();
    assert.deepEqual(await mountsUnder(tmp), []);
  } finally {
    for (const m of (await mountsUnder(tmp)).reverse()) await unmountAll(ctx, m).catch(() => {});
    db.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

async function withMountDir<T>(tmp: string, mounts: Parameters<typeof mountAll>[1], fn: (dir: string) => Promise<T>): Promise<T> {
  const target = await mkdtemp(join(tmp, 'mnt-'));
  await mountAll(ctx, mounts, target);
  try {
    return await fn(target);
  } finally {
    await unmountAll(ctx, target);
    await rm(target, { recursive: true });
  }
}

test('planMount splits options into flags and data', () => {
  assert.deepEqual(planMount({ type: 'bind', source: '/a', options: ['rbind', 'ro'] }), { flags: 0x1000 | 0x4000 | 0x1, data: '', propagation: 0, remountFlags: 0x1000 | 0x1 | 0x20 });
  assert.deepEqual(planMount({ type: 'bind', source: '/a', options: ['rbind', 'rw'] }).remountFlags, 0);
  const o = planMount({ type: 'overlay', source: 'overlay', options: ['index=off', 'lowerdir=/a:/b', 'nosuid', 'rprivate'] });
  assert.deepEqual(o, { flags: 0x2, data: 'index=off,lowerdir=/a:/b', propagation: 0x40000 | 0x4000, remountFlags: 0 });
  assert.equal(writableDir([{ type: 'bind', source: '/x', options: ['rbind', 'rw'] }]), '/x');
  assert.equal(writableDir([{ type: 'bind', source: '/x', options: ['rbind', 'ro'] }]), undefined);
  assert.equal(writableDir([{ type: 'overlay', source: 'overlay', options: [] }]), undefined);
});

test('an overlay whose options exceed a page mounts through the new mount API', { skip: !isRoot && 'needs root to mount' }, async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'berth-long-'));
  const target = join(tmp, 'merged');
  try {
    const lowers: string[] = [];
    for (let i = 0; i < 120; i++) {
      const d = join(tmp, `layer-with-a-rather-long-directory-name-${String(i).padStart(4, '0')}`);
      await mkdir(d);
      await writeFile(join(d, `f${i}`), String(i));
      lowers.push(d);
    }
    await writeFile(join(lowers[0], 'shadowed'), 'top');
    await writeFile(join(lowers[119], 'shadowed'), 'bottom');
    await mkdir(target);
    const mounts = [{ type: 'overlay', source: 'overlay', options: ['index=off', `lowerdir=${lowers.join(':')}`, 'nodev'] }];
    assert.ok(planMount(mounts[0]).data.length > 4096);
    await mountAll(ctx, mounts, target);
    try {
      assert.equal(await readFile(join(target, 'f0'), 'utf8'), '0');
      assert.equal(await readFile(join(target, 'f119'), 'utf8'), '119');
      assert.equal(await readFile(join(target, 'shadowed'), 'utf8'), 'top');
      assert.equal((await readdir(target)).length, 121);
    } finally {
      await unmountAll(ctx, target);
    }
    assert.deepEqual(await mountsUnder(tmp), []);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});

for (const [name, open] of impls) {
  test(`${name}: prepare, write, commit, stack, view, remove`, { skip: !isRoot && 'needs root to mount' }, async () => {
    await withSnapshotter(open, async (sn, tmp) => {
      const m1 = await sn.prepare(ctx, 'a1', undefined, { labels: { x: '1' } });
      const dir1 = writableDir(m1);
      assert.ok(dir1, 'a snapshot without parent is a plain directory');
      await writeFile(join(dir1, 'base'), 'lower');
      await writeFile(join(dir1, 'gone'), 'x');
      await sn.commit(ctx, 'l1', 'a1', { labels: { y: '2' } });
      const info = await sn.stat(ctx, 'l1');
      assert.deepEqual([info.kind, info.parent, info.labels], ['committed', undefined, { x: '1', y: '2' }]);
      await assert.rejects(sn.stat(ctx, 'a1'), (e) => kindOf(e) === 'NotFound');

      const m2 = await sn.prepare(ctx, 'a2', 'l1');
      await withMountDir(tmp, m2, async (root) => {
        assert.equal(await readFile(join(root, 'base'), 'utf8'), 'lower');
        await writeFile(join(root, 'upper'), 'new');
        await unlink(join(root, 'gone'));
      });
      await sn.commit(ctx, 'l2', 'a2');
      assert.equal((await sn.stat(ctx, 'l2')).parent, 'l1');

      await sn.view(ctx, 'v', 'l2');
      await withMountDir(tmp, await sn.mounts(ctx, 'v'), async (root) => {
        assert.deepEqual((await readdir(root)).sort(), ['base', 'upper']);
        await assert.rejects(writeFile(join(root, 'x'), 'y'), (e: NodeJS.ErrnoException) => e.code === 'EROFS');
      });
      await sn.view(ctx, 'v1', 'l1');
      await withMountDir(tmp, await sn.mounts(ctx, 'v1'), async (root) => {
        assert.deepEqual((await readdir(root)).sort(), ['base', 'gone']);
      });
      // A committed snapshot mounts as a read-only view of itself.
      await withMounts(ctx, await sn.mounts(ctx, 'l2'), tmp, async (root) => {
        assert.deepEqual((await readdir(root)).sort(), ['base', 'upper']);
      });

      const names: string[] = [];
      await sn.walk(ctx, (i) => {
        names.push(`${i.name}:${i.kind}:${i.parent ?? ''}`);
      });
      assert.deepEqual(names.sort(), ['l1:committed:', 'l2:committed:l1', 'v1:view:l1', 'v:view:l2']);

      await assert.rejects(sn.remove(ctx, 'l1'), (e) => kindOf(e) === 'Conflict');
      await assert.rejects(sn.commit(ctx, 'c', 'v'), (e) => kindOf(e) === 'Conflict');
      for (const k of ['v', 'v1', 'l2', 'l1']) await sn.remove(ctx, k);
      assert.deepEqual(await readdir(join(tmp, 'sn', 'snapshots')), []);
    });
  });

  test(`${name}: errors name the snapshot and carry their kind`, { skip: !isRoot && 'needs root' }, async () => {
    await withSnapshotter(open, async (sn) => {
      await sn.prepare(ctx, 'a', undefined);
      await assert.rejects(sn.prepare(ctx, 'a', undefined), (e) => kindOf(e) === 'AlreadyExists');
      await assert.rejects(sn.prepare(ctx, 'b', 'missing'), (e) => kindOf(e) === 'NotFound' && /"missing"/.test((e as Error).message));
      await assert.rejects(sn.prepare(ctx, 'b', 'a'), (e) => kindOf(e) === 'InvalidArgument');
      await assert.rejects(sn.prepare(ctx, '', undefined), (e) => kindOf(e) === 'InvalidArgument');
      await assert.rejects(sn.stat(ctx, 'nope'), (e) => kindOf(e) === 'NotFound');
      await assert.rejects(sn.mounts(ctx, 'nope'), (e) => kindOf(e) === 'NotFound');
      await assert.rejects(sn.remove(ctx, 'nope'), (e) => kindOf(e) === 'NotFound');
      await sn.prepare(ctx, 'c', undefined);
      await sn.commit(ctx, 'committed', 'c');
      await assert.rejects(sn.commit(ctx, 'committed', 'a'), (e) => kindOf(e) === 'AlreadyExists');
      await assert.rejects(sn.commit(ctx, 'x', 'committed'), (e) => kindOf(e) === 'InvalidArgument');
      await assert.rejects(sn.commit(ctx, 'x', 'a', { parent: 'missing' }), (e) => kindOf(e) === 'NotFound');
      await sn.prepare(ctx, 'd', 'committed');
      await sn.prepare(ctx, 'e', undefined);
      await sn.commit(ctx, 'other', 'e');
      await assert.rejects(sn.commit(ctx, 'x', 'd', { parent: 'other' }), (e) => kindOf(e) === 'InvalidArgument');
      // The failed commits left everything as it was.
      assert.equal((await sn.stat(ctx, 'a')).kind, 'active');
      assert.equal((await sn.stat(ctx, 'd')).kind, 'active');
    });
  });

  test(`${name}: usage counts blocks and inodes once per inode`, { skip: !isRoot && 'needs root' }, async () => {
    await withSnapshotter(open, async (sn) => {
      const dir = writableDir(await sn.prepare(ctx, 'a', undefined))!;
      const empty = await sn.usage(ctx, 'a');
      await writeFile(join(dir, 'f'), Buffer.alloc(100_000, 1));
      await mkdir(join(dir, 'd'));
      const { link } = await import('node:fs/promises');
      await link(join(dir, 'f'), join(dir, 'd', 'h'));
      const u = await sn.usage(ctx, 'a');
      assert.equal(u.inodes, empty.inodes + 2);
      assert.ok(u.size - empty.size >= 100_000 && u.size - empty.size < 300_000, `size ${u.size}`);
    });
  });

  test(`${name}: opening removes what a crash left behind`, { skip: !isRoot && 'needs root' }, async () => {
    await withSnapshotter(open, async (sn, tmp, db) => {
      await sn.prepare(ctx, 'keep', undefined);
      await mkdir(join(tmp, 'sn', 'snapshots', '999', 'fs'), { recursive: true });
      await mkdir(join(tmp, 'sn', 'snapshots', 'rm-3'));
      const again = await open(join(tmp, 'sn'), db);
      const left = await readdir(join(tmp, 'sn', 'snapshots'));
      assert.equal(left.length, 1);
      assert.equal((await again.stat(ctx, 'keep')).kind, 'active');
    });
  });
}

test('overlayfs: parallel unpack, layers extracted apart and attached to their parents at commit', { skip: !isRoot && 'needs root' }, async () => {
  await withSnapshotter(impls[0][1], async (sn, tmp) => {
    const layers = [
      makeTar([
        { name: 'etc/', type: 'dir' }, { name: 'etc/old.conf', data: 'old' }, { name: 'etc/keep', data: 'k' },
        { name: 'var/', type: 'dir' }, { name: 'var/cache/', type: 'dir' }, { name: 'var/cache/x', data: 'x' },
      ]),
      makeTar([{ name: 'etc/', type: 'dir' }, { name: 'etc/.wh.old.conf' }, { name: 'var/', type: 'dir' }, { name: 'var/.wh..wh..opq' }, { name: 'var/new', data: 'n' }]),
      makeTar([{ name: 'etc/added', data: 'a' }]),
    ];
    // Every layer extracts at once into its own parentless snapshot.
    await Promise.all(layers.map(async (tar, i) => {
      const dir = writableDir(await sn.prepare(ctx, `extract-${i}`, undefined))!;
      await applyLayer(ctx, dir, (async function* () { yield tar; })(), { format: 'overlay' });
    }));
    await sn.commit(ctx, 'c0', 'extract-0');
    await sn.commit(ctx, 'c1', 'extract-1', { parent: 'c0' });
    await sn.commit(ctx, 'c2', 'extract-2', { parent: 'c1' });
    await sn.prepare(ctx, 'container', 'c2');
    await withMountDir(tmp, await sn.mounts(ctx, 'container'), async (root) => {
      assert.deepEqual((await readdir(join(root, 'etc'))).sort(), ['added', 'keep']);
      assert.deepEqual((await readdir(join(root, 'var'))).sort(), ['new']);
    });
    await assert.rejects(sn.remove(ctx, 'c0'), (e) => kindOf(e) === 'Conflict');
    for (const k of ['container', 'c2', 'c1', 'c0']) await sn.remove(ctx, k);
  });
});

test('overlayfs: a refused layer leaves its snapshot removable, and removal never follows its symlinks', { skip: !isRoot && 'needs root' }, async () => {
  await withSnapshotter(impls[0][1], async (sn, tmp) => {
    const outside = join(tmp, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'precious'), 'keep');
    const dir = writableDir(await sn.prepare(ctx, 'evil', undefined))!;
    const tar = makeTar([
      { name: 'locked/', type: 'dir', mode: 0 },
      { name: 'locked/f', data: 'x', mode: 0 },
      { name: 'out', type: 'symlink', linkname: outside },
      { name: 'out/precious', data: 'overwritten' },
    ]);
    await assert.rejects(applyLayer(ctx, dir, (async function* () { yield tar; })(), { format: 'overlay' }), (e) => kindOf(e) === 'InvalidArgument' && /"out\/precious"/.test((e as Error).message));
    await sn.remove(ctx, 'evil');
    assert.equal(await readFile(join(outside, 'precious'), 'utf8'), 'keep');
    assert.deepEqual(await readdir(join(tmp, 'sn', 'snapshots')), []);
  });
});

test('overlayfs: a layer nested deeper than a path can name is refused, and its snapshot goes however deep it got', { skip: !isRoot && 'needs root' }, async () => {
  await withSnapshotter(impls[0][1], async (sn, tmp, db) => {
    const dir = writableDir(await sn.prepare(ctx, 'deep', undefined))!;
    const entries = [];
    for (let i = 1, p = ''; i <= 600; i++) entries.push({ name: (p += 'dddddddd/'), type: 'dir' as const });
    const tar = makeTar(entries);
    await assert.rejects(
      applyLayer(ctx, dir, (async function* () { yield tar; })(), { format: 'overlay' }),
      (e) => kindOf(e) === 'InvalidArgument' && /path too long to unpack/.test((e as Error).message) && (e as Error).message.length < 400,
    );
    await sn.remove(ctx, 'deep');
    assert.deepEqual(await readdir(join(tmp, 'sn', 'snapshots')), []);

    // The same tree left by a crash (no row) is removed at the next open.
    const left = join(tmp, 'sn', 'snapshots', '77', 'fs');
    await mkdir(left, { recursive: true });
    await assert.rejects(applyLayer(ctx, left, (async function* () { yield tar; })(), { format: 'overlay' }));
    const again = await OverlaySnapshotter.open(ctx, { root: join(tmp, 'sn'), db });
    assert.deepEqual(await readdir(join(tmp, 'sn', 'snapshots')), []);
    // Moved to the trash at open and removed from there in the background, which close waits for.
    await again.close();
    assert.deepEqual(await readdir(join(tmp, 'sn', 'trash')), []);
  });
});

test('a leftover snapshot directory that cannot be removed is moved to the trash, and open goes on', { skip: !isRoot && 'needs root' }, async () => {
  await withSnapshotter(impls[0][1], async (_sn, tmp, db) => {
    const stuck = join(tmp, 'sn', 'snapshots', '55', 'fs');
    await mkdir(stuck, { recursive: true });
    // A mount inside: rmdir refuses it (EBUSY); the directory holding it can still be renamed.
    await mountAll(ctx, [{ type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] }], stuck);
    let trashed: string | undefined;
    try {
      await (await OverlaySnapshotter.open(ctx, { root: join(tmp, 'sn'), db })).close();
      assert.deepEqual(await readdir(join(tmp, 'sn', 'snapshots')), []);
      const trash = await readdir(join(tmp, 'sn', 'trash'));
      assert.equal(trash.length, 1);
      trashed = join(tmp, 'sn', 'trash', trash[0], 'fs');
      // Still there at the next open, which goes on again.
      await (await OverlaySnapshotter.open(ctx, { root: join(tmp, 'sn'), db })).close();
      assert.equal((await readdir(join(tmp, 'sn', 'trash'))).length, 1);
    } finally {
      await unmountAll(ctx, trashed ?? stuck);
    }
    await (await OverlaySnapshotter.open(ctx, { root: join(tmp, 'sn'), db })).close();
    assert.deepEqual(await readdir(join(tmp, 'sn', 'trash')), []);
  });
});

test('native: a parentless snapshot cannot be attached to a parent at commit', { skip: !isRoot && 'needs root' }, async () => {
  await withSnapshotter(impls[1][1], async (sn) => {
    await sn.prepare(ctx, 'p', undefined);
    await sn.commit(ctx, 'base', 'p');
    await sn.prepare(ctx, 'x', undefined);
    await assert.rejects(sn.commit(ctx, 'l', 'x', { parent: 'base' }), (e) => kindOf(e) === 'InvalidArgument');
    assert.equal(sn.capabilities.parallelUnpack, false);
  });
});

test('openSnapshots opens the configured snapshotter and clears temp mounts a crash left', { skip: !isRoot && 'needs root' }, async () => {
  const { openSnapshots } = await import('./open.ts');
  const tmp = await mkdtemp(join(tmpdir(), 'berth-open-'));
  const db = new MetadataDb(join(tmp, 'meta.db'));
  try {
    const left = join(tmp, 'snapshots', 'mounts', 'mount-crashed');
    await mkdir(left, { recursive: true });
    await mountAll(ctx, [{ type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] }], left);
    const snaps = await openSnapshots(ctx, 'overlayfs', { root: tmp, db, applierWorkers: 1 });
    assert.equal(snaps.snapshotter.name, 'overlayfs');
    assert.deepEqual(await mountsUnder(tmp), []);
    assert.deepEqual(await readdir(join(tmp, 'snapshots', 'mounts')), []);
    const base = await snaps.snapshotter.prepare(ctx, 'b', undefined);
    await snaps.withMounted(ctx, base, async (dir) => writeFile(join(dir, 'f'), 'x'));
    await snaps.snapshotter.commit(ctx, 'base', 'b');
    const seen = await snaps.withMounted(ctx, await snaps.snapshotter.view(ctx, 'v', 'base'), (dir) => readFile(join(dir, 'f'), 'utf8'));
    assert.equal(seen, 'x');
    assert.deepEqual(await mountsUnder(tmp), []);
    const layer = await snaps.snapshotter.prepare(ctx, 'layer', undefined);
    const res = await snaps.withMounted(ctx, layer, (dir) => snaps.applyLayer(ctx, dir, (async function* () { yield makeTar([{ name: 'a', data: 'b' }]); })(), { format: 'overlay' }));
    assert.match(res.diffId, /^sha256:/);
    await snaps.close();
    const native = await openSnapshots(ctx, 'native', { root: tmp, db });
    assert.equal(native.snapshotter.capabilities.parallelUnpack, false);
    await native.close();
  } finally {
    for (const m of (await mountsUnder(tmp)).reverse()) await unmountAll(ctx, m).catch(() => {});
    db.close();
    await rm(tmp, { recursive: true, force: true });
  }
});

test('removes an active snapshot when the disk is full, its own data first', { skip: !isRoot && 'needs root (tmpfs)' }, async () => {
  // Database and snapshots on one small tmpfs, filled by the snapshot's data as a failed pull's half-unpacked layer fills it.
  const tmp = await mkdtemp(join(tmpdir(), 'berth-sn-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'berth-test-sn-full', tmp]);
  const db = new MetadataDb(join(tmp, 'meta.db'));
  try {
    const sn = await OverlaySnapshotter.open(ctx, { root: join(tmp, 'sn'), db });
    const mounts = await sn.prepare(ctx, 'extract-full', undefined);
    const upper = mounts[0].options?.find((o) => o.startsWith('upperdir='))?.slice('upperdir='.length) ?? mounts[0].source;
    const chunk = Buffer.alloc(64 << 10, 1);
    await assert.rejects(async () => {
      for (let i = 0; ; i++) await writeFile(join(upper, `fill-${i}`), chunk);
    }, /ENOSPC/);
    assert.throws(() => db.transaction(() => db.sql.exec(`CREATE TABLE full_probe (x BLOB); INSERT INTO full_probe VALUES (zeroblob(65536))`)), /full/, 'the database cannot write either');
    await sn.remove(ctx, 'extract-full');
    await assert.rejects(sn.stat(ctx, 'extract-full'), (err) => kindOf(err) === 'NotFound');
    assert.deepEqual(await readdir(join(tmp, 'sn', 'snapshots')), []);
    await sn.close();
  } finally {
    db.close();
    execFileSync('umount', [tmp]);
    await rm(tmp, { recursive: true, force: true });
  }
});
