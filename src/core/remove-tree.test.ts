import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { isSmallTree, onTmpfs, removeTree } from './remove-tree.ts';

test('removeTree removes small and large trees, and a missing one is fine', async () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'remove-tree-'));
  try {
    const small = path.join(tmp, 'small');
    mkdirSync(path.join(small, 'a', 'b'), { recursive: true });
    writeFileSync(path.join(small, 'a', 'b', 'f'), 'x');
    assert.equal(isSmallTree(small, 256), true);
    await removeTree(small);
    assert.equal(existsSync(small), false);

    const large = path.join(tmp, 'large');
    mkdirSync(large);
    for (let i = 0; i < 20; i++) writeFileSync(path.join(large, `f${i}`), 'xxxx');
    assert.equal(isSmallTree(large, 10), false);
    assert.equal(isSmallTree(large, 100, 40), false);
    assert.equal(isSmallTree(large, 100, 80), true);
    await removeTree(large, { maxEntries: 10 });
    assert.equal(existsSync(large), false);

    assert.equal(isSmallTree(path.join(tmp, 'missing'), 10), true);
    await removeTree(path.join(tmp, 'missing'));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('onTmpfs tells a tmpfs from other file systems', () => {
  assert.equal(onTmpfs('/dev/shm'), true);
  assert.equal(onTmpfs('/proc'), false);
  assert.equal(onTmpfs('/no/such/dir'), false);
});
