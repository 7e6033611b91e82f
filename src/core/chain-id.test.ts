import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chainId, chainIds } from './chain-id.ts';
import type { Digest } from './digest.ts';

const d = (s: string): Digest => `sha256:${createHash('sha256').update(s).digest('hex')}`;

test('chain id of one layer is its diff id', () => {
  assert.deepEqual(chainIds([d('a')]), [d('a')]);
});

test('chain ids follow the OCI image spec formula', () => {
  const [a, b, c] = [d('a'), d('b'), d('c')];
  const ab = `sha256:${createHash('sha256').update(`${a} ${b}`).digest('hex')}`;
  const abc = `sha256:${createHash('sha256').update(`${ab} ${c}`).digest('hex')}`;
  assert.deepEqual(chainIds([a, b, c]), [a, ab, abc]);
  assert.equal(chainId([a, b, c]), abc);
  assert.equal(chainId([]), undefined);
});

test('known vector computed with sha256sum', () => {
  // Vector computed independently with `printf '%s %s' A B | sha256sum`.
  const a = 'sha256:0000000000000000000000000000000000000000000000000000000000000000' as Digest;
  const b = 'sha256:1111111111111111111111111111111111111111111111111111111111111111' as Digest;
  assert.equal(chainIds([a, b])[1], 'sha256:f94b891e05f6e37c90d87edfd5bb98a02d618a437c35f3a94b3b00e48e894631');
});
