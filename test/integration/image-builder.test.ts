import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, readlink, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { buildImage, buildMultiPlatform, busyboxImage, pushToRegistry } from '../helpers/image-builder.ts';

// The fixtures others build on: images built without an engine, pushed by
// skopeo into a real registry, and read back by skopeo and umoci.
const execFileP = promisify(execFile);
let reg: TestRegistry;
let dir: string;

before(async () => {
  reg = await startRegistry();
  dir = await mkdtemp(path.join(os.tmpdir(), 'berth-builder-'));
});
after(async () => {
  await reg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a busybox image pushes with skopeo and unpacks with umoci', async () => {
  const layout = path.join(dir, 'bb');
  const img = await buildImage(layout, busyboxImage([
    { files: [
      { path: 'etc/motd', content: 'hello\n', mode: 0o600, uid: 1, gid: 2 },
      { path: 'data/big.bin', size: 100_000, fill: 'text' },
      { path: 'data/hard', type: 'hardlink', target: 'data/big.bin' },
      { path: 'tmp', type: 'opaque' },
      { path: 'bin/vi', type: 'whiteout' },
    ] },
  ], { Cmd: ['sh'], Env: ['A=1'], WorkingDir: '/data', ExposedPorts: { '80/tcp': {} }, Labels: { l: 'v' } }), { tag: 'v1' });
  assert.equal(img.configJson.rootfs.diff_ids.length, 2);
  await pushToRegistry(layout, `${reg.host}/test/busybox:v1`);
  const { stdout } = await execFileP('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/test/busybox:v1`]);
  const info = JSON.parse(stdout) as { Digest: string; Layers: string[]; Env: string[] };
  assert.equal(info.Digest, img.manifest.digest);
  assert.deepEqual(info.Layers, img.layers.map((l) => l.digest));
  assert.ok(info.Env.includes('A=1'));

  const bundle = path.join(dir, 'bundle');
  await execFileP('umoci', ['raw', 'unpack', '--image', `${layout}:v1`, bundle]);
  assert.equal(await readlink(path.join(bundle, 'bin/sh')), 'busybox');
  assert.equal(await readFile(path.join(bundle, 'etc/motd'), 'utf8'), 'hello\n');
  assert.equal((await stat(path.join(bundle, 'data/hard'))).ino, (await stat(path.join(bundle, 'data/big.bin'))).ino);
  await assert.rejects(stat(path.join(bundle, 'bin/vi')));
});

test('multi-platform index and zstd and uncompressed layers', async () => {
  const layout = path.join(dir, 'multi');
  const { index, images } = await buildMultiPlatform(layout, [
    { layers: [{ files: [{ path: 'arch', content: 'amd64' }] }], platform: { os: 'linux', architecture: 'amd64' } },
    { layers: [{ files: [{ path: 'arch', content: 'arm64' }], compression: 'zstd' }, { files: [{ path: 'x', content: 'y' }], compression: 'none' }], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ], { tag: 'multi' });
  await pushToRegistry(layout, `${reg.host}/test/multi:multi`);
  const { stdout } = await execFileP('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/test/multi:multi`]);
  const raw = JSON.parse(stdout) as { manifests: { digest: string }[] };
  assert.deepEqual(raw.manifests.map((m) => m.digest), images.map((i) => i.manifest.digest));
  assert.ok(index.digest.startsWith('sha256:'));
});

test('basic auth registry refuses anonymous pushes and accepts credentials', async (t) => {
  const authed = await startRegistry({ auth: 'basic' });
  t.after(() => authed.stop());
  const layout = path.join(dir, 'auth');
  await buildImage(layout, { layers: [{ files: [{ path: 'f', content: 'x' }] }] }, { tag: 'a' });
  await assert.rejects(pushToRegistry(layout, `${authed.host}/t/a:a`));
  await pushToRegistry(layout, `${authed.host}/t/a:a`, { creds: `${authed.user}:${authed.password}` });
});

test('a layer from a host directory keeps modes, symlinks and hardlinks', async (t) => {
  const src = path.join(dir, 'srcdir');
  await execFileP('sh', ['-c', `mkdir -p ${src}/a/b && printf hi > ${src}/a/f && chmod 0640 ${src}/a/f && ln -s f ${src}/a/l && ln ${src}/a/f ${src}/a/b/h && mkfifo ${src}/p`]);
  const layout = path.join(dir, 'fromdir');
  const built = await buildImage(layout, { layers: [{ dir: src, compression: 'none' }] }, { tag: 'd' });
  const blob = path.join(layout, 'blobs', 'sha256', built.layers[0].digest.slice(7));
  const { stdout } = await execFileP('tar', ['-tvf', blob]);
  assert.match(stdout, /rw-r----- .* a\/(f|b\/h)\b/);
  assert.match(stdout, /a\/l -> f/);
  assert.match(stdout, /a\/b\/h link to a\/f|a\/f link to a\/b\/h/);
  assert.match(stdout, /^p.* p$/m);
  assert.equal(built.layers[0].digest, built.layers[0].diffId);
  t.diagnostic(`layer ${built.layers[0].size} bytes`);
});
