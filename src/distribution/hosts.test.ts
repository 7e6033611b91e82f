import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { rootCtx } from '../core/context.ts';
import { defaultEndpoints, isLoopbackRegistry, parseHostsToml, resolveHosts } from './hosts.ts';

test('defaults: https to the host, docker.io to its API host, loopback may fall back to plain HTTP', () => {
  const [hub] = defaultEndpoints('docker.io');
  assert.equal(hub.url, 'https://registry-1.docker.io/v2');
  assert.deepEqual(hub.capabilities, ['pull', 'resolve', 'push']);
  assert.equal(hub.plainHttpFallback, false);
  assert.equal(hub.skipVerify, false);
  assert.equal(defaultEndpoints('example.com:5000')[0].url, 'https://example.com:5000/v2');
  for (const h of ['localhost', 'localhost:5000', '127.0.0.1:5000', '127.1.2.3', '[::1]:5000', '[::1]']) {
    assert.equal(isLoopbackRegistry(h), true, h);
    assert.equal(defaultEndpoints(h)[0].plainHttpFallback, true, h);
    assert.equal(defaultEndpoints(h)[0].skipVerify, true, h);
  }
  for (const h of ['example.com', '10.0.0.1:5000', 'localhost.example.com', '[fe80::1]']) assert.equal(isLoopbackRegistry(h), false, h);
});

test('hosts.toml: mirrors in order, then the server', () => {
  const eps = parseHostsToml('docker.io', `
server = "https://registry-1.docker.io"

[host."https://mirror-a.example"]
  capabilities = ["pull", "resolve"]
  ca = "mirror-a.crt"

[host."http://mirror-b.example:5000/prefix"]
  capabilities = ["pull"]
  skip_verify = true
  [host."http://mirror-b.example:5000/prefix".header]
    x-token = "abc"

[host."https://mirror-c.example/custom/v2"]
  override_path = true
`, '/etc/berth/certs.d/docker.io');
  assert.deepEqual(eps.map((e) => e.url), [
    'https://mirror-a.example/v2',
    'http://mirror-b.example:5000/prefix/v2',
    'https://mirror-c.example/custom/v2',
    'https://registry-1.docker.io/v2',
  ]);
  assert.deepEqual(eps[0].capabilities, ['pull', 'resolve']);
  assert.deepEqual(eps[0].ca, ['/etc/berth/certs.d/docker.io/mirror-a.crt']);
  assert.equal(eps[1].skipVerify, true);
  assert.deepEqual(eps[1].header, { 'x-token': 'abc' });
  assert.deepEqual(eps[2].capabilities, ['pull', 'resolve', 'push']);
  assert.deepEqual(eps[3].capabilities, ['pull', 'resolve', 'push']);
  assert.ok(eps.every((e) => e.registry === 'docker.io'));
});

test('hosts.toml: top-level keys configure the server; plain http by scheme', () => {
  const eps = parseHostsToml('registry.example:5000', 'server = "http://registry.example:5000"\nskip_verify = true\nca = ["a.pem", "/abs/b.pem"]\n', '/d');
  assert.equal(eps.length, 1);
  assert.equal(eps[0].url, 'http://registry.example:5000/v2');
  assert.equal(eps[0].skipVerify, true);
  assert.deepEqual(eps[0].ca, ['/d/a.pem', '/abs/b.pem']);
  const local = parseHostsToml('localhost:5000', '[host."https://m.example"]\n');
  assert.equal(local[1].plainHttpFallback, true);
  assert.equal(local[0].plainHttpFallback, false);
});

test('hosts.toml: bad values name the file and the key', () => {
  const bad: [string, RegExp][] = [
    ['server = 1', /"server" must be a string/],
    ['[host."https://m"]\ncapabilities = ["fly"]', /unknown capability "fly"/],
    ['[host."https://m"]\nskip_verify = "yes"', /"skip_verify" must be a boolean/],
    ['[host."ftp://m"]', /must be http or https/],
    ['this is not toml', /\/x\/hosts\.toml/],
  ];
  for (const [text, re] of bad) {
    assert.throws(() => parseHostsToml('r.example', text, '/x'), (e: { kind?: string; message?: string }) => {
      assert.equal(e.kind, 'InvalidArgument');
      assert.match(e.message ?? '', re);
      return true;
    }, text);
  }
});

test('resolveHosts reads <dir>/<host>/hosts.toml, then _default, then defaults', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-hosts-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ctx = rootCtx();
  await mkdir(path.join(dir, 'r.example:5000'));
  await writeFile(path.join(dir, 'r.example:5000', 'hosts.toml'), 'server = "http://r.example:5000"\n');
  assert.equal((await resolveHosts(ctx, dir, 'r.example:5000'))[0].url, 'http://r.example:5000/v2');
  assert.equal((await resolveHosts(ctx, dir, 'other.example'))[0].url, 'https://other.example/v2');
  await mkdir(path.join(dir, '_default'));
  await writeFile(path.join(dir, '_default', 'hosts.toml'), '[host."https://all-mirror.example"]\ncapabilities = ["pull"]\n');
  const eps = await resolveHosts(ctx, dir, 'other.example');
  assert.deepEqual(eps.map((e) => e.url), ['https://all-mirror.example/v2', 'https://other.example/v2']);
  assert.equal((await resolveHosts(ctx, path.join(dir, 'missing'), 'x.example'))[0].url, 'https://x.example/v2');
});
