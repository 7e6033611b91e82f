import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { kindOf } from '../core/errors.ts';
import { MetadataDb } from './db.ts';

/** A temp dir with a metadata database in it; `cleanup` closes and removes everything. */
export async function tempDb(): Promise<{ dir: string; file: string; db: MetadataDb; cleanup(): Promise<void> }> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-meta-'));
  const file = path.join(dir, 'meta.db');
  const db = new MetadataDb(file);
  return {
    dir,
    file,
    db,
    async cleanup() {
      try {
        db.close();
      } catch {
        // already closed by the test
      }
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

export async function rejectsKind(p: Promise<unknown> | (() => unknown), kind: string): Promise<void> {
  await assert.rejects(async () => (typeof p === 'function' ? p() : p), (err) => {
    assert.equal(kindOf(err), kind, `expected ${kind}, got ${kindOf(err)}: ${(err as Error).message}`);
    return true;
  });
}
