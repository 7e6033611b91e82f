import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isInvalidArgument } from '../core/errors.ts';
import { familiarName, isDanglingName, looksLikeIdPrefix, normalizeName, parseName } from './names.ts';

describe('image names', () => {
  it('normalizes as docker does and prints the familiar form', () => {
    assert.equal(normalizeName('busybox'), 'docker.io/library/busybox:latest');
    assert.equal(normalizeName('127.0.0.1:5000/a/b:1'), '127.0.0.1:5000/a/b:1');
    assert.equal(familiarName('docker.io/library/busybox:latest'), 'busybox:latest');
    assert.equal(familiarName('docker.io/user/app:1'), 'user/app:1');
    assert.equal(parseName('localhost:5000/x@sha256:' + 'a'.repeat(64)).path, 'x');
  });
  it('tells IDs from names', () => {
    assert.ok(isDanglingName('sha256:' + 'b'.repeat(64)));
    assert.ok(!isDanglingName('docker.io/library/busybox:latest'));
    assert.ok(looksLikeIdPrefix('abc123'));
    assert.ok(!looksLikeIdPrefix('busybox'));
  });
  it('refuses malformed references', () => {
    assert.throws(() => normalizeName('Upper/Case'), isInvalidArgument);
    assert.throws(() => normalizeName('a:b:c'), isInvalidArgument);
  });
});
