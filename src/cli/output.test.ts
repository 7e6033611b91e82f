import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { binarySize, humanAge, humanSize } from './output.ts';

describe('docker-style units', () => {
  it('sizes images in decimal units with three significant digits', () => {
    assert.equal(humanSize(0), '0B');
    assert.equal(humanSize(999), '999B');
    assert.equal(humanSize(2_150_000), '2.15MB');
    assert.equal(humanSize(419_000_000), '419MB');
  });
  it('sizes memory in binary units with four significant digits', () => {
    assert.equal(binarySize(512), '512B');
    assert.equal(binarySize(344_064), '336KiB');
    assert.equal(binarySize(64 << 20), '64MiB');
    assert.equal(binarySize(2_097_152_000), '1.953GiB');
  });
  it('tells ages as docker does', () => {
    const now = Date.parse('2024-05-01T10:00:00Z');
    assert.equal(humanAge(now - 500, now), 'Less than a second ago');
    assert.equal(humanAge(now - 1000, now), '1 second ago');
    assert.equal(humanAge(now - 90_000, now), 'About a minute ago');
    assert.equal(humanAge(now - 3 * 3600_000, now), '3 hours ago');
  });
});
