import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { buildImage, busyboxImage, pushToRegistry } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (tmpfs, overlayfs)' : undefined;

async function entries(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

/**
 * A pull that runs out of disk: berthd's root sits on a 24 MB tmpfs and the
 * image carries a 40 MB layer that does not compress. The pull must fail
 * saying so, leave no image record, leave nothing behind once pruned, and
 * the daemon must pull a smaller image afterwards.
 */
describe('images: a full disk', { skip }, () => {
  let d: TestDaemon;
  let reg: TestRegistry;
  let work: string;
  let root: string;
  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'berth-fulldisk-'));
    root = path.join(work, 'root');
    await mkdir(root);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m,mode=0711', 'berth-test-full', root]);
    reg = await startRegistry();
    d = await startDaemon({ extraArgs: ['--root', root] });
  });
  after(async () => {
    await d?.stop().catch(() => {});
    await reg?.stop();
    if (root) execFileSync('umount', ['-l', root], { stdio: 'ignore' });
    await rm(work, { recursive: true, force: true });
  });

  it('fails the pull naming the problem and leaves nothing half-written', async () => {
    const big = path.join(work, 'big');
    await buildImage(big, busyboxImage([{ files: [{ path: 'data/blob', size: 40 << 20, fill: 'random' }] }]), { tag: '1' });
    const ref = `${reg.host}/full/big:1`;
    await pushToRegistry(big, ref);

    const r = await d.cli(['pull', ref]);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, /no space left on device/);
    assert.equal((await d.cli(['images', '-a', '-q'])).stdout.trim(), '');
    const pruned = await d.cli(['image', 'prune', '-a', '-f']);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.deepEqual(await entries(path.join(root, 'content/blobs/sha256')), []);
    assert.deepEqual(await entries(path.join(root, 'content/ingest')), []);

    const small = path.join(work, 'small');
    await buildImage(small, busyboxImage(), { tag: '1' });
    const smallRef = `${reg.host}/full/small:1`;
    await pushToRegistry(small, smallRef);
    const ok = await d.cli(['pull', smallRef]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((await d.cli(['run', '--rm', '--network', 'none', smallRef, 'echo', 'fits'])).stdout, 'fits\n');
  });

  it('fails a commit whose layer does not fit, naming the problem, and serves on', async () => {
    // 14 MB of random bytes: the layer's gzip stores them (no deflate gain), and its blob cannot fit beside them.
    const smallRef = `${reg.host}/full/small:1`;
    const fill = await d.cli(['run', '--name', 'fill', '--network', 'none', smallRef, 'sh', '-c', 'head -c 14000000 /dev/urandom > /fill']);
    assert.equal(fill.code, 0, fill.stderr);
    const r = await d.cli(['commit', 'fill', 'full/filled:1']);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, /no space left on device/);
    assert.equal((await d.cli(['images', '-q', 'full/filled:1'])).stdout.trim(), '');
    assert.equal((await d.cli(['rm', 'fill'])).code, 0);
    // berthd is up and the space comes back: the same layer's commit is what filled the disk, nothing else.
    const ok = await d.cli(['run', '--rm', '--network', 'none', smallRef, 'echo', 'still here']);
    assert.equal(ok.stdout, 'still here\n', ok.stderr);
    assert.equal((await d.cli(['image', 'prune', '-f'])).code, 0);
    assert.deepEqual(await entries(path.join(root, 'content/ingest')), []);
  });
});
