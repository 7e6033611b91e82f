import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { buildImage, busyboxImage, pushToRegistry } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { cleanupDaemonMounts } from '../helpers/images.ts';

const execFileP = promisify(execFile);
const skopeo = async (...args: string[]) => (await execFileP('skopeo', args, { timeout: 120_000, maxBuffer: 64 << 20 })).stdout;
const skip = process.getuid?.() !== 0 ? 'needs root (overlayfs, chown, xattrs)' : undefined;

describe('images: save, load, push, import', { skip }, () => {
  let d: TestDaemon;
  let reg: TestRegistry;
  let work: string;
  let ref: string;
  let otherRef: string;
  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'berth-archive-'));
    reg = await startRegistry();
    d = await startDaemon();
    await buildImage(path.join(work, 'a'), busyboxImage([{ files: [{ path: 'etc/a', content: 'a\n' }] }]), { tag: '1' });
    await buildImage(path.join(work, 'b'), busyboxImage([{ files: [{ path: 'etc/b', content: 'b\n' }], compression: 'zstd' }], { Cmd: ['cat', '/etc/b'] }), { tag: '1' });
    ref = `${reg.host}/arch/a:1`;
    otherRef = `${reg.host}/arch/b:1`;
    await pushToRegistry(path.join(work, 'a'), ref);
    await pushToRegistry(path.join(work, 'b'), otherRef, { format: 'v2s2' }).catch(() => pushToRegistry(path.join(work, 'b'), otherRef));
    for (const r of [ref, otherRef]) {
      const p = await d.cli(['pull', '-q', r]);
      assert.equal(p.code, 0, p.stderr + d.logs());
    }
  });
  after(async () => {
    // Unmount first, so removing the daemon's temp dir never descends into a mount.
    await cleanupDaemonMounts(d);
    await d?.stop().catch(() => {});
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('save writes a docker archive and an OCI archive that skopeo reads, with several images', async () => {
    const dockerTar = path.join(work, 'both.tar');
    let r = await d.cli(['save', '-o', dockerTar, ref, otherRef]);
    assert.equal(r.code, 0, r.stderr);
    const a = JSON.parse(await skopeo('inspect', `docker-archive:${dockerTar}:${ref}`));
    const b = JSON.parse(await skopeo('inspect', `docker-archive:${dockerTar}:${otherRef}`));
    assert.equal(a.Layers.length, 2);
    assert.equal(b.Layers.length, 2);
    const ociTar = path.join(work, 'oci.tar');
    r = await d.cli(['save', '--format', 'oci', '-o', ociTar, ref]);
    assert.equal(r.code, 0, r.stderr);
    const o = JSON.parse(await skopeo('inspect', `oci-archive:${ociTar}:1`));
    assert.equal(o.Layers.length, 2);
    // The pulled manifest is kept byte for byte, so the digest is the registry's.
    const remote = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${ref}`));
    assert.equal(o.Digest, remote.Digest);
  });

  it('load reads back both formats (from a file and from stdin)', async () => {
    const tar = path.join(work, 'both.tar');
    let r = await d.cli(['rmi', ref, otherRef]);
    assert.equal(r.code, 0, r.stderr);
    r = await d.cli(['load', '-i', tar]);
    assert.equal(r.code, 0, r.stderr + d.logs());
    assert.match(r.stdout, new RegExp(`Loaded image: ${ref}`));
    assert.match(r.stdout, new RegExp(`Loaded image: ${otherRef}`));
    r = await d.cli(['image', 'inspect', '--format', '{{json .Config.Cmd}}', otherRef]);
    assert.equal(r.stdout.trim(), '["cat","/etc/b"]');
    r = await d.cli(['rmi', ref]);
    assert.equal(r.code, 0, r.stderr);
    r = await d.cli(['load'], { input: await readFile(path.join(work, 'oci.tar')) });
    assert.equal(r.code, 0, r.stderr + d.logs());
    assert.match(r.stdout, /Loaded image/);
    r = await d.cli(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    assert.match(r.stdout, new RegExp(ref.replace(/\./g, '\\.')));
  });

  it("load reads skopeo's docker-archive (the legacy layout with <id>.json and layer tars)", async () => {
    const tar = path.join(work, 'legacy.tar');
    await skopeo('copy', `oci:${path.join(work, 'a')}:1`, `docker-archive:${tar}:legacy/img:3`);
    const r = await d.cli(['load', '-i', tar]);
    assert.equal(r.code, 0, r.stderr + d.logs());
    assert.match(r.stdout, /Loaded image: legacy\/img:3/);
    const info = JSON.parse((await d.cli(['image', 'inspect', 'legacy/img:3'])).stdout)[0];
    assert.equal(info.RootFS.Layers.length, 2);
  });

  it('load refuses what is not an image archive', async () => {
    await writeFile(path.join(work, 'junk.tar'), 'not a tar at all');
    const r = await d.cli(['load', '-i', path.join(work, 'junk.tar')]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /tar|archive/i);
  });

  it('push uploads an image that skopeo copies back and verifies', async () => {
    const target = `${reg.host}/pushed/a:2`;
    let r = await d.cli(['tag', ref, target]);
    assert.equal(r.code, 0, r.stderr);
    r = await d.cli(['push', target]);
    assert.equal(r.code, 0, r.stderr + d.logs());
    assert.match(r.stdout, /The push refers to repository/);
    assert.match(r.stdout, /2: digest: sha256:[0-9a-f]{64} size: \d+/);
    assert.match(r.stdout, /Mounted from arch\/a/);
    const out = path.join(work, 'copied');
    await skopeo('copy', '--src-tls-verify=false', `docker://${target}`, `oci:${out}:x`);
    const idx = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8'));
    assert.equal(idx.manifests.length, 1);
    r = await d.cli(['push', target]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Layer already exists/);
  });

  it('import makes a one-layer image from a rootfs tar with --change', async () => {
    const rootfs = path.join(work, 'rootfs');
    await execFileP('sh', ['-c', `mkdir -p ${rootfs}/bin ${rootfs}/etc && cp /bin/busybox ${rootfs}/bin/ && ln -s busybox ${rootfs}/bin/sh && echo hi > ${rootfs}/etc/hello`]);
    const tgz = path.join(work, 'rootfs.tar.gz');
    await execFileP('tar', ['-C', rootfs, '-czf', tgz, '.']);
    let r = await d.cli(['import', '--change', 'CMD ["/bin/sh"]', '-c', 'ENV A=1', tgz, 'imported:v1']);
    assert.equal(r.code, 0, r.stderr + d.logs());
    assert.match(r.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
    r = await d.cli(['image', 'inspect', 'imported:v1']);
    const [info] = JSON.parse(r.stdout);
    assert.deepEqual(info.Config.Cmd, ['/bin/sh']);
    assert.deepEqual(info.Config.Env, ['A=1']);
    assert.equal(info.RootFS.Layers.length, 1);
    r = await d.cli(['import', '-', 'fromstdin'], { input: await readFile(tgz) });
    assert.equal(r.code, 0, r.stderr);
    r = await d.cli(['import', '-'], { input: 'garbage, not a tar' });
    assert.notEqual(r.code, 0);
    r = await d.cli(['images', '--filter', 'dangling=true', '-q']);
    assert.equal(r.stdout.trim(), '');
  });
});
