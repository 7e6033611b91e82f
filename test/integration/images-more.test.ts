import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { rootCtx } from '../../src/core/context.ts';
import { MetadataContainerStore } from '../../src/metadata/containers.ts';
import { MetadataDb } from '../../src/metadata/db.ts';
import { nodeBin, projectRoot, startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { buildImage, buildMultiPlatform, busyboxImage, pushToRegistry } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { cleanupDaemonMounts } from '../helpers/images.ts';

const execFileP = promisify(execFile);
const skip = process.getuid?.() !== 0 ? 'needs root (overlayfs, chown, xattrs)' : undefined;
const hostArch = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch] ?? process.arch;

describe('images: platforms, digests, dangling images, containers, terminals', { skip }, () => {
  let d: TestDaemon;
  let reg: TestRegistry;
  let work: string;
  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'berth-imgmore-'));
    reg = await startRegistry();
    d = await startDaemon();
  });
  after(async () => {
    // Unmount first, so removing the daemon's temp dir never descends into a mount.
    await cleanupDaemonMounts(d);
    await d?.stop().catch(() => {});
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('pulls the host platform from an index, and by digest', async () => {
    const layout = path.join(work, 'multi');
    const other = hostArch === 'arm64' ? 'amd64' : 'arm64';
    const { index, images } = await buildMultiPlatform(
      layout,
      [
        { ...busyboxImage([{ files: [{ path: 'etc/arch', content: `${other}\n` }] }]), platform: { os: 'linux', architecture: other } },
        { ...busyboxImage([{ files: [{ path: 'etc/arch', content: `${hostArch}\n` }] }]), platform: { os: 'linux', architecture: hostArch } },
      ],
      { tag: 'multi' },
    );
    const ref = `${reg.host}/multi/img:multi`;
    await pushToRegistry(layout, ref);
    let r = await d.cli(['pull', '-q', ref]);
    assert.equal(r.code, 0, r.stderr + d.logs());
    r = await d.cli(['image', 'inspect', ref]);
    const [info] = JSON.parse(r.stdout);
    assert.equal(info.Architecture, hostArch);
    assert.equal(info.Id, images[1].config.digest);
    assert.deepEqual(info.RepoDigests, [`${reg.host}/multi/img@${index.digest}`]);
    r = await d.cli(['pull', `${reg.host}/multi/img@${index.digest}`]);
    assert.equal(r.code, 0, r.stderr);
    r = await d.cli(['image', 'inspect', '--format', '{{.Id}}', `${reg.host}/multi/img@${index.digest}`]);
    assert.equal(r.stdout.trim(), images[1].config.digest);
  });

  it('a tag that moves leaves the old image dangling; prune removes it', async () => {
    const ref = `${reg.host}/moving/img:latest`;
    await buildImage(path.join(work, 'v1'), busyboxImage([{ files: [{ path: 'etc/v', content: '1' }] }]), { tag: 'latest' });
    await buildImage(path.join(work, 'v2'), busyboxImage([{ files: [{ path: 'etc/v', content: '2' }] }]), { tag: 'latest' });
    await pushToRegistry(path.join(work, 'v1'), ref);
    let r = await d.cli(['pull', '-q', ref]);
    assert.equal(r.code, 0, r.stderr);
    await pushToRegistry(path.join(work, 'v2'), ref);
    r = await d.cli(['pull', ref]);
    assert.match(r.stdout, /Already exists/);
    assert.match(r.stdout, /Downloaded newer image/);
    r = await d.cli(['images', '--filter', 'dangling=true', '--format', '{{.Repository}}:{{.Tag}}']);
    assert.deepEqual(r.stdout.trim().split('\n'), [`${reg.host}/moving/img:<none>`]);
    r = await d.cli(['image', 'prune', '-f']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /deleted: sha256:/);
    assert.match(r.stdout, /Total reclaimed space: /);
    r = await d.cli(['images', '--filter', 'dangling=true', '-q']);
    assert.equal(r.stdout.trim(), '');
  });

  it('rmi refuses an image a container uses, and an ID with several names, unless forced', async () => {
    const ref = `${reg.host}/moving/img:latest`;
    const id = (await d.cli(['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim();
    let r = await d.cli(['tag', ref, 'second:name']);
    assert.equal(r.code, 0, r.stderr);
    r = await d.cli(['rmi', id.slice(7, 19)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /referenced in multiple repositories/);
    r = await d.cli(['rmi', 'second:name']);
    assert.equal(r.code, 0, r.stderr);
    const db = new MetadataDb(path.join(d.root, 'metadata.db'));
    const containers = new MetadataContainerStore(db);
    const ctx = rootCtx();
    const cid = 'c'.repeat(64);
    await containers.create(ctx, { id: cid, name: 'user', config: { image: ref }, imageId: id, imageName: ref, snapshotter: 'overlayfs', snapshotKey: cid, createdAt: new Date().toISOString(), labels: {}, extensions: {} });
    try {
      r = await d.cli(['rmi', ref]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /container cccccccccccc is using its referenced image/);
      r = await d.cli(['image', 'prune', '-a', '-f']);
      assert.equal(r.code, 0);
      r = await d.cli(['images', '-q']);
      assert.equal(r.stdout.trim(), id.slice(7, 19));
      r = await d.cli(['rmi', '-f', ref]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Untagged: /);
    } finally {
      await containers.delete(ctx, cid);
      db.close();
    }
    r = await d.cli(['image', 'prune', '-a', '-f']);
    assert.equal(r.code, 0, r.stderr);
    r = await d.cli(['images', '-q']);
    assert.doesNotMatch(r.stdout, new RegExp(id.slice(7, 19)));
  });

  it('draws progress bars on a terminal', async () => {
    const layout = path.join(work, 'tty');
    await buildImage(layout, busyboxImage([{ files: [{ path: 'etc/big', size: 2_000_000, fill: 'random' }] }]), { tag: 't' });
    const ref = `${reg.host}/tty/img:t`;
    await pushToRegistry(layout, ref);
    const cmd = `${nodeBin} --disable-warning=ExperimentalWarning ${path.join(projectRoot, 'src/cli/main.ts')} -H unix://${d.socket} pull ${ref}`;
    const { stdout } = await execFileP('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, COLUMNS: '120' } });
    assert.match(stdout, /\x1b\[\d+A/);
    assert.match(stdout, /\[=*>? *\]/);
    assert.match(stdout, /Pull complete/);
  });
});
