import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { rootCtx } from '../core/context.ts';
import { MediaTypes } from '../core/media-types.ts';
import { parseChallenges } from './auth.ts';
import { authKeyDomain, DockerConfigCredentialStore } from './credentials.ts';
import { parsePlatform, platformScore, selectPlatform } from './platform.ts';

test('WWW-Authenticate challenges', () => {
  assert.deepEqual(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:library/busybox:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:library/busybox:pull' } },
  ]);
  assert.deepEqual(parseChallenges('Basic realm="berth-test"'), [{ scheme: 'basic', params: { realm: 'berth-test' } }]);
  assert.deepEqual(parseChallenges(['Basic realm=x', 'Bearer realm="r", error="insufficient_scope", scope="a b"']), [
    { scheme: 'basic', params: { realm: 'x' } },
    { scheme: 'bearer', params: { realm: 'r', error: 'insufficient_scope', scope: 'a b' } },
  ]);
  assert.deepEqual(parseChallenges('Bearer realm="a\\"b",service=s'), [{ scheme: 'bearer', params: { realm: 'a"b', service: 's' } }]);
  assert.deepEqual(parseChallenges(''), []);
  assert.deepEqual(parseChallenges(undefined), []);
});

test('docker config.json credentials: read in order, write the first file', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-creds-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ctx = rootCtx();
  const own = path.join(dir, 'berth', 'auth.json');
  const docker = path.join(dir, 'docker.json');
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  await writeFile(docker, JSON.stringify({
    auths: { 'https://index.docker.io/v1/': { auth: b64('hub:pw:with:colons') }, 'localhost:5000': { auth: b64('d:1') } },
    credsStore: 'keep-me',
  }));
  const store = new DockerConfigCredentialStore([own, docker]);
  assert.deepEqual(await store.get(ctx, 'docker.io'), { username: 'hub', password: 'pw:with:colons' });
  assert.deepEqual(await store.get(ctx, 'localhost:5000'), { username: 'd', password: '1' });
  assert.equal(await store.get(ctx, 'other:1'), undefined);

  await store.store(ctx, 'localhost:5000', { username: 'mine', password: 'p' });
  assert.deepEqual(await store.get(ctx, 'localhost:5000'), { username: 'mine', password: 'p' });
  assert.equal((await stat(own)).mode & 0o777, 0o600);
  await store.store(ctx, 'docker.io', { username: 'u', password: 'v' });
  const written = JSON.parse(await readFile(own, 'utf8')) as { auths: Record<string, { auth: string }> };
  assert.deepEqual(Object.keys(written.auths).sort(), ['https://index.docker.io/v1/', 'localhost:5000']);
  await store.erase(ctx, 'localhost:5000');
  assert.deepEqual(await store.get(ctx, 'localhost:5000'), { username: 'd', password: '1' });
  await assert.rejects(store.erase(ctx, 'localhost:5000'), { kind: 'NotFound' });
  assert.ok((await readFile(docker, 'utf8')).includes('keep-me'));

  await writeFile(docker, '{nope');
  await assert.rejects(new DockerConfigCredentialStore([docker]).get(ctx, 'x'), (e: { kind?: string; message?: string }) =>
    e.kind === 'InvalidArgument' && (e.message ?? '').includes(docker));
  assert.equal(authKeyDomain('https://registry-1.docker.io/v2/'), 'docker.io');
  assert.equal(authKeyDomain('http://LocalHost:5000'), 'localhost:5000');
});

test('docker credential helpers: credHelpers per registry, then credsStore, then auths', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-credhelper-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ctx = rootCtx();
  // Test doubles of docker-credential-* helpers: small scripts speaking the helper protocol
  // (no real keychain exists on a build machine).
  const helper = async (name: string, body: string) => {
    const file = path.join(dir, `docker-credential-${name}`);
    await writeFile(file, `#!/bin/sh\n[ "$1" = get ] || exit 2\nread -r server\n${body}\n`, { mode: 0o755 });
  };
  await helper('store', 'case "$server" in\n  localhost:5000) echo "{\\"ServerURL\\":\\"$server\\",\\"Username\\":\\"from-store\\",\\"Secret\\":\\"s1\\"}" ;;\n  https://index.docker.io/v1/) echo "{\\"Username\\":\\"hub\\",\\"Secret\\":\\"h\\"}" ;;\n  *) echo "credentials not found in native keychain"; exit 1 ;;\nesac');
  await helper('special', 'echo "{\\"Username\\":\\"special-$server\\",\\"Secret\\":\\"s2\\"}"');
  await helper('broken', 'echo "keychain locked" >&2; exit 3');
  const cfg = path.join(dir, 'config.json');
  await writeFile(cfg, JSON.stringify({
    credsStore: 'store',
    credHelpers: { 'other.example:443': 'special', 'locked.example': 'broken', 'gone.example': 'not-installed' },
    auths: { 'fallback.example': { auth: Buffer.from('file:pw').toString('base64') }, 'gone.example': { auth: Buffer.from('g:pw').toString('base64') } },
  }));
  const store = new DockerConfigCredentialStore([cfg], { helperPath: dir });
  assert.deepEqual(await store.get(ctx, 'localhost:5000'), { username: 'from-store', password: 's1' });
  assert.deepEqual(await store.get(ctx, 'docker.io'), { username: 'hub', password: 'h' });
  assert.deepEqual(await store.get(ctx, 'other.example:443'), { username: 'special-other.example:443', password: 's2' });
  // Not found by the helper: the file's own entry, or anonymous.
  assert.deepEqual(await store.get(ctx, 'fallback.example'), { username: 'file', password: 'pw' });
  assert.equal(await store.get(ctx, 'nowhere.example'), undefined);
  // A helper that is not installed does not stand in the way; one that fails says so.
  assert.deepEqual(await store.get(ctx, 'gone.example'), { username: 'g', password: 'pw' });
  await assert.rejects(store.get(ctx, 'locked.example'), (e: { kind?: string; message?: string }) =>
    e.kind === 'Unavailable' && /docker-credential-broken get failed \(exit 3\): keychain locked/.test(e.message ?? ''));
  await writeFile(cfg, JSON.stringify({ credsStore: '../evil' }));
  await assert.rejects(store.get(ctx, 'x'), { kind: 'InvalidArgument' });
});

test('platform selection', () => {
  const d = (architecture: string, variant?: string, os = 'linux') => ({
    mediaType: MediaTypes.ociManifest, digest: `sha256:${architecture}${variant ?? ''}` as `${string}:${string}`, size: 1,
    platform: { os, architecture, ...(variant ? { variant } : {}) },
  });
  const index = { schemaVersion: 2 as const, manifests: [d('arm', 'v6'), d('arm64'), d('amd64'), d('arm', 'v7'), d('amd64', undefined, 'windows'), { mediaType: 'x', digest: 'sha256:att' as const, size: 1 }] };
  assert.equal(selectPlatform(index).digest, 'sha256:amd64');
  assert.equal(selectPlatform(index, parsePlatform('linux/arm64/v8')).digest, 'sha256:arm64');
  assert.equal(selectPlatform(index, parsePlatform('linux/aarch64')).digest, 'sha256:arm64');
  assert.equal(selectPlatform(index, parsePlatform('linux/arm/v7')).digest, 'sha256:armv7');
  assert.equal(selectPlatform(index, parsePlatform('linux/arm/v6')).digest, 'sha256:armv6');
  assert.equal(selectPlatform({ schemaVersion: 2, manifests: [d('arm', 'v6')] }, parsePlatform('linux/arm')).digest, 'sha256:armv6');
  assert.throws(() => selectPlatform(index, parsePlatform('linux/s390x')), (e: { kind?: string; message?: string }) =>
    e.kind === 'NotFound' && /linux\/s390x \(offered: linux\/arm\/v6, linux\/arm64, linux\/amd64/.test(e.message ?? ''));
  assert.equal(platformScore({ os: 'linux', architecture: 'arm', variant: 'v5' }, { os: 'linux', architecture: 'arm', variant: 'v7' }), -1);
  assert.throws(() => parsePlatform('linux'), { kind: 'InvalidArgument' });
});
