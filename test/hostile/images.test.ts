import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsc, mkdirSync, openSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { cliCommand, startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { cleanupDaemonMounts } from '../helpers/images.ts';
import { putImage, sha256, startStubRegistry, tarOf, type StubRegistry } from '../helpers/registry-stub.ts';
import type { TarItem } from '../../src/core/tar-write.ts';

/**
 * Hostile images: crafted manifests, configs and layers served by a stub
 * registry, and berthd killed at points of a pull taken from its progress.
 * After each case berthd answers, no half image is listed, and nothing is
 * left: no snapshot, blob, ingest, trash, temp mount point or mount.
 */

const skip = process.getuid?.() !== 0 ? 'needs root (overlayfs, chown, mounts)' : undefined;
const BOUND_MIB = 16;

const file = (name: string, body: string | Buffer): TarItem => ({ entry: { name, type: 'file', size: Buffer.byteLength(body), mode: 0o644 }, body });
const dir = (name: string): TarItem => ({ entry: { name, type: 'dir', mode: 0o755 } });
const smallLayer = async (tag = randomBytes(4).toString('hex')) => ({ tar: await tarOf([dir('etc/'), file('etc/hello', `hello ${tag}\n`)]) });

/** Everything an image operation may leave on disk or mounted, as paths relative to the daemon's dir. */
async function leftovers(d: TestDaemon): Promise<string[]> {
  const out: string[] = [];
  const dirs = [
    'root/content/blobs/sha256', 'root/content/ingest', 'root/content/trash',
    'root/snapshots/overlayfs/snapshots', 'root/snapshots/overlayfs/trash', 'run/mounts',
  ];
  for (const rel of dirs) for (const e of await readdir(path.join(d.dir, rel)).catch(() => [])) out.push(`${rel}/${e}`);
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4]);
  for (const m of mounts) if (m?.startsWith(`${d.dir}/`)) out.push(`mount ${m}`);
  return out;
}

async function assertAnswersAndClean(d: TestDaemon): Promise<void> {
  // Leftovers found at a start are moved to the trash at once and removed from there in the background.
  const trash = path.join(d.root, 'snapshots/overlayfs/trash');
  for (const deadline = Date.now() + 300_000; (await readdir(trash).catch(() => [])).length > 0 && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const images = await d.cli(['images', '-q']);
  assert.equal(images.code, 0, images.stderr);
  assert.equal(images.stdout.trim(), '', 'no image (half or whole) is listed');
  assert.deepEqual(await leftovers(d), []);
}

/** GET on the daemon's Docker API socket. */
function dockerGet(d: TestDaemon, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: path.join(d.state, 'docker.sock'), path: p }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

/** `depth` nested directories under `root`, made relative to descriptors (their path outgrows PATH_MAX), as a crash during an unpack leaves them. */
function makeDeep(root: string, depth: number): void {
  mkdirSync(root, { recursive: true });
  let fd = openSync(root, fsc.O_RDONLY | fsc.O_DIRECTORY);
  for (let i = 0; i < depth; i++) {
    mkdirSync(`/proc/self/fd/${fd}/a`);
    const child = openSync(`/proc/self/fd/${fd}/a`, fsc.O_RDONLY | fsc.O_DIRECTORY);
    closeSync(fd);
    fd = child;
  }
  closeSync(fd);
}

/** Run `berth pull ref` and kill -9 berthd when a progress line matches `when`; resolves once the pull client is gone. */
async function killDuringPull(d: TestDaemon, ref: string, when: RegExp): Promise<string> {
  const { file: bin, args, env } = cliCommand(['-H', `unix://${d.socket}`, 'pull', ref]);
  const p = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((r) => p.once('exit', r));
  let seen = '';
  p.stderr!.on('data', (c) => (seen += c));
  try {
    for await (const line of createInterface({ input: p.stdout! })) {
      seen += `${line}\n`;
      if (when.test(line)) {
        await d.kill();
        break;
      }
    }
  } finally {
    await exited;
  }
  assert.ok(seen.split('\n').some((l) => when.test(l)), `the pull never reached ${when}:\n${seen}`);
  return seen;
}

describe('hostile images', { skip, timeout: 600_000 }, () => {
  let d: TestDaemon;
  let reg: StubRegistry;
  let scratch: string;

  before(async () => {
    reg = await startStubRegistry();
    scratch = await mkdtemp(path.join(os.tmpdir(), 'berth-hostile-'));
    // A held blob must not be taken for a stalled download: the client would give up and resume on its own.
    d = await startDaemon({ config: `version = 1\n[images]\nmax_layer_unpacked_mib = ${BOUND_MIB}\n[registry]\nprogress_timeout_s = 0\n` });
  });
  after(async () => {
    await cleanupDaemonMounts(d);
    await d?.stop();
    await reg?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it('a layer nested 3,000 directories deep is refused; nothing stays, and berthd starts past such a tree left by a crash', async () => {
    const items: TarItem[] = [];
    for (let i = 1, p = ''; i <= 3000; i++) items.push(dir((p += 'a/')));
    putImage(reg, 'evil/deep', '1', { layers: [{ tar: await tarOf(items) }] });
    const r = await d.cli(['pull', `${reg.host}/evil/deep:1`]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /path too long to unpack/);
    await assertAnswersAndClean(d);

    // What an unpack killed half-way (or an older berthd) leaves: a snapshot directory with no record, too deep to name.
    makeDeep(path.join(d.root, 'snapshots/overlayfs/snapshots/9999/fs'), 3000);
    await d.kill();
    await d.restart();
    await assertAnswersAndClean(d);
  });

  it('a config nested 5,000 levels deep is refused at pull, naming the image', async () => {
    const deep = `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`;
    const layer = await smallLayer();
    const config = Buffer.from(`{"architecture":"amd64","os":"linux","config":{"Labels":{"x":${deep}}},"rootfs":{"type":"layers","diff_ids":["${sha256(layer.tar)}"]}}`);
    putImage(reg, 'evil/deepjson', '1', { layers: [layer], config });
    const r = await d.cli(['pull', `${reg.host}/evil/deepjson:1`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`image "${reg.host}/evil/deepjson:1": config sha256:[0-9a-f]{64}: nested more than 64 levels deep`));
    await assertAnswersAndClean(d);
    const docker = await dockerGet(d, '/images/json');
    assert.equal(docker.status, 200, docker.body);
  });

  it('an image stored with a deep config before the checks still lists, inspects and goes', async () => {
    const layer = await smallLayer();
    const pulled = putImage(reg, 'ok/stored', '1', { layers: [layer] });
    const ref = `${reg.host}/ok/stored:1`;
    assert.equal((await d.cli(['pull', ref])).code, 0);
    // Rewrite the stored config in place, as an image pulled by an older berthd would be.
    const cfg = JSON.parse(pulled.config.toString()) as { config: Record<string, unknown> };
    cfg.config.Env = 'PATH=/bin';
    cfg.config.User = 5;
    cfg.config.Labels = '@deep@';
    const deep = JSON.stringify(cfg).replace('"@deep@"', `{"x":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`);
    await d.kill();
    await writeFile(path.join(d.root, 'content/blobs/sha256', sha256(pulled.config).slice(7)), deep);
    await d.restart();

    const ls = await d.cli(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.equal(ls.stdout.trim(), ref);
    const inspect = await d.cli(['image', 'inspect', ref]);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.deepEqual((JSON.parse(inspect.stdout) as { Config: { Env: unknown; Labels: unknown } }[])[0].Config.Env, []);
    const docker = await dockerGet(d, '/images/json');
    assert.equal(docker.status, 200, docker.body);
    // A run reads Env and User: it gets as far as the missing executable, not to a JavaScript TypeError.
    const run = await d.cli(['run', '--rm', '--network', 'none', ref, '/no/such/binary']);
    assert.equal(run.code, 127, run.stderr);
    assert.doesNotMatch(run.stderr, /is not a function/);
    assert.equal((await d.cli(['rmi', ref])).code, 0);
    await assertAnswersAndClean(d);
  });

  it('a huge config is refused without being read whole, and a config whose bytes do not match its digest too', async () => {
    const layer = await smallLayer();
    putImage(reg, 'evil/huge', '1', { layers: [layer], config: { config: { Labels: { big: 'x'.repeat(9 << 20) } } } });
    const r = await d.cli(['pull', `${reg.host}/evil/huge:1`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /image config sha256:[0-9a-f]{64} is larger than \d+ bytes/);
    await assertAnswersAndClean(d);

    const img = putImage(reg, 'evil/cfgdigest', '1', { layers: [layer] });
    const cfg = JSON.parse(img.config.toString()) as Record<string, unknown>;
    reg.blob(sha256(img.config), Buffer.from(JSON.stringify({ ...cfg, os: 'other' })));
    const r2 = await d.cli(['pull', `${reg.host}/evil/cfgdigest:1`]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /digest mismatch/);
    await assertAnswersAndClean(d);
  });

  it('fields of the wrong type are refused at pull, naming the image and the field', async () => {
    const layer = await smallLayer();
    putImage(reg, 'evil/env', '1', { layers: [layer], config: { config: { Env: 'PATH=/bin', Cmd: ['sh'] } } });
    const r = await d.cli(['pull', `${reg.host}/evil/env:1`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`image "${reg.host}/evil/env:1": config sha256:[0-9a-f]{64}: "config.Env" must be an array of strings`));
    await assertAnswersAndClean(d);

    putImage(reg, 'evil/layers', '1', { layers: [layer], config: { rootfs: { type: 'layers', diff_ids: 'sha256:x' } } });
    const r2 = await d.cli(['pull', `${reg.host}/evil/layers:1`]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /"rootfs.diff_ids" must be an array of digests/);
    await assertAnswersAndClean(d);
  });

  it('unknown layer and manifest media types are refused, naming the type and the digest', async () => {
    const layer = await smallLayer();
    const img = putImage(reg, 'evil/mt', '1', { layers: [{ ...layer, mediaType: 'application/vnd.example.weird.layer' }] });
    const r = await d.cli(['pull', `${reg.host}/evil/mt:1`]);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`unsupported layer media type "application/vnd.example.weird.layer" (layers[0], ${img.layers[0].digest})`), r.stderr);
    await assertAnswersAndClean(d);

    const img2 = putImage(reg, 'evil/mmt', '1', { layers: [layer], contentType: 'application/vnd.example.artifact+json', manifestMediaType: 'application/vnd.example.artifact+json' });
    const r2 = await d.cli(['pull', `${reg.host}/evil/mmt:1`]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /unsupported manifest media type "application\/vnd\.example\.artifact\+json"/);
    assert.ok(r2.stderr.includes(sha256(img2.manifest)), r2.stderr);
    await assertAnswersAndClean(d);
  });

  it('digest and size mismatches are refused and leave nothing', async () => {
    const layer = await smallLayer();
    // The right size, one byte changed.
    const wrong = Buffer.from(putImage(reg, 'evil/digest', '1', { layers: [layer] }).layers[0].blob);
    wrong[wrong.length - 1] ^= 0xff;
    putImage(reg, 'evil/digest', '1', { layers: [{ ...layer, served: wrong }] });
    const r = await d.cli(['pull', `${reg.host}/evil/digest:1`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /digest mismatch/);
    await assertAnswersAndClean(d);

    const img = putImage(reg, 'evil/size', '1', { layers: [{ ...(await smallLayer('size')) }] });
    putImage(reg, 'evil/size', '1', { layers: [{ ...(await smallLayer('size')), size: img.layers[0].size - 10 }] });
    const r2 = await d.cli(['pull', `${reg.host}/evil/size:1`]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /more than the \d+ bytes the manifest declares|digest mismatch/);
    await assertAnswersAndClean(d);
  });

  it(`a gzip bomb stops at images.max_layer_unpacked_mib (${BOUND_MIB} MiB), naming the layer, and leaves nothing`, async () => {
    const zeros = Buffer.alloc(128 << 20);
    const img = putImage(reg, 'evil/bomb', '1', { layers: [{ tar: await tarOf([file('zeros', zeros)]) }] });
    assert.ok(img.layers[0].blob.length < 1 << 20, 'a bomb: a small blob');
    // The registry sends only the first half of the blob (what inflates past the bound) until the test ends:
    // the pull must stop on its own, without the rest.
    const hold = reg.hold(img.layers[0].digest, img.layers[0].blob.length >> 1);
    try {
      const r = await d.cli(['pull', `${reg.host}/evil/bomb:1`], { timeoutMs: 60_000 });
      assert.equal(r.code, 1, `the pull did not stop at the bound: ${r.stderr}`);
      assert.ok(r.stderr.includes(`layer ${img.layers[0].digest}: `), r.stderr);
      assert.ok(r.stderr.includes(`unpacked layer is larger than the bound of ${BOUND_MIB << 20} bytes (images.max_layer_unpacked_mib)`), r.stderr);
      await assertAnswersAndClean(d);
    } finally {
      hold.release();
    }
  });

  it('path traversal and link tricks are refused and write nothing outside', async () => {
    const outside = path.join(scratch, 'outside');
    await rm(outside, { recursive: true, force: true });
    mkdirSync(outside);
    const tricks: [string, TarItem[]][] = [
      ['dotdot', [file('../../../../../../../../../../escape', 'x')]],
      ['symlink', [{ entry: { name: 'out', type: 'symlink', linkname: outside } }, file('out/pwned', 'x')]],
      ['relsymlink', [dir('a/'), { entry: { name: 'a/up', type: 'symlink', linkname: '../../../../../../../../..' + outside } }, file('a/up/pwned', 'x')]],
      ['hardlink', [{ entry: { name: 'passwd', type: 'hardlink', linkname: '/etc/passwd' } }]],
    ];
    for (const [name, items] of tricks) {
      putImage(reg, `evil/${name}`, '1', { layers: [{ tar: await tarOf(items) }] });
      const r = await d.cli(['pull', `${reg.host}/evil/${name}:1`]);
      assert.equal(r.code, 1, `${name}: ${r.stdout}`);
      assert.match(r.stderr, /escapes|outside|not in the layer/, name);
      assert.deepEqual(await readdir(outside), [], name);
      assert.deepEqual(await leftovers(d), [], name);
    }
  });

  it('an image whose layer snapshot exists (the same content, another blob) is recorded with its own blob', async () => {
    const layer = await smallLayer('shared');
    const a = putImage(reg, 'ok/gz', '1', { layers: [layer] });
    const b = putImage(reg, 'ok/plain', '1', { layers: [{ ...layer, compression: 'none' }] });
    assert.notEqual(a.layers[0].digest, b.layers[0].digest);
    assert.equal((await d.cli(['pull', `${reg.host}/ok/gz:1`])).code, 0);
    const r = await d.cli(['pull', `${reg.host}/ok/plain:1`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(reg.blobGets.get(b.layers[0].digest), 1, 'the second image fetched its own blob');
    const saved = path.join(scratch, 'plain.tar');
    const save = await d.cli(['save', '-o', saved, `${reg.host}/ok/plain:1`]);
    assert.equal(save.code, 0, save.stderr);
    // Pulling it again costs nothing: the image is complete.
    assert.match((await d.cli(['pull', `${reg.host}/ok/plain:1`])).stdout, /Image is up to date/);
    assert.equal((await d.cli(['rmi', `${reg.host}/ok/gz:1`, `${reg.host}/ok/plain:1`])).code, 0);
    await assertAnswersAndClean(d);
  });

  it('kill -9 of berthd at points of a pull: it restarts, no half image is listed, and the pull then completes', async () => {
    const big = async (s: string) => ({ tar: await tarOf([file(`data-${s}`, randomBytes(1 << 20))]) });
    const img = putImage(reg, 'ok/killed', '1', { layers: [await big('1'), await big('2')] });
    const ref = `${reg.host}/ok/killed:1`;
    const short = (dg: string) => dg.slice(7, 19);

    // 1. Both layers half-downloaded.
    let holds = img.layers.map((l) => reg.hold(l.digest, 256 << 10));
    await killDuringPull(d, ref, new RegExp(`${short(img.layers[1].digest)}: Downloading`));
    for (const h of holds) h.release();
    await d.restart();
    let ls = await d.cli(['images', '-q']);
    assert.equal(ls.code, 0);
    assert.equal(ls.stdout.trim(), '');

    // 2. The first layer downloaded and unpacked, the second held.
    holds = [reg.hold(img.layers[1].digest, 128 << 10)];
    await killDuringPull(d, ref, new RegExp(`${short(img.layers[0].digest)}: Download complete`));
    holds[0].release();
    await d.restart();
    ls = await d.cli(['images', '-q']);
    assert.equal(ls.stdout.trim(), '');

    // 3. Everything fetched; killed while the image is being recorded ("Digest:" comes right after the record).
    await killDuringPull(d, ref, /^Digest: /);
    await d.restart();
    ls = await d.cli(['images', '--format', '{{.Repository}}']);
    assert.equal(ls.code, 0);

    const r = await d.cli(['pull', ref]);
    assert.equal(r.code, 0, r.stderr);
    const run = await d.cli(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    assert.equal(run.stdout.trim(), ref);
    assert.equal((await d.cli(['rmi', ref])).code, 0);
    await assertAnswersAndClean(d);
  });
});
