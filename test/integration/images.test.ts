import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { buildImage, busyboxImage, pushToRegistry } from '../helpers/image-builder.ts';
import { cleanupDaemonMounts } from '../helpers/images.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (overlayfs, mknod, chown)' : undefined;

describe('images: pull, list, tag, inspect, history, rmi', { skip }, () => {
  let d: TestDaemon;
  let reg: TestRegistry;
  let work: string;
  let ref: string;
  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'berth-images-'));
    reg = await startRegistry();
    d = await startDaemon();
    await buildImage(path.join(work, 'layout'), busyboxImage([{ files: [{ path: 'etc/motd', content: 'hello\n' }], createdBy: 'add motd' }]), { tag: 'v1' });
    ref = `${reg.host}/demo/busybox:v1`;
    await pushToRegistry(path.join(work, 'layout'), ref);
  });
  after(async () => {
    // Unmount first, so removing the daemon's temp dir never descends into a mount.
    await cleanupDaemonMounts(d);
    await d?.stop().catch(() => {});
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('pulls with plain progress lines and prints the name', async () => {
    const r = await d.cli(['pull', ref]);
    assert.equal(r.code, 0, r.stderr + d.logs());
    assert.match(r.stdout, /v1: Pulling from demo\/busybox/);
    assert.match(r.stdout, /: Pull complete/);
    assert.match(r.stdout, /Status: Downloaded newer image for /);
    assert.equal(r.stdout.trim().split('\n').at(-1), ref);
  });

  it('re-pull only resolves', async () => {
    const r = await d.cli(['pull', ref]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Image is up to date/);
  });

  it('lists, tags, inspects and shows history', async () => {
    let r = await d.cli(['images']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE/);
    assert.match(r.stdout, new RegExp(`${reg.host}/demo/busybox\\s+v1\\s+[0-9a-f]{12}`));
    r = await d.cli(['tag', ref, 'mine:latest']);
    assert.equal(r.code, 0, r.stderr);
    r = await d.cli(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    assert.deepEqual(r.stdout.trim().split('\n').sort(), [`${reg.host}/demo/busybox:v1`, 'mine:latest'].sort());
    r = await d.cli(['images', '-q']);
    assert.equal(r.stdout.trim().split('\n').length, 1);
    r = await d.cli(['images', '--filter', 'reference=mi*', '--format', '{{.Repository}}']);
    assert.equal(r.stdout.trim(), 'mine');
    r = await d.cli(['images', 'mine', '--no-trunc', '--format', '{{.ID}}']);
    assert.match(r.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
    r = await d.cli(['images', '--digests', '--format', 'json']);
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(rows.some((x) => x.Digest.startsWith('sha256:')));
    r = await d.cli(['image', 'inspect', 'mine']);
    assert.equal(r.code, 0, r.stderr);
    const [info] = JSON.parse(r.stdout);
    assert.match(info.Id, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(info.RepoTags.sort(), [`${reg.host}/demo/busybox:v1`, 'mine:latest'].sort());
    assert.deepEqual(info.Config.Cmd, ['sh']);
    assert.equal(info.RootFS.Layers.length, 2);
    // SIZE is the unpacked size (uncompressed layers), as docker shows it: busybox alone is bigger than its gzip.
    assert.ok(info.Size >= (await stat('/bin/busybox')).size, `size ${info.Size}`);
    r = await d.cli(['inspect', '--format', '{{.Os}}/{{.Architecture}}', info.Id.slice(7, 19)]);
    assert.equal(r.stdout.trim(), `linux/${info.Architecture}`);
    r = await d.cli(['image', 'history', 'mine']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /add motd/);
    // Whole seconds, as docker prints them.
    r = await d.cli(['history', '--format', '{{.CreatedAt}}', 'mine']);
    assert.equal(r.code, 0, r.stderr);
    for (const line of r.stdout.trim().split('\n')) assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('rmi untags, then deletes; unknown names fail with exit 1', async () => {
    let r = await d.cli(['rmi', 'mine']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Untagged: mine:latest/);
    assert.doesNotMatch(r.stdout, /Deleted/);
    r = await d.cli(['rmi', ref, 'nosuch:image']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /Deleted: sha256:/);
    assert.match(r.stderr, /No such image: nosuch:image/i);
    r = await d.cli(['images', '-q']);
    assert.equal(r.stdout.trim(), '');
  });
});
