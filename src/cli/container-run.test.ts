import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDetachKeys } from './container-run.ts';

describe('parseDetachKeys', () => {
  it('reads ctrl- keys and single characters as docker does', () => {
    assert.equal(parseDetachKeys(undefined), undefined);
    assert.equal(parseDetachKeys(''), undefined);
    assert.deepEqual(parseDetachKeys('ctrl-p,ctrl-q'), [0x10, 0x11]);
    assert.deepEqual(parseDetachKeys('CTRL-A,Ctrl-z'), [1, 26]);
    assert.deepEqual(parseDetachKeys('ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_'), [0, 27, 28, 29, 30, 31]);
    assert.deepEqual(parseDetachKeys('a,b'), [0x61, 0x62]);
    assert.deepEqual(parseDetachKeys('ctrl-x,x'), [0x18, 0x78]);
  });

  it('refuses keys that are no control character', () => {
    for (const s of ['ctrl-1', 'ctrl-?', 'ctrl-', 'ctrl-pp', 'alt-p', 'a,', 'ab']) {
      assert.throws(() => parseDetachKeys(s), (err: Error & { exit?: number }) => err.exit === 125, s);
    }
  });
});
