import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IgnoreMatcher, parseIgnoreFile } from './dockerignore.ts';

test('patterns, directories, exceptions, last match wins', () => {
  const m = new IgnoreMatcher(parseIgnoreFile('# comment\n*.log\n!keep.log\n/build\nsecret/**\n**/*.tmp\ndocs/*.md\n!docs/README.md\n\n'));
  assert.equal(m.ignored('a.log'), true);
  assert.equal(m.ignored('keep.log'), false);
  assert.equal(m.ignored('sub/a.log'), false, '* does not cross directories');
  assert.equal(m.ignored('build'), true);
  assert.equal(m.ignored('build/out/x.o'), true, 'a matched directory takes its contents');
  assert.equal(m.ignored('secret/a/b'), true);
  assert.equal(m.ignored('x.tmp'), true);
  assert.equal(m.ignored('a/b/c.tmp'), true);
  assert.equal(m.ignored('docs/guide.md'), true);
  assert.equal(m.ignored('docs/README.md'), false);
  assert.equal(m.ignored('src/main.c'), false);
  assert.equal(m.ignored('./a.log'), true);
});

test('exceptions inside an excluded directory, character classes and escapes', () => {
  const m = new IgnoreMatcher(['node_modules', '!node_modules/keep', 'f[0-9].txt', 'lit\\*']);
  assert.equal(m.ignored('node_modules/x'), true);
  assert.equal(m.ignored('node_modules/keep/a'), false);
  assert.equal(m.mayHoldException('node_modules'), true);
  assert.equal(m.mayHoldException('other'), false);
  assert.equal(m.ignored('f1.txt'), true);
  assert.equal(m.ignored('fa.txt'), false);
  assert.equal(m.ignored('lit*'), true);
  assert.equal(m.ignored('litx'), false);
  assert.equal(new IgnoreMatcher([]).empty, true);
});
