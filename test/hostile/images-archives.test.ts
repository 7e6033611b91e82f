import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { cleanupDaemonMounts } from '../helpers/images.ts';
import { sha256, tarOf } from '../helpers/registry-stub.ts';
import type { TarItem } from '../../src/core/tar-write.ts';
import { MediaTypes } from '../../src/core/media-types.ts';

/**
 * Hostile archives for `load` and `import`: the documents inside are as
 * untrusted as a registry's. Each is refused with a message naming the
 * document and the problem, and leaves no image, blob, ingest or snapshot.
 */

const skip = process.getuid?.() !== 0 ? 'needs root (overlayfs, chown)' : undefined;
const BOUND_MIB = 8;

const file = (name: string, body: string | Buffer): TarItem => ({ entry: { name, type: 'file', size: Buffer.byteLength(body), mode: 0o644 }, body });

/** An OCI image layout as a tar: one image of `layer`, its config given raw or as fields merged into a valid one. */
async function ociArchive(opts: { layer: Buffer; config?: Buffer | Record<string, unknown>; layerMediaType?: string; manifest?: (m: Record<string, unknown>) => Record<string, unknown> }): Promise<Buffer> {
  const blob = gzipSync(opts.layer);
  const config = Buffer.isBuffer(opts.config)
    ? opts.config
    : Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(opts.layer)] }, ...opts.config }));
  let manifestDoc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, digest: sha256(config), size: config.length },
    layers: [{ mediaType: opts.layerMediaType ?? MediaTypes.ociLayerGzip, digest: sha256(blob), size: blob.length }],
  };
  if (opts.manifest) manifestDoc = opts.manifest(manifestDoc);
  const manifest = Buffer.from(JSON.stringify(manifestDoc));
  const index = { schemaVersion: 2, manifests: [{ mediaType: MediaTypes.ociManifest, digest: sha256(manifest), size: manifest.length, annotations: { 'io.containerd.image.name': 'docker.io/hostile/archive:1' } }] };
  const blobEntry = (b: Buffer) => file(`blobs/sha256/${sha256(b).slice(7)}`, b);
  return tarOf([file('oci-layout', '{"imageLayoutVersion":"1.0.0"}'), file('index.json', JSON.stringify(index)), blobEntry(blob), blobEntry(config), blobEntry(manifest)]);
}

describe('hostile archives', { skip, timeout: 600_000 }, () => {
  let d: TestDaemon;
  let work: string;
  let layer: Buffer;

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'berth-hostile-archives-'));
    layer = await tarOf([file('hello', 'hi\n')]);
    d = await startDaemon({ config: `version = 1\n[images]\nmax_layer_unpacked_mib = ${BOUND_MIB}\n` });
  });
  after(async () => {
    await cleanupDaemonMounts(d);
    await d?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function assertNothingStored(): Promise<void> {
    const ls = await d.cli(['images', '-q']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.equal(ls.stdout.trim(), '');
    const left: string[] = [];
    for (const rel of ['content/blobs/sha256', 'content/ingest', 'snapshots/overlayfs/snapshots']) {
      for (const e of await readdir(path.join(d.root, rel)).catch(() => [])) left.push(`${rel}/${e}`);
    }
    const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes(` ${d.dir}/`));
    assert.deepEqual([...left, ...mounts], []);
  }

  async function load(name: string, tar: Buffer): Promise<{ code: number; stderr: string }> {
    const p = path.join(work, `${name}.tar`);
    await writeFile(p, tar);
    return d.cli(['load', '-i', p]);
  }

  it('a sound archive loads (the baseline the cases below break)', async () => {
    const r = await load('ok', await ociArchive({ layer }));
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await d.cli(['rmi', 'hostile/archive:1'])).code, 0);
    await assertNothingStored();
  });

  it('a config nested 5,000 deep is refused at load', async () => {
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const r = await load('deep', await ociArchive({ layer, config: Buffer.from(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["${sha256(layer)}"]},"x":${deep}}`) }));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /archive: image "hostile\/archive:1": config sha256:[0-9a-f]{64}: nested more than 64 levels deep/);
    await assertNothingStored();
  });

  it('fields of the wrong type are refused at load, naming the field', async () => {
    let r = await load('env', await ociArchive({ layer, config: { config: { Env: 'A=1' } } }));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /"config\.Env" must be an array of strings/);
    await assertNothingStored();

    r = await load('layers', await ociArchive({ layer, manifest: (m) => ({ ...m, layers: { 0: 'x' } }) }));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /archive: image "hostile\/archive:1": manifest sha256:[0-9a-f]{64}: "layers" must be an array of descriptors/);
    await assertNothingStored();

    const dockerManifest = Buffer.from(JSON.stringify([{ Config: 7, Layers: ['x'] }]));
    r = await load('docker', await tarOf([file('manifest.json', dockerManifest)]));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /archive: manifest\.json: "\[0\]\.Config" must be a string/);
    await assertNothingStored();
  });

  it('an unknown layer media type is refused at load', async () => {
    const r = await load('mt', await ociArchive({ layer, layerMediaType: 'application/x-tar-but-not' }));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unsupported layer media type "application\/x-tar-but-not" \(layers\[0\], sha256:[0-9a-f]{64}\)/);
    await assertNothingStored();
  });

  it(`a gzip bomb stops at the bound (${BOUND_MIB} MiB) in load and import, and leaves nothing`, async () => {
    const bomb = await tarOf([file('zeros', Buffer.alloc(32 << 20))]);
    const r = await load('bomb', await ociArchive({ layer: bomb }));
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`layer sha256:[0-9a-f]{64}: .*unpacked layer is larger than the bound of ${BOUND_MIB << 20} bytes`));
    await assertNothingStored();

    const p = path.join(work, 'bomb.tar.gz');
    await writeFile(p, gzipSync(bomb));
    const imp = await d.cli(['import', p, 'hostile/imported:1']);
    assert.equal(imp.code, 1);
    assert.match(imp.stderr, new RegExp(`unpacked layer is larger than the bound of ${BOUND_MIB << 20} bytes`));
    await assertNothingStored();
  });
});
