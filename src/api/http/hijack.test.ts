import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detachKeysOf, EscapeMatcher, parseDetachKeys } from './hijack.ts';

test("docker's detach key specs as bytes", () => {
  assert.deepEqual([...parseDetachKeys('ctrl-p,ctrl-q')], [16, 17]);
  assert.deepEqual([...parseDetachKeys('a,ctrl-b,ctrl-@,ctrl-[')], [97, 2, 0, 27]);
  assert.deepEqual([...detachKeysOf(null)], [16, 17]);
  for (const bad of ['ctrl-1', 'ab', 'ctrl-', '']) assert.throws(() => parseDetachKeys(bad), (err: { kind?: string }) => err.kind === 'InvalidArgument', bad);
});

test('the escape sequence is found across chunks; a broken match is passed on', () => {
  const m = new EscapeMatcher(Buffer.from([16, 17]));
  assert.deepEqual(m.feed(Buffer.from('ab\x10')), { pass: Buffer.from('ab'), detached: false });
  assert.deepEqual(m.feed(Buffer.from('c')), { pass: Buffer.from('\x10c'), detached: false });
  assert.deepEqual(m.feed(Buffer.from('\x10\x10')), { pass: Buffer.from('\x10'), detached: false });
  assert.deepEqual(m.feed(Buffer.from('\x11rest')), { pass: Buffer.alloc(0), detached: true });
  const one = new EscapeMatcher(Buffer.from('x'));
  assert.deepEqual(one.feed(Buffer.from('abxc')), { pass: Buffer.from('ab'), detached: true });
});
