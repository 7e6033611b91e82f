import assert from 'node:assert/strict';
import { readdir, readFile, mkdtemp, rm, writeFile, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { buildImage, busyboxImage, pushToRegistry, writeBlob } from '../helpers/image-builder.ts';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { tarStream, type TarItem } from '../../src/core/tar-write.ts';
import { MediaTypes } from '../../src/core/media-types.ts';
import { freePort, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { cleanupDaemonMounts } from '../helpers/images.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (overlayfs, chown, xattrs)' : undefined;

/** An OCI layout whose one layer is the tar of `items`, tagged `tag`. */
async function craftedImage(layout: string, items: TarItem[], tag: string): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of tarStream(items)) chunks.push(c as Buffer);
  const tar = Buffer.concat(chunks);
  const layer = await writeBlob(layout, MediaTypes.ociLayerGzip, gzipSync(tar));
  const config = await writeBlob(
    layout,
    MediaTypes.ociConfig,
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${createHash('sha256').update(tar).digest('hex')}`] } }),
  );
  const manifest = await writeBlob(layout, MediaTypes.ociManifest, JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config, layers: [layer] }));
  await writeFile(
    path.join(layout, 'index.json'),
    JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': tag } }] }),
  );
}

async function blobsIn(root: string): Promise<string[]> {
  return readdir(path.join(root, 'content/blobs/sha256')).catch(() => []);
}

/** A pass-through HTTP proxy to the registry that counts blob GETs by digest. */
async function countingProxy(target: number): Promise<{ host: string; counts: Map<string, number>; close(): Promise<void> }> {
  const counts = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const m = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '');
    if (m && req.method === 'GET') counts.set(m[1], (counts.get(m[1]) ?? 0) + 1);
    const up = http.request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe('images: bad input', { skip }, () => {
  let d: TestDaemon;
  let reg: TestRegistry;
  let work: string;
  let layout: string;
  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'berth-imgerr-'));
    reg = await startRegistry();
    d = await startDaemon();
    layout = path.join(work, 'layout');
    await buildImage(layout, busyboxImage([{ files: [{ path: 'etc/x', size: 300_000, fill: 'random' }] }]), { tag: '1' });
  });
  after(async () => {
    // Unmount first, so removing the daemon's temp dir never descends into a mount.
    await cleanupDaemonMounts(d);
    await d?.stop().catch(() => {});
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('an unknown image, a malformed reference and a registry that is down each fail clearly', async () => {
    let r = await d.cli(['pull', `${reg.host}/nosuch/image:1`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not found/i);
    r = await d.cli(['pull', 'Bad/Name']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid reference format/);
    const port = await freePort();
    r = await d.cli(['pull', `127.0.0.1:${port}/x:1`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
    r = await d.cli(['images', '-q']);
    assert.equal(r.stdout.trim(), '');
    r = await d.cli(['image', 'inspect', 'nosuch']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /No such image: nosuch/);
  });

  it('a corrupt blob in the registry fails the pull with a digest mismatch and leaves nothing after GC', async () => {
    // Registry storage is shared by digest, so the corrupt blob gets an image of its own.
    const own = path.join(work, 'corrupt');
    await buildImage(own, busyboxImage([{ files: [{ path: 'etc/y', size: 200_000, fill: 'random' }] }]), { tag: '1' });
    const ref = `${reg.host}/corrupt/img:1`;
    await pushToRegistry(own, ref);
    const index = JSON.parse(await readFile(path.join(own, 'index.json'), 'utf8'));
    const manifest = JSON.parse(await readFile(path.join(own, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
    const layer = manifest.layers[1].digest.slice(7) as string;
    const data = path.join(reg.dir, 'storage/docker/registry/v2/blobs/sha256', layer.slice(0, 2), layer, 'data');
    const size = (await stat(data)).size;
    await writeFile(data, Buffer.alloc(size, 7));
    let r = await d.cli(['pull', ref]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /digest mismatch/);
    r = await d.cli(['images', '-a', '-q']);
    assert.equal(r.stdout.trim(), '');
    r = await d.cli(['image', 'prune', '-a', '-f']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await blobsIn(d.root), []);
  });

  it('layers crafted to escape the snapshot are refused, leaving no image and nothing outside', async () => {
    const cases: [string, TarItem[]][] = [
      ['dotdot', [{ entry: { name: '../../escaped-dotdot', type: 'file', size: 3 }, body: 'bad' }]],
      ['symlink', [{ entry: { name: 'out', type: 'symlink', linkname: '/tmp' } }, { entry: { name: 'out/escaped-symlink', type: 'file', size: 3 }, body: 'bad' }]],
      ['hardlink', [{ entry: { name: 'passwd', type: 'hardlink', linkname: '../../../../../../etc/passwd' } }]],
    ];
    for (const [tag, items] of cases) {
      const layout = path.join(work, `evil-${tag}`);
      await craftedImage(layout, items, tag);
      const ref = `${reg.host}/evil/img:${tag}`;
      await pushToRegistry(layout, ref);
      const r = await d.cli(['pull', ref]);
      assert.equal(r.code, 1, `${tag}: ${r.stdout}`);
      assert.match(r.stderr, /escape|outside|refus|invalid/i, tag);
    }
    const r = await d.cli(['images', '-a', '-q']);
    assert.equal(r.stdout.trim(), '');
    await assert.rejects(stat('/tmp/escaped-symlink'));
    await assert.rejects(stat(path.join(d.root, 'escaped-dotdot')));
  });

  it('login checks credentials, writes auth.json, and logout removes them', async () => {
    const secure = await startRegistry({ auth: 'basic' });
    try {
      const ref = `${secure.host}/private/img:1`;
      await pushToRegistry(layout, ref, { creds: `${secure.user}:${secure.password}` });
      let r = await d.cli(['pull', ref]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /unauthori[sz]ed|authentication|credentials/i);
      r = await d.cli(['login', '-u', secure.user!, '-p', 'wrong', secure.host]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /unauthori[sz]ed|authentication|credentials|denied/i);
      const authFile = path.join(d.root, 'auth.json');
      assert.doesNotMatch(await readFile(authFile, 'utf8').catch(() => ''), new RegExp(secure.host));
      r = await d.cli(['login', '-u', secure.user!, '--password-stdin', secure.host], { input: `${secure.password}\n` });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Login Succeeded/);
      assert.match(await readFile(authFile, 'utf8'), new RegExp(secure.host.replace(/\./g, '\\.')));
      r = await d.cli(['pull', '-q', ref]);
      assert.equal(r.code, 0, r.stderr);
      r = await d.cli(['logout', secure.host]);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(await readFile(authFile, 'utf8'), new RegExp(secure.host.replace(/\./g, '\\.')));
      r = await d.cli(['rmi', ref]);
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await secure.stop();
    }
  });

  it('concurrent pulls of one image download each blob once', async () => {
    const ref = `${reg.host}/shared/img:1`;
    await pushToRegistry(layout, ref);
    const proxy = await countingProxy(reg.port);
    try {
      const via = `${proxy.host}/shared/img:1`;
      const results = await Promise.all([d.cli(['pull', '-q', via]), d.cli(['pull', '-q', via]), d.cli(['pull', '-q', via])]);
      for (const r of results) assert.equal(r.code, 0, r.stderr + d.logs());
      assert.ok(proxy.counts.size >= 2, 'layers were fetched through the proxy');
      for (const [digest, n] of proxy.counts) assert.equal(n, 1, `blob ${digest} fetched ${n} times`);
    } finally {
      await proxy.close();
    }
  });
});
