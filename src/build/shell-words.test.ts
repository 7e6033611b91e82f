import assert from 'node:assert/strict';
import { test } from 'node:test';
import { processWord, processWords, splitWords, WordError } from './shell-words.ts';

const vars: Record<string, string> = { A: 'a', EMPTY: '', PATHV: '/usr/local/bin/tool.tar.gz', SP: 'x y' };
const look = (n: string) => vars[n];
const w = (s: string, esc = '\\') => processWord(s, look, esc);

test('plain, braced and missing variables', () => {
  assert.equal(w('$A'), 'a');
  assert.equal(w('${A}b'), 'ab');
  assert.equal(w('$Ab'), '');
  assert.equal(w('$MISSING-x'), '-x');
  assert.equal(w('cost $'), 'cost $');
  assert.equal(w('$1'), '$1');
});

test('default and alternative values, with and without a colon', () => {
  assert.equal(w('${MISSING:-def}'), 'def');
  assert.equal(w('${EMPTY:-def}'), 'def');
  assert.equal(w('${EMPTY-def}'), '');
  assert.equal(w('${MISSING-def}'), 'def');
  assert.equal(w('${A:-def}'), 'a');
  assert.equal(w('${A:+alt}'), 'alt');
  assert.equal(w('${EMPTY:+alt}'), '');
  assert.equal(w('${EMPTY+alt}'), 'alt');
  assert.equal(w('${MISSING:+alt}'), '');
  assert.equal(w('${MISSING:-$A/x}'), 'a/x');
  assert.equal(w('${MISSING:-${A:+nested}}'), 'nested');
});

test('required values and pattern removal', () => {
  assert.throws(() => w('${MISSING:?must be set}'), (e: Error) => e instanceof WordError && /MISSING: must be set/.test(e.message));
  assert.equal(w('${A:?x}'), 'a');
  assert.equal(w('${PATHV#*/}'), 'usr/local/bin/tool.tar.gz');
  assert.equal(w('${PATHV##*/}'), 'tool.tar.gz');
  assert.equal(w('${PATHV%.*}'), '/usr/local/bin/tool.tar');
  assert.equal(w('${PATHV%%.*}'), '/usr/local/bin/tool');
});

test('quotes and escapes', () => {
  assert.equal(w("'$A'"), '$A');
  assert.equal(w('"$A b"'), 'a b');
  assert.equal(w('\\$A'), '$A');
  assert.equal(w('"\\$A"'), '$A');
  assert.equal(w('"a\\nb"'), 'a\\nb');
  assert.equal(w('"say \\"hi\\""'), 'say "hi"');
  assert.equal(w('a\\ b'), 'a b');
  assert.equal(w('`$A', '`'), '$A');
  assert.equal(w('C:\\dir', '`'), 'C:\\dir');
});

test('splitting keeps quotes for later and expansion does not re-split', () => {
  assert.deepEqual(splitWords('a "b c" d\\ e  \'f g\'', '\\'), ['a', '"b c"', 'd\\ e', "'f g'"]);
  assert.deepEqual(processWords('$SP "$SP" z', look, '\\'), ['x y', 'x y', 'z']);
  assert.throws(() => splitWords('"open', '\\'), WordError);
});

test('malformed substitutions are errors', () => {
  assert.throws(() => w('${'), WordError);
  assert.throws(() => w('${A'), WordError);
  assert.throws(() => w('${A:x}'), WordError);
  assert.throws(() => w('${}'), WordError);
  assert.throws(() => w("'open"), WordError);
});

test('the names a word looks up are recorded, set or not', () => {
  const used = new Set<string>();
  processWords('$A ${B:-x} "$C" \'$D\'', look, '\\', used);
  assert.deepEqual([...used].sort(), ['A', 'B', 'C']);
});

test('heredoc content: variables expanded, quotes kept', async () => {
  const { processHeredoc } = await import('./shell-words.ts');
  assert.equal(processHeredoc('echo "$A" \'${MISSING:-d}\' \\$A\n', look, '\\'), 'echo "a" \'d\' $A\n');
});
