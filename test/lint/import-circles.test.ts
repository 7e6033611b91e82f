import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';

const REPO = path.resolve(import.meta.dirname, '..', '..');
// A computed specifier: the config is plain JavaScript, typed only by its JSDoc.
const CONFIG = pathToFileURL(path.join(REPO, 'eslint.config.js')).href;
const { importCircles, layering } = await import(CONFIG);

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'import-circles-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, 'src', name)), { recursive: true });
    writeFileSync(path.join(root, 'src', name), text);
  }
  return root;
}

async function lint(root: string): Promise<{ file: string; line: number; message: string }[]> {
  const src = path.join(root, 'src');
  const eslint = new ESLint({
    cwd: root,
    overrideConfigFile: true,
    overrideConfig: [{
      files: ['**/*.ts'],
      languageOptions: { parser: tseslint.parser as any },
      plugins: { berth: layering },
      rules: { 'berth/no-import-cycle': ['error', { root: src }] },
    }],
  });
  const out = [];
  for (const r of await eslint.lintFiles(['src'])) {
    for (const m of r.messages) out.push({ file: path.relative(src, r.filePath), line: m.line, message: m.message });
  }
  return out.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
}

// Every kind of import closes a circle: type-only, re-exports, dynamic, across folders.
const CIRCLES = {
  'a.ts': "import type { B } from './b.ts';\nexport type A = { b?: B };\n",
  'b.ts': "import type { A } from './a.ts';\nexport interface B { a?: A }\n",
  'c.ts': "import type { A } from './a.ts';\nexport type C = A;\n",
  'd/d.ts': "export * from '../e.ts';\n",
  'e.ts': "export const load = () => import('./f/f.ts');\n",
  'f/f.ts': "import '../d/d.ts';\n",
  'g.ts': "import type { C } from './c.ts';\nexport type G = C;\n",
};

test('importCircles finds each circle, whatever kind of import closes it, and nothing else', () => {
  const root = tree(CIRCLES);
  try {
    const src = path.join(root, 'src');
    const found = importCircles(src).map((files: string[]) => files.map((f) => path.relative(src, f)));
    assert.deepEqual(found.sort(), [['a.ts', 'b.ts'], ['d/d.ts', 'e.ts', 'f/f.ts']]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('berth/no-import-cycle reports each import on a circle with its files, and passes once the shared type moves below', async () => {
  const before = tree(CIRCLES);
  // The fix the rule asks for: what a and b share lives below both.
  const after = tree({
    ...CIRCLES,
    'types.ts': 'export interface B { a?: unknown }\n',
    'a.ts': "import type { B } from './types.ts';\nexport type A = { b?: B };\n",
    'b.ts': "import type { A } from './a.ts';\nexport type { A };\n",
    'f/f.ts': 'export const f = 1;\n',
  });
  try {
    const reports = await lint(before);
    assert.deepEqual(reports.map((r) => `${r.file}:${r.line}`), ['a.ts:1', 'b.ts:1', 'd/d.ts:1', 'e.ts:1', 'f/f.ts:1']);
    assert.match(reports[0].message, /^import circle: src\/a\.ts -> src\/b\.ts -> src\/a\.ts; /);
    assert.match(reports[2].message, /^import circle: src\/d\/d\.ts -> src\/e\.ts -> src\/f\/f\.ts -> src\/d\/d\.ts; /);
    assert.deepEqual(await lint(after), []);
  } finally {
    rmSync(before, { recursive: true, force: true });
    rmSync(after, { recursive: true, force: true });
  }
});

test('src/ has no import circle', () => {
  assert.deepEqual(importCircles(path.join(REPO, 'src')), []);
});
