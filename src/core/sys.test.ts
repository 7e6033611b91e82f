import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, stat, mkdir, symlink, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeSync } from 'node:fs';
import { errnoError, FSCONFIG, fsconfig, fsmount, fsopen, lgetxattr, llistxattr, lremovexattr, lsetxattr, makedev, mknod, mount, MOUNT_ATTR, moveMount, MS, S_IF, umount2 } from './sys.ts';

const isRoot = process.getuid?.() === 0;

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-sys-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function mounted(path: string): Promise<boolean> {
  return readFile('/proc/self/mountinfo', 'utf8').then((s) => s.split('\n').some((l) => l.split(' ')[4] === path));
}

test('makedev matches glibc for small and large numbers', () => {
  assert.equal(makedev(0, 0), 0n);
  assert.equal(makedev(1, 3), 0x103n);
  assert.equal(makedev(8, 17), 0x811n);
  assert.equal(makedev(259, 65536), 0x10010300n);
  // major 0x1234 / minor 0x56789: glibc gives 0x0000123456789 split as in sys/sysmacros.h.
  assert.equal(makedev(0x1234, 0x56789), (0x234n << 8n) | (0x1000n << 32n) | 0x89n | (0x56700n << 12n));
});

test('errors look like node:fs errors', async () => {
  const err = errnoError(2, 'mknod', '/x');
  assert.equal(err.code, 'ENOENT');
  assert.equal(err.errno, -2);
  assert.equal(err.syscall, 'mknod');
  assert.equal(err.path, '/x');
  assert.match(err.message, /^ENOENT: no such file or directory, mknod '\/x'$/);
  const fsErr = await stat('/nonexistent-berth').catch((e: NodeJS.ErrnoException) => e);
  assert.equal(typeof (fsErr as NodeJS.ErrnoException).errno, typeof err.errno);
});

test('wrappers check their arguments before calling', () => {
  assert.throws(() => mknod('', 0), TypeError);
  assert.throws(() => mknod('a\0b', 0), TypeError);
  assert.throws(() => mknod('/x', -1), TypeError);
  assert.throws(() => mount(null, '/x', null, 1.5), TypeError);
  assert.throws(() => lsetxattr('/x', 'noprefix', 'v'), TypeError);
  assert.throws(() => umount2('', 0), TypeError);
});

test('mknod on a missing directory throws ENOENT with path', () => {
  assert.throws(() => mknod('/nonexistent-berth/dev', S_IF.FIFO | 0o600), (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && e.syscall === 'mknod' && e.path === '/nonexistent-berth/dev');
});

test('mknod makes fifos and a 0/0 character device', { skip: !isRoot && 'needs root for device nodes' }, async () => {
  await withTmp(async (dir) => {
    mknod(join(dir, 'fifo'), S_IF.FIFO | 0o644);
    assert.ok((await stat(join(dir, 'fifo'))).isFIFO());
    mknod(join(dir, 'wh'), S_IF.CHR | 0o000, makedev(0, 0));
    const st = await stat(join(dir, 'wh'));
    assert.ok(st.isCharacterDevice());
    assert.equal(st.rdev, 0);
    mknod(join(dir, 'null'), S_IF.CHR | 0o666, makedev(1, 3));
    assert.equal((await stat(join(dir, 'null'))).rdev, 0x103);
    assert.throws(() => mknod(join(dir, 'wh'), S_IF.CHR, 0n), (e: NodeJS.ErrnoException) => e.code === 'EEXIST');
  });
});

test('xattrs in user.* and trusted.* namespaces, on files and on symlinks themselves', { skip: !isRoot && 'trusted.* needs CAP_SYS_ADMIN' }, async () => {
  await withTmp(async (dir) => {
    const f = join(dir, 'f');
    await writeFile(f, 'x');
    lsetxattr(f, 'user.berth', 'hello');
    lsetxattr(f, 'trusted.overlay.opaque', 'y');
    const big = Buffer.alloc(3000, 7);
    lsetxattr(f, 'user.big', big);
    assert.equal(lgetxattr(f, 'user.berth').toString(), 'hello');
    assert.equal(lgetxattr(f, 'trusted.overlay.opaque').toString(), 'y');
    assert.deepEqual(lgetxattr(f, 'user.big'), big);
    assert.deepEqual(llistxattr(f).sort(), ['trusted.overlay.opaque', 'user.berth', 'user.big']);
    lremovexattr(f, 'user.berth');
    assert.throws(() => lgetxattr(f, 'user.berth'), (e: NodeJS.ErrnoException) => e.code === 'ENODATA' && e.syscall === 'lgetxattr' && e.path === f);
    const l = join(dir, 'l');
    await symlink('f', l);
    lsetxattr(l, 'trusted.berth', Buffer.from([0, 1, 2]));
    assert.deepEqual(lgetxattr(l, 'trusted.berth'), Buffer.from([0, 1, 2]));
    assert.throws(() => lgetxattr(f, 'trusted.berth'), (e: NodeJS.ErrnoException) => e.code === 'ENODATA');
    assert.deepEqual(llistxattr(dir), []);
  });
});

test('mount a tmpfs, remount it read-only, unmount it', { skip: !isRoot && 'needs root to mount' }, async () => {
  await withTmp(async (dir) => {
    const target = join(dir, 'mnt');
    await mkdir(target);
    mount('tmpfs', target, 'tmpfs', MS.NOSUID | MS.NODEV, 'size=1m,mode=0755');
    try {
      assert.ok(await mounted(target));
      await writeFile(join(target, 'x'), 'y');
      mount(null, target, null, MS.REMOUNT | MS.RDONLY | MS.NOSUID | MS.NODEV, null);
      await assert.rejects(writeFile(join(target, 'z'), 'y'), (e: NodeJS.ErrnoException) => e.code === 'EROFS');
    } finally {
      umount2(target);
    }
    assert.equal(await mounted(target), false);
    assert.throws(() => umount2(target), (e: NodeJS.ErrnoException) => e.code === 'EINVAL' && e.syscall === 'umount2');
    assert.throws(() => mount('tmpfs', join(dir, 'missing'), 'tmpfs', 0, null), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
  });
});

test('the new mount API: fsopen, fsconfig, fsmount, move_mount a read-only tmpfs', { skip: !isRoot && 'needs root to mount' }, async () => {
  assert.throws(() => fsopen('no-such-fs-berth'), (e: NodeJS.ErrnoException) => e.code === 'ENODEV' && e.syscall === 'fsopen');
  await withTmp(async (dir) => {
    const fd = fsopen('tmpfs');
    try {
      assert.throws(() => fsconfig(fd, FSCONFIG.SET_STRING, 'no-such-option', 'x'), (e: NodeJS.ErrnoException) => e.syscall === 'fsconfig' && e.path === 'no-such-option');
      fsconfig(fd, FSCONFIG.SET_STRING, 'size', '1m');
      fsconfig(fd, FSCONFIG.CMD_CREATE);
      const mfd = fsmount(fd, undefined, MOUNT_ATTR.RDONLY);
      try {
        moveMount(mfd, dir);
      } finally {
        closeSync(mfd);
      }
    } finally {
      closeSync(fd);
    }
    try {
      assert.ok(await mounted(dir));
      await assert.rejects(writeFile(join(dir, 'z'), 'y'), (e: NodeJS.ErrnoException) => e.code === 'EROFS');
    } finally {
      umount2(dir);
    }
  });
});
