import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { rootCtx } from '../../src/core/context.ts';
import { isIndexType, MediaTypes } from '../../src/core/media-types.ts';
import { parseNormalized, parseReference } from '../../src/core/reference.ts';
import { RegistryClient } from '../../src/distribution/client.ts';
import { StaticCredentialStore } from '../../src/distribution/credentials.ts';
import { selectPlatform } from '../../src/distribution/platform.ts';
import { RegistryByName, credentialsByHost } from '../../src/distribution/by-name.ts';
import { DockerConfigCredentialStore } from '../../src/distribution/credentials.ts';
import type { CredentialRole, RegistryRole } from '../../src/images/types.ts';
import { freePort, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { buildImage, buildMultiPlatform, busyboxImage, pushToRegistry, type BuiltImage } from '../helpers/image-builder.ts';

const execFileP = promisify(execFile);
const ctx = rootCtx();
let reg: TestRegistry;
let dir: string;
let img: BuiltImage;
const quick = { retries: 2, retryBackoffMs: 20 };

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

before(async () => {
  reg = await startRegistry();
  dir = await mkdtemp(path.join(os.tmpdir(), 'berth-dist-'));
  img = await buildImage(path.join(dir, 'bb'), busyboxImage([{ files: [{ path: 'data/blob', size: 300_000, fill: 'random' }] }]), { tag: 'v1' });
  await pushToRegistry(img.layout, `${reg.host}/test/busybox:v1`);
});
after(async () => {
  await reg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('resolve, fetch manifest, config and layers of an image skopeo pushed', async (t) => {
  const client = new RegistryClient({ config: quick });
  t.after(() => client.close());
  const ref = parseNormalized(`${reg.host}/test/busybox:v1`);
  const desc = await client.resolve(ctx, ref);
  assert.equal(desc.digest, img.manifest.digest);
  assert.equal(desc.mediaType, MediaTypes.ociManifest);
  assert.equal(desc.size, img.manifest.size);
  const { manifest, bytes } = await client.fetchManifest(ctx, ref, desc);
  assert.equal(sha256(bytes), desc.digest);
  const config = await client.fetchBlobBytes(ctx, ref, manifest.config);
  assert.deepEqual(JSON.parse(config.toString()).rootfs.diff_ids, img.configJson.rootfs.diff_ids);
  for (const layer of manifest.layers) {
    const data = await readAll(await client.fetchBlob(ctx, ref, layer, 0, { verify: true }));
    assert.equal(sha256(data), layer.digest);
    const tail = await readAll(await client.fetchBlob(ctx, ref, layer, 1000));
    assert.deepEqual(tail, data.subarray(1000));
  }
  // By digest, too.
  const byDigest = await client.resolve(ctx, parseReference(`${reg.host}/test/busybox@${desc.digest}`));
  assert.equal(byDigest.digest, desc.digest);
});

test('unknown tags and repositories are NotFound naming the reference', async (t) => {
  const client = new RegistryClient({ config: quick });
  t.after(() => client.close());
  await assert.rejects(client.resolve(ctx, parseNormalized(`${reg.host}/test/busybox:nope`)), (e: { kind?: string; message?: string }) =>
    e.kind === 'NotFound' && e.message === `${reg.host}/test/busybox:nope: not found`);
  await assert.rejects(client.resolve(ctx, parseNormalized(`${reg.host}/no/such:x`)), { kind: 'NotFound' });
  const ref = parseNormalized(`${reg.host}/test/busybox:v1`);
  await assert.rejects(client.fetchBlobBytes(ctx, ref, { mediaType: 'x', digest: `sha256:${'0'.repeat(64)}`, size: 1 }), { kind: 'NotFound' });
});

test('an index with two platforms selects linux/amd64; Docker schema2 manifests are read too', async (t) => {
  const client = new RegistryClient({ config: quick });
  t.after(() => client.close());
  const layout = path.join(dir, 'multi');
  const { images } = await buildMultiPlatform(layout, [
    { layers: [{ files: [{ path: 'arch', content: 'arm64' }] }], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    { layers: [{ files: [{ path: 'arch', content: 'amd64' }] }], platform: { os: 'linux', architecture: 'amd64' } },
  ], { tag: 'multi' });
  await pushToRegistry(layout, `${reg.host}/test/multi:multi`);
  const ref = parseNormalized(`${reg.host}/test/multi:multi`);
  const desc = await client.resolve(ctx, ref);
  assert.ok(isIndexType(desc.mediaType));
  const { index } = await client.fetchIndex(ctx, ref, desc);
  const chosen = selectPlatform(index);
  assert.equal(chosen.digest, images[1].manifest.digest);
  const { manifest } = await client.fetchManifest(ctx, ref, chosen);
  assert.equal(manifest.layers[0].digest, images[1].layers[0].digest);

  await pushToRegistry(img.layout, `${reg.host}/test/docker:v1`, { tag: 'v1', format: 'v2s2' });
  const dref = parseNormalized(`${reg.host}/test/docker:v1`);
  const ddesc = await client.resolve(ctx, dref);
  assert.equal(ddesc.mediaType, MediaTypes.dockerManifest);
  const dm = await client.fetchManifest(ctx, dref, ddesc);
  assert.equal(dm.mediaType, MediaTypes.dockerManifest);
  await assert.rejects(client.fetchIndex(ctx, dref, ddesc), { kind: 'FailedPrecondition' });
});

test('basic auth: refused without credentials, works with them; login checks them', async (t) => {
  const authed = await startRegistry({ auth: 'basic' });
  t.after(() => authed.stop());
  await pushToRegistry(img.layout, `${authed.host}/t/bb:v1`, { tag: 'v1', creds: `${authed.user}:${authed.password}` });
  const ref = parseNormalized(`${authed.host}/t/bb:v1`);
  const anon = new RegistryClient({ config: quick });
  t.after(() => anon.close());
  await assert.rejects(anon.resolve(ctx, ref), { kind: 'Unauthenticated' });
  await assert.rejects(anon.login(ctx, authed.host, { username: authed.user!, password: 'wrong' }), (e: { kind?: string; message?: string }) =>
    e.kind === 'Unauthenticated' && /incorrect username or password/.test(e.message ?? ''));
  await anon.login(ctx, authed.host, { username: authed.user!, password: authed.password! });
  const client = new RegistryClient({ config: quick, credentials: new StaticCredentialStore({ [authed.host]: { username: authed.user!, password: authed.password! } }) });
  t.after(() => client.close());
  const desc = await client.resolve(ctx, ref);
  assert.equal(desc.digest, img.manifest.digest);
  const { manifest } = await client.fetchManifest(ctx, ref, desc);
  assert.equal(sha256(await client.fetchBlobBytes(ctx, ref, manifest.config)), manifest.config.digest);
});

test('a registry that is down is Unavailable, naming the host, after bounded retries', async (t) => {
  const port = await freePort();
  const client = new RegistryClient({ config: quick });
  t.after(() => client.close());
  await assert.rejects(client.resolve(ctx, parseNormalized(`127.0.0.1:${port}/x:y`)), (e: { kind?: string; message?: string }) =>
    e.kind === 'Unavailable' && (e.message ?? '').includes(`127.0.0.1:${port}`));
});

test('garbage answers give a clear error', async (t) => {
  // The real registry never answers with junk, so a tiny server on loopback plays a broken one.
  const junk = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(req.method === 'HEAD' ? undefined : '<html>definitely not a manifest</html>');
  });
  const notHttp = net.createServer((s) => s.end('SSH-2.0-nonsense\r\n\r\n', () => s.destroy()));
  await new Promise<void>((r) => junk.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => notHttp.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => { junk.closeAllConnections(); junk.close(() => r()); }));
  t.after(() => new Promise<void>((r) => notHttp.close(() => r())));
  const client = new RegistryClient({ config: quick });
  t.after(() => client.close());
  const p1 = (junk.address() as net.AddressInfo).port;
  await assert.rejects(client.resolve(ctx, parseNormalized(`127.0.0.1:${p1}/x:y`)), (e: { kind?: string; message?: string }) =>
    e.kind === 'Unknown' && /invalid manifest: not JSON/.test(e.message ?? ''));
  const p2 = (notHttp.address() as net.AddressInfo).port;
  await assert.rejects(client.resolve(ctx, parseNormalized(`127.0.0.1:${p2}/x:y`)), (e: { kind?: string; message?: string }) =>
    e.kind === 'Unknown' && /invalid HTTP response/.test(e.message ?? ''));
});

/**
 * A proxy in front of the real registry that breaks the first blob transfer:
 * `cut` closes the connection after some bytes, `stall` stops sending.
 */
async function breakingProxy(upstream: number, mode: 'cut' | 'stall') {
  const seen: string[] = [];
  let broken = false;
  const open = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.range ?? ''}`);
    const up = http.request({ host: '127.0.0.1', port: upstream, path: req.url, method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 500, ur.headers);
      const isBlob = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '') && !req.headers.range;
      if (!isBlob || broken) {
        ur.pipe(res);
        return;
      }
      broken = true;
      let sent = 0;
      ur.on('data', (c: Buffer) => {
        if (sent >= 50_000) return;
        const part = c.subarray(0, 50_000 - sent);
        sent += c.length;
        if (sent < 50_000) {
          res.write(part);
          return;
        }
        ur.destroy();
        // Cut only once the bytes are on the wire, so the client has something to resume from.
        res.write(part, () => {
          if (mode === 'cut') setTimeout(() => res.socket?.destroy(), 20);
        });
      });
    });
    req.pipe(up);
  });
  server.on('connection', (s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    close: () => new Promise<void>((r) => {
      for (const s of open) s.destroy();
      server.close(() => r());
    }),
  };
}

for (const mode of ['cut', 'stall'] as const) {
  test(`an interrupted blob download (${mode}) resumes with Range`, async (t) => {
    const proxy = await breakingProxy(reg.port, mode);
    t.after(() => proxy.close());
    const client = new RegistryClient({ config: { ...quick, progressTimeoutMs: 500 } });
    t.after(() => client.close());
    const ref = parseNormalized(`127.0.0.1:${proxy.port}/test/busybox:v1`);
    const big = img.layers[1];
    const data = await readAll(await client.fetchBlob(ctx, ref, big));
    assert.equal(data.length, big.size);
    assert.equal(sha256(data), big.digest);
    assert.ok(proxy.seen.some((s) => s.includes(big.digest) && /bytes=\d+-$/.test(s)), proxy.seen.join('\n'));
  });
}

test('push blobs (monolithic, chunked, mounted) and a manifest; skopeo reads them back', async (t) => {
  const client = new RegistryClient({ config: { ...quick, uploadChunkBytes: 64 * 1024 } });
  t.after(() => client.close());
  const layout = path.join(dir, 'push');
  const built = await buildImage(layout, busyboxImage([{ files: [{ path: 'big', size: 200_000, fill: 'random' }] }], { Cmd: ['echo', 'pushed'] }));
  const ref = parseNormalized(`${reg.host}/pushed/app:1`);
  const blobFile = (d: string) => path.join(layout, 'blobs', 'sha256', d.slice(7));
  const progress: number[] = [];
  for (const desc of [built.config, ...built.manifestJson.layers]) {
    const result = await client.pushBlob(ctx, ref, desc, (offset) => createReadStream(blobFile(desc.digest), { start: offset }), {
      onProgress: (n) => progress.push(n),
    });
    assert.equal(result, 'uploaded');
  }
  assert.ok(progress.length > 3);
  assert.equal(await client.blobExists(ctx, ref, built.config), true);
  assert.equal(await client.pushBlob(ctx, ref, built.config, () => createReadStream(blobFile(built.config.digest))), 'exists');
  const other = parseNormalized(`${reg.host}/other/app:1`);
  const big = built.manifestJson.layers[1];
  assert.equal(await client.pushBlob(ctx, other, big, () => createReadStream(blobFile(big.digest)), { mountFrom: ['pushed/app'] }), 'mounted');

  const manifestBytes = await readFile(blobFile(built.manifest.digest));
  const pushed = await client.pushManifest(ctx, ref, MediaTypes.ociManifest, manifestBytes);
  assert.equal(pushed.digest, built.manifest.digest);
  const { stdout } = await execFileP('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/pushed/app:1`]);
  const info = JSON.parse(stdout) as { Digest: string; Layers: string[] };
  assert.equal(info.Digest, built.manifest.digest);
  assert.deepEqual(info.Layers, built.manifestJson.layers.map((l) => l.digest));
  const out = path.join(dir, 'copied');
  await execFileP('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/pushed/app:1`, `oci:${out}:copied`]);
  const copied = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  assert.equal(copied.manifests[0].digest, built.manifest.digest);
});

test('content that does not match its digest is DataLoss', async (t) => {
  // A real registry addresses content by digest and cannot serve a mismatch; a loopback server that lies can.
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: img.config, layers: [] }));
  const liar = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': MediaTypes.ociManifest, 'content-length': String(body.length) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => { liar.closeAllConnections(); liar.close(() => r()); }));
  const client = new RegistryClient({ config: quick });
  t.after(() => client.close());
  const ref = parseNormalized(`127.0.0.1:${(liar.address() as net.AddressInfo).port}/x:y`);
  const claimed = { mediaType: MediaTypes.ociManifest, digest: `sha256:${'1'.repeat(64)}` as const, size: body.length };
  await assert.rejects(client.fetchManifestBytes(ctx, ref, claimed), { kind: 'DataLoss' });
  await assert.rejects(client.fetchBlobBytes(ctx, ref, claimed), { kind: 'DataLoss' });
  await assert.rejects(client.fetchBlobBytes(ctx, ref, { ...claimed, size: 10 }), { kind: 'DataLoss' });
});

test('the by-name adapter fits the image service roles and round-trips an image', async (t) => {
  const client = new RegistryClient({ config: quick });
  t.after(() => client.close());
  const role: RegistryRole = new RegistryByName(client);
  const credFile = path.join(dir, 'creds', 'auth.json');
  const creds: CredentialRole = credentialsByHost(new DockerConfigCredentialStore([credFile]), ctx);
  await creds.store(reg.host, 'a', 'b');
  assert.equal(await creds.erase(reg.host), true);
  assert.equal(await creds.erase(reg.host), false);

  const { name, descriptor } = await role.resolve(ctx, `${reg.host}/test/busybox:v1`);
  assert.equal(name, `${reg.host}/test/busybox:v1`);
  const manifestBytes = await readAll(await role.fetch(ctx, name, descriptor));
  const manifest = JSON.parse(manifestBytes.toString()) as { config: typeof descriptor; layers: (typeof descriptor)[] };
  const target = `${reg.host}/copy/busybox:c1`;
  for (const d of [...manifest.layers, manifest.config]) {
    const bytes = await readAll(await role.fetch(ctx, name, d));
    assert.equal(await role.push(ctx, target, d, async () => Readable.from([bytes])), 'uploaded');
    assert.equal(await role.push(ctx, target, d, async () => Readable.from([bytes])), 'exists');
  }
  await role.push(ctx, target, descriptor, async () => Readable.from([manifestBytes]));
  const { stdout } = await execFileP('skopeo', ['inspect', '--tls-verify=false', `docker://${target}`]);
  assert.equal((JSON.parse(stdout) as { Digest: string }).Digest, descriptor.digest);
});

test('bearer tokens: anonymous pull, authenticated push, one token per scope set', async (t) => {
  const tok = await startRegistry({ auth: 'token' });
  t.after(() => tok.stop());
  const creds = `${tok.user}:${tok.password}`;
  await pushToRegistry(img.layout, `${tok.host}/t/bb:v1`, { tag: 'v1', creds });
  const ref = parseNormalized(`${tok.host}/t/bb:v1`);

  const anon = new RegistryClient({ config: quick });
  t.after(() => anon.close());
  tok.tokenRequests!.length = 0;
  const desc = await anon.resolve(ctx, ref);
  assert.equal(desc.digest, img.manifest.digest);
  const { manifest } = await anon.fetchManifest(ctx, ref, desc);
  for (const l of manifest.layers) assert.equal(sha256(await readAll(await anon.fetchBlob(ctx, ref, l))), l.digest);
  assert.deepEqual(tok.tokenRequests, ['anonymous repository:t/bb:pull']);
  const pushRef = parseNormalized(`${tok.host}/t/new:1`);
  const cfgBytes = await readFile(path.join(img.layout, 'blobs', 'sha256', img.config.digest.slice(7)));
  await assert.rejects(anon.pushBlob(ctx, pushRef, img.config, () => Readable.from([cfgBytes])), (e: { kind?: string }) =>
    e.kind === 'Unauthenticated' || e.kind === 'PermissionDenied');

  const wrong = new RegistryClient({ config: quick, credentials: new StaticCredentialStore({ [tok.host]: { username: tok.user!, password: 'nope' } }) });
  t.after(() => wrong.close());
  await assert.rejects(wrong.resolve(ctx, ref), (e: { kind?: string; message?: string }) =>
    e.kind === 'Unauthenticated' && /incorrect username or password/.test(e.message ?? ''));
  await assert.rejects(anon.login(ctx, tok.host, { username: tok.user!, password: 'nope' }), { kind: 'Unauthenticated' });
  await anon.login(ctx, tok.host, { username: tok.user!, password: tok.password! });

  const user = new RegistryClient({ config: quick, credentials: new StaticCredentialStore({ [tok.host]: { username: tok.user!, password: tok.password! } }) });
  t.after(() => user.close());
  assert.equal(await user.pushBlob(ctx, pushRef, img.config, () => Readable.from([cfgBytes]), { mountFrom: ['t/bb'] }), 'mounted');
  for (const l of img.layers) {
    const bytes = await readFile(path.join(img.layout, 'blobs', 'sha256', l.digest.slice(7)));
    assert.equal(await user.pushBlob(ctx, pushRef, l, () => Readable.from([bytes])), 'uploaded');
  }
  const mbytes = await readFile(path.join(img.layout, 'blobs', 'sha256', img.manifest.digest.slice(7)));
  await user.pushManifest(ctx, pushRef, MediaTypes.ociManifest, mbytes);
  const { stdout } = await execFileP('skopeo', ['inspect', '--tls-verify=false', '--creds', creds, `docker://${tok.host}/t/new:1`]);
  assert.equal((JSON.parse(stdout) as { Digest: string }).Digest, img.manifest.digest);
});

test('5xx answers are retried a bounded number of times, then Unavailable', async (t) => {
  // The real registry does not fail on demand; a loopback server that always answers 503 does.
  let hits = 0;
  const failing = http.createServer((req, res) => {
    hits++;
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'maintenance' }] }));
  });
  await new Promise<void>((r) => failing.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => { failing.closeAllConnections(); failing.close(() => r()); }));
  const client = new RegistryClient({ config: quick });
  t.after(() => client.close());
  const host = `127.0.0.1:${(failing.address() as net.AddressInfo).port}`;
  await assert.rejects(client.resolve(ctx, parseNormalized(`${host}/x:y`)), (e: { kind?: string; message?: string }) =>
    e.kind === 'Unavailable' && (e.message ?? '').includes(host));
  assert.equal(hits, 1 + quick.retries);
  hits = 0;
  const ref = parseNormalized(`${host}/x:y`);
  await assert.rejects(client.fetchManifestBytes(ctx, ref, { mediaType: MediaTypes.ociManifest, digest: `sha256:${'2'.repeat(64)}`, size: 10 }),
    (e: { kind?: string; message?: string }) => e.kind === 'Unavailable' && /maintenance/.test(e.message ?? ''));
  assert.equal(hits, 1 + quick.retries);
});

test('blob downloads respect max_concurrent_downloads', async (t) => {
  const client = new RegistryClient({ config: { ...quick, maxConcurrentDownloads: 1 } });
  t.after(() => client.close());
  const ref = parseNormalized(`${reg.host}/test/busybox:v1`);
  const first = await client.fetchBlob(ctx, ref, img.layers[0]);
  let second: NodeJS.ReadableStream | undefined;
  const pending = client.fetchBlob(ctx, ref, img.layers[1]).then((s) => (second = s));
  await new Promise((r) => setImmediate(r));
  assert.equal(second, undefined);
  assert.equal(sha256(await readAll(first)), img.layers[0].digest);
  await pending;
  assert.equal(sha256(await readAll(second!)), img.layers[1].digest);
});

test('hosts.toml mirrors: a dead mirror is skipped, a mirror with the image serves it, else the server does; push goes to the server', async (t) => {
  const mirror = await startRegistry();
  t.after(() => mirror.stop());
  const other = await buildImage(path.join(dir, 'mirror-img'), { layers: [{ files: [{ path: 'm', content: 'from mirror' }] }] }, { tag: 'm1' });
  await pushToRegistry(other.layout, `${mirror.host}/test/busybox:m1`);
  const hostsDir = path.join(dir, 'certs.d');
  await mkdir(path.join(hostsDir, reg.host), { recursive: true });
  const dead = await freePort();
  await writeFile(path.join(hostsDir, reg.host, 'hosts.toml'), [
    `server = "http://${reg.host}"`,
    `[host."http://127.0.0.1:${dead}"]`,
    '  capabilities = ["pull", "resolve"]',
    `[host."http://${mirror.host}"]`,
    '  capabilities = ["pull", "resolve"]',
  ].join('\n'));
  const client = new RegistryClient({ config: { ...quick, configPath: hostsDir } });
  t.after(() => client.close());
  const fromMirror = parseNormalized(`${reg.host}/test/busybox:m1`);
  const d1 = await client.resolve(ctx, fromMirror);
  assert.equal(d1.digest, other.manifest.digest);
  const { manifest } = await client.fetchManifest(ctx, fromMirror, d1);
  assert.equal(sha256(await client.fetchBlobBytes(ctx, fromMirror, manifest.config)), manifest.config.digest);
  const d2 = await client.resolve(ctx, parseNormalized(`${reg.host}/test/busybox:v1`));
  assert.equal(d2.digest, img.manifest.digest);
  const pushRef = parseNormalized(`${reg.host}/mirrored/push:1`);
  const cfg = await readFile(path.join(img.layout, 'blobs', 'sha256', img.config.digest.slice(7)));
  assert.equal(await client.pushBlob(ctx, pushRef, img.config, () => Readable.from([cfg])), 'uploaded');
  const direct = new RegistryClient({ config: quick });
  t.after(() => direct.close());
  assert.equal(await direct.blobExists(ctx, pushRef, img.config), true);
  assert.equal(await direct.blobExists(ctx, parseNormalized(`${mirror.host}/mirrored/push:1`), img.config), false);
});

test('TLS: a custom CA or skip_verify from hosts.toml; unverified by default on loopback', async (t) => {
  const secure = await startRegistry({ tls: true });
  t.after(() => secure.stop());
  await pushToRegistry(img.layout, `${secure.host}/tls/bb:v1`, { tag: 'v1' });
  const ref = parseNormalized(`${secure.host}/tls/bb:v1`);
  const hostsDir = path.join(dir, 'tls-certs.d');
  await mkdir(path.join(hostsDir, secure.host), { recursive: true });
  const hostsFile = path.join(hostsDir, secure.host, 'hosts.toml');
  const resolveWith = async (toml: string | undefined) => {
    if (toml === undefined) await rm(hostsFile, { force: true });
    else await writeFile(hostsFile, toml);
    const client = new RegistryClient({ config: { ...quick, configPath: hostsDir } });
    try {
      return await client.resolve(ctx, ref);
    } finally {
      client.close();
    }
  };
  await assert.rejects(resolveWith(`server = "https://${secure.host}"\n`), (e: { kind?: string; message?: string }) =>
    e.kind === 'Unavailable' && /TLS handshake failed/.test(e.message ?? ''));
  assert.equal((await resolveWith(`server = "https://${secure.host}"\nca = "${secure.caFile}"\n`)).digest, img.manifest.digest);
  assert.equal((await resolveWith(`server = "https://${secure.host}"\nskip_verify = true\n`)).digest, img.manifest.digest);
  assert.equal((await resolveWith(undefined)).digest, img.manifest.digest);
});
