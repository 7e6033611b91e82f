import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isInvalidArgument } from '../core/errors.ts';
import { parseFlags } from './flags.ts';

const specs = {
  all: { type: 'bool', short: 'a' },
  quiet: { type: 'bool', short: 'q' },
  env: { type: 'list', short: 'e' },
  name: { type: 'string' },
  time: { type: 'number', short: 't' },
} as const;

describe('parseFlags', () => {
  it('bundles short booleans and takes values in both forms', () => {
    const p = parseFlags(['-aq', '-e', 'A=1', '--env=B=2', '-eC=3', '--name', 'x', '-t10', 'img'], specs);
    assert.equal(p.flags.all, true);
    assert.equal(p.flags.quiet, true);
    assert.deepEqual(p.flags.env, ['A=1', 'B=2', 'C=3']);
    assert.equal(p.flags.name, 'x');
    assert.equal(p.flags.time, 10);
    assert.deepEqual(p.args, ['img']);
  });
  it('stops at the first positional when asked', () => {
    const p = parseFlags(['-a', 'img', 'sh', '-c', 'echo'], specs, { stopAtPositional: true });
    assert.deepEqual(p.args, ['img', 'sh', '-c', 'echo']);
  });
  it('names an unknown flag and a missing value', () => {
    assert.throws(() => parseFlags(['--bogus'], specs), (e) => isInvalidArgument(e) && /--bogus/.test((e as Error).message));
    assert.throws(() => parseFlags(['--name'], specs), (e) => isInvalidArgument(e) && /--name/.test((e as Error).message));
    assert.throws(() => parseFlags(['-t', 'x'], specs), (e) => isInvalidArgument(e));
  });
});
