import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  familiar, formatReference, hostnameOf, parseAnyReference, parseNormalized, parseReference, parseTagTarget,
  withDigest, withTag,
} from './reference.ts';

const D = `sha256:${'a'.repeat(64)}` as const;

test('normalizes like docker', () => {
  const cases: [string, string][] = [
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['docker.io/library/busybox:latest', 'docker.io/library/busybox:latest'],
    ['user/app', 'docker.io/user/app:latest'],
    ['user/app/sub', 'docker.io/user/app/sub:latest'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`],
    [`busybox:1@${D}`, `docker.io/library/busybox:1@${D}`],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/app:v1', 'localhost:5000/app:v1'],
    ['127.0.0.1:5000/a/b:c', '127.0.0.1:5000/a/b:c'],
    ['example.com/a', 'example.com/a:latest'],
    ['example.com:443/a-b_c.d__e/f---g:T_a.g-1', 'example.com:443/a-b_c.d__e/f---g:T_a.g-1'],
    ['[::1]:5000/name', '[::1]:5000/name:latest'],
    ['[fe80::1]/name:t', '[fe80::1]/name:t'],
    ['localhost', 'docker.io/library/localhost:latest'],
    ['localhost:5000', 'docker.io/library/localhost:5000'],
    ['foo.com:8080/bar', 'foo.com:8080/bar:latest'],
    ['127.0.0.1/a', '127.0.0.1/a:latest'],
    ['a.b/c/d/e:1.0-rc_1', 'a.b/c/d/e:1.0-rc_1'],
    ['xn--bcher-kva.example/app', 'xn--bcher-kva.example/app:latest'],
    ['sub-domain.example.com/x__y', 'sub-domain.example.com/x__y:latest'],
    ['Registry.Example/app', 'Registry.Example/app:latest'],
    ['a'.repeat(10) + ':' + 'b'.repeat(128), 'docker.io/library/' + 'a'.repeat(10) + ':' + 'b'.repeat(128)],
  ];
  for (const [input, want] of cases) assert.equal(formatReference(parseNormalized(input)), want, input);
});

test('keeps the parts apart', () => {
  const r = parseReference(`[::1]:5000/ns/app:v2@${D}`);
  assert.deepEqual(r, { domain: '[::1]:5000', path: 'ns/app', tag: 'v2', digest: D });
  assert.deepEqual(parseReference('busybox'), { domain: 'docker.io', path: 'library/busybox' });
  assert.equal(hostnameOf('[::1]:5000'), '::1');
  assert.equal(hostnameOf('localhost:5000'), 'localhost');
  assert.equal(hostnameOf('docker.io'), 'docker.io');
});

test('rejects bad references with a message naming the problem', () => {
  const cases: [string, RegExp][] = [
    ['', /at least one component/],
    ['Busybox', /^invalid reference format: repository name must be lowercase$/],
    ['docker.io/Library/busybox', /must be lowercase/],
    ['localhost:5000/App', /must be lowercase/],
    ['a'.repeat(64), /cannot specify 64-byte hexadecimal strings/],
    ['busybox:', /invalid tag/],
    ['busybox:-bad', /invalid tag/],
    ['busybox:' + 'x'.repeat(129), /invalid tag/],
    ['busybox@sha256:abc', /invalid/],
    ['busybox@sha256:' + 'A'.repeat(64), /invalid/],
    ['busybox@md5:' + 'a'.repeat(32), /unsupported digest algorithm/],
    ['bad_/x', /invalid reference format/],
    ['a//b', /at least one component/],
    ['-x', /invalid reference format/],
    ['x-', /invalid reference format/],
    ['host:port/x', /invalid registry host/],
    ['a b', /invalid reference format/],
    ['example.com/' + 'a'.repeat(250), /more than 255 characters/],
    [':tag', /at least one component/],
    ['@' + D, /at least one component/],
    ['x___y', /invalid reference format/],
    ['x..y', /invalid reference format/],
    ['.x', /invalid reference format/],
    ['x/', /at least one component/],
    ['-host.example/x', /invalid registry host/],
    ['[::1/x', /invalid/],
    ['busybox:tag:other', /invalid/],
  ];
  for (const [input, msg] of cases) {
    assert.throws(() => parseReference(input), (e: { kind?: string; message?: string }) => {
      assert.equal(e.kind, 'InvalidArgument', input);
      assert.match(e.message ?? '', msg, input);
      return true;
    });
  }
});

test('familiar form for display', () => {
  assert.equal(familiar('docker.io/library/busybox:latest'), 'busybox:latest');
  assert.equal(familiar('busybox'), 'busybox');
  assert.equal(familiar(parseNormalized('user/app')), 'user/app:latest');
  assert.equal(familiar('docker.io/library/a/b:1'), 'library/a/b:1');
  assert.equal(familiar('localhost:5000/app:1'), 'localhost:5000/app:1');
  assert.equal(familiar(`busybox@${D}`), `busybox@${D}`);
});

test('tag helpers', () => {
  const src = parseNormalized(`busybox:1@${D}`);
  assert.equal(formatReference(withTag(src, 'new')), 'docker.io/library/busybox:new');
  assert.throws(() => withTag(src, 'bad tag'), { kind: 'InvalidArgument' });
  assert.equal(formatReference(withDigest(src, D)), `docker.io/library/busybox@${D}`);
  assert.equal(formatReference(parseTagTarget('myimg')), 'docker.io/library/myimg:latest');
  assert.throws(() => parseTagTarget(`myimg@${D}`), { kind: 'InvalidArgument' });
  assert.deepEqual(parseAnyReference('a'.repeat(64)), { id: D });
  assert.deepEqual(parseAnyReference(D), { id: D });
  assert.deepEqual(parseAnyReference('busybox'), { ref: { domain: 'docker.io', path: 'library/busybox' } });
});
