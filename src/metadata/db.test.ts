import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootCtx } from '../core/context.ts';
import { DatabaseSync } from 'node:sqlite';
import { MetadataDb, Statements } from './db.ts';
import { MetadataImageStore } from './images.ts';
import { MetadataContainerStore } from './containers.ts';
import { MetadataLeaseManager } from './leases.ts';
import { listNamespaces } from './namespaces.ts';
import { rejectsKind, tempDb } from './test-helpers.ts';

test('migrations run once and are idempotent on reopen', async () => {
  const t = await tempDb();
  try {
    const m = [`CREATE TABLE a (x INTEGER)`, `ALTER TABLE a ADD COLUMN y TEXT`];
    t.db.migrate('comp', m);
    t.db.sql.prepare(`INSERT INTO a (x, y) VALUES (1, 'one')`).run();
    t.db.close();
    const db2 = new MetadataDb(t.file);
    db2.migrate('comp', m);
    db2.migrate('comp', [...m, `ALTER TABLE a ADD COLUMN z TEXT`]);
    assert.deepEqual({ ...db2.sql.prepare(`SELECT x, y, z FROM a`).get() }, { x: 1, y: 'one', z: null });
    // An older berth refuses a schema newer than it knows.
    assert.throws(() => db2.migrate('comp', m), (err: Error & { kind?: string }) => err.kind === 'FailedPrecondition');
    db2.close();
  } finally {
    await t.cleanup();
  }
});

test('a failing migration leaves nothing applied', async () => {
  const t = await tempDb();
  try {
    assert.throws(() => t.db.migrate('bad', [`CREATE TABLE b (x INTEGER); INSERT INTO nope VALUES (1)`]));
    assert.equal(t.db.sql.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'b'`).get(), undefined);
    assert.equal(t.db.sql.prepare(`SELECT 1 FROM schema_versions WHERE component = 'bad'`).get(), undefined);
  } finally {
    await t.cleanup();
  }
});

test('transaction rolls back on throw and nested calls join the outer one', async () => {
  const t = await tempDb();
  try {
    t.db.migrate('c', [`CREATE TABLE c (x INTEGER)`]);
    assert.throws(() =>
      t.db.transaction(() => {
        t.db.sql.prepare(`INSERT INTO c VALUES (1)`).run();
        t.db.transaction(() => t.db.sql.prepare(`INSERT INTO c VALUES (2)`).run());
        throw new Error('boom');
      }),
    );
    assert.equal((t.db.sql.prepare(`SELECT count(*) AS n FROM c`).get() as { n: number }).n, 0);
  } finally {
    await t.cleanup();
  }
});

test('all stores reopen on an existing database, keeping their records', async () => {
  const t = await tempDb();
  try {
    const ctx = rootCtx();
    await new MetadataImageStore(t.db).create(ctx, { name: 'r/a:1', target: { mediaType: 'm', digest: `sha256:${'a'.repeat(64)}`, size: 1 } });
    new MetadataContainerStore(t.db);
    new MetadataLeaseManager(t.db);
    t.db.close();
    const db2 = new MetadataDb(t.file);
    const images = new MetadataImageStore(db2);
    new MetadataContainerStore(db2);
    new MetadataLeaseManager(db2);
    assert.equal((await images.get(ctx, 'r/a:1')).target.size, 1);
    db2.close();
  } finally {
    await t.cleanup();
  }
});

test('namespaces lists those with any record, and bad namespaces are refused', async () => {
  const t = await tempDb();
  try {
    const images = new MetadataImageStore(t.db);
    const leases = new MetadataLeaseManager(t.db);
    new MetadataContainerStore(t.db);
    assert.deepEqual(await listNamespaces(rootCtx(), t.db), []);
    await images.create(rootCtx({ namespace: 'k8s.io' }), { name: 'x', target: { mediaType: 'm', digest: `sha256:${'b'.repeat(64)}`, size: 2 } });
    await leases.create(rootCtx({ namespace: 'alpha' }));
    assert.deepEqual(await listNamespaces(rootCtx(), t.db), ['alpha', 'k8s.io']);
    await rejectsKind(images.list(rootCtx({ namespace: '../x' })), 'InvalidArgument');
  } finally {
    await t.cleanup();
  }
});

test('statements are kept prepared, capped, and hold no read snapshot between calls', async () => {
  const t = await tempDb();
  try {
    t.db.migrate('k', [`CREATE TABLE k (x INTEGER)`]);
    const insert = t.db.sql.prepare(`INSERT INTO k VALUES (?)`);
    assert.equal(t.db.sql.prepare(`INSERT INTO k VALUES (?)`), insert, 'the same SQL gives the kept statement');
    for (let i = 0; i < 3; i++) insert.run(i);
    assert.deepEqual({ ...t.db.sql.prepare(`SELECT x FROM k WHERE x = ?`).get(1) }, { x: 1 });

    // A kept statement that read a row must not pin the WAL: another connection's checkpoint completes.
    const other = new DatabaseSync(t.file);
    try {
      other.exec(`INSERT INTO k VALUES (9)`);
      assert.equal((other.prepare(`PRAGMA wal_checkpoint(TRUNCATE)`).get() as { busy: number }).busy, 0);
    } finally {
      other.close();
    }
    assert.equal((t.db.sql.prepare(`SELECT count(*) AS n FROM k`).get() as { n: number }).n, 4, 'the kept connection sees the other\'s row');

    // SQL built from variable parts never grows the set past its cap, and an evicted statement is prepared again.
    for (let i = 0; i < Statements.CAP + 10; i++) t.db.sql.prepare(`SELECT x FROM k WHERE x IN (${i})`).all();
    assert.equal(t.db.sql.keptCount, Statements.CAP);
    assert.notEqual(t.db.sql.prepare(`INSERT INTO k VALUES (?)`), insert, 'the oldest statement was let go');
  } finally {
    await t.cleanup();
  }
});
