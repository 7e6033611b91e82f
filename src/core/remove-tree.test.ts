import assert from 'node:assert/strict';
import { closeSync, constants as fsc, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { emptyTrash, isSmallTree, onTmpfs, removeOrSetAside, removeTree, removeTreeAt } from './remove-tree.ts';

/** `depth` nested directories under `dir` (each holding a file), made relative to descriptors: their paths outgrow PATH_MAX. */
function makeDeep(dir: string, depth: number): void {
  let fd = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    for (let i = 0; i < depth; i++) {
      mkdirSync(`/proc/self/fd/${fd}/dddddddd`);
      writeFileSync(`/proc/self/fd/${fd}/f`, 'x');
      const child = openSync(`/proc/self/fd/${fd}/dddddddd`, fsc.O_RDONLY | fsc.O_DIRECTORY);
      closeSync(fd);
      fd = child;
    }
  } finally {
    closeSync(fd);
  }
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

test('removeTree removes small and large trees, and a missing one is fine', async () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'remove-tree-'));
  try {
    const small = path.join(tmp, 'small');
    mkdirSync(path.join(small, 'a', 'b'), { recursive: true });
    writeFileSync(path.join(small, 'a', 'b', 'f'), 'x');
    assert.equal(isSmallTree(small, 256), true);
    await removeTree(small);
    assert.equal(existsSync(small), false);

    const large = path.join(tmp, 'large');
    mkdirSync(large);
    for (let i = 0; i < 20; i++) writeFileSync(path.join(large, `f${i}`), 'xxxx');
    assert.equal(isSmallTree(large, 10), false);
    assert.equal(isSmallTree(large, 100, 40), false);
    assert.equal(isSmallTree(large, 100, 80), true);
    await removeTree(large, { maxEntries: 10 });
    assert.equal(existsSync(large), false);

    assert.equal(isSmallTree(path.join(tmp, 'missing'), 10), true);
    await removeTree(path.join(tmp, 'missing'));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('onTmpfs tells a tmpfs from other file systems', () => {
  assert.equal(onTmpfs('/dev/shm'), true);
  assert.equal(onTmpfs('/proc'), false);
  assert.equal(onTmpfs('/no/such/dir'), false);
});

test('removeTree removes a tree deeper than PATH_MAX allows to name, with one descriptor at a time', async () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'remove-tree-'));
  try {
    const deep = path.join(tmp, 'deep');
    mkdirSync(deep);
    // 9 bytes a level: 1,000 levels name a path over twice PATH_MAX.
    makeDeep(deep, 1000);
    symlinkSync('/etc', path.join(deep, 'link'));
    writeFileSync(path.join(tmp, 'outside'), 'kept');
    const before = openFds();
    await removeTree(deep);
    assert.equal(existsSync(deep), false);
    assert.equal(existsSync('/etc/passwd'), true);
    assert.equal(existsSync(path.join(tmp, 'outside')), true);
    assert.equal(openFds(), before);

    // The descriptor-relative removal on its own, and on a file and a missing path.
    mkdirSync(deep);
    makeDeep(deep, 50);
    await removeTreeAt(deep);
    assert.equal(existsSync(deep), false);
    writeFileSync(deep, 'x');
    await removeTreeAt(deep);
    assert.equal(existsSync(deep), false);
    await removeTreeAt(deep);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('removeTreeAt does not enter a mount point inside the tree', { skip: process.getuid?.() !== 0 ? 'needs root to mount' : false }, async () => {
  const { mount, umount2 } = await import('./sys.ts');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'remove-tree-'));
  const mnt = path.join(tmp, 'tree', 'a', 'mnt');
  try {
    mkdirSync(mnt, { recursive: true });
    mount('tmpfs', mnt, 'tmpfs', 0, 'size=1m');
    writeFileSync(path.join(mnt, 'precious'), 'x');
    await assert.rejects(removeTreeAt(path.join(tmp, 'tree')), (err: NodeJS.ErrnoException) => err.code === 'EBUSY');
    assert.equal(existsSync(path.join(mnt, 'precious')), true);
  } finally {
    try {
      umount2(mnt, 2);
    } catch {
      // Not mounted.
    }
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('removeOrSetAside moves what it cannot remove into the trash, and emptyTrash retries it', { skip: process.getuid?.() !== 0 ? 'needs root to mount' : false }, async () => {
  const { mount, umount2 } = await import('./sys.ts');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'remove-tree-'));
  const mounted: string[] = [];
  try {
    const trash = path.join(tmp, 'trash');
    const ok = path.join(tmp, 'ok');
    mkdirSync(ok);
    assert.equal(await removeOrSetAside(ok, trash), undefined);
    assert.equal(existsSync(ok), false);

    // rmdir refuses a mount point (EBUSY), but the directory holding it can be renamed.
    const stuck = path.join(tmp, 'stuck');
    mkdirSync(path.join(stuck, 'mnt'), { recursive: true });
    mount('tmpfs', path.join(stuck, 'mnt'), 'tmpfs', 0, 'size=1m');
    const movedTo = (await removeOrSetAside(stuck, trash))?.movedTo ?? '';
    assert.ok(movedTo.startsWith(`${trash}/stuck-`), movedTo);
    assert.equal(existsSync(stuck), false);
    mounted.push(path.join(movedTo, 'mnt'));
    const left = await emptyTrash(trash);
    assert.deepEqual(left.map((x) => x.path), [movedTo]);

    // The mount point itself can be neither removed nor renamed: it stays, and the caller is told.
    const r2 = await removeOrSetAside(mounted[0], trash);
    assert.ok(r2 && r2.movedTo === undefined);

    umount2(mounted.pop()!, 2);
    assert.deepEqual(await emptyTrash(trash), []);
    assert.deepEqual(readdirSync(trash), []);
    assert.deepEqual(await emptyTrash(path.join(tmp, 'none')), []);
  } finally {
    for (const m of mounted) umount2(m, 2);
    rmSync(tmp, { recursive: true, force: true });
  }
});
