import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rootCtx } from '../../core/context.ts';
import { kindOf } from '../../core/errors.ts';
import { MetadataDb } from '../../metadata/db.ts';
import { VolumeService, matchLabel } from './volumes.ts';

describe('VolumeService', () => {
  let tmp: string;
  let db: MetadataDb;
  let volumes: VolumeService;
  const users = new Map<string, string[]>();
  const ctx = rootCtx();
  const other = rootCtx({ namespace: 'other' });
  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'berth-volumes-'));
    db = new MetadataDb(path.join(tmp, 'meta.db'));
    volumes = new VolumeService(db, path.join(tmp, 'volumes'));
    volumes.usedBy = (_ns, name) => users.get(name) ?? [];
  });
  after(async () => {
    db.sql.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it('creates a named volume with a data directory, and returns it again on a second create', async () => {
    const v = await volumes.create(ctx, { name: 'data', labels: { app: 'web' }, options: { o: 'x' } });
    assert.equal(v.name, 'data');
    assert.equal(v.driver, 'local');
    assert.equal(v.anonymous, false);
    assert.deepEqual(v.labels, { app: 'web' });
    assert.deepEqual(v.options, { o: 'x' });
    assert.equal(v.mountpoint, path.join(tmp, 'volumes', 'default', 'data', '_data'));
    assert.ok((await stat(v.mountpoint)).isDirectory());
    await writeFile(path.join(v.mountpoint, 'f'), 'keep');
    const again = await volumes.create(ctx, { name: 'data', labels: { other: '1' } });
    assert.deepEqual(again, v);
    assert.deepEqual(await volumes.inspect(ctx, 'data'), v);
  });

  it('creates an anonymous volume with a generated name', async () => {
    const v = await volumes.create(ctx);
    assert.match(v.name, /^[0-9a-f]{64}$/);
    assert.equal(v.anonymous, true);
    await volumes.remove(ctx, v.name);
  });

  it('refuses invalid names and other drivers', async () => {
    for (const name of ['-x', '.x', 'a/b', 'a b', '../up', 'ü']) {
      await assert.rejects(volumes.create(ctx, { name }), (err) => kindOf(err) === 'InvalidArgument', name);
    }
    await assert.rejects(volumes.create(ctx, { name: 'nfs', driver: 'nfs' }), (err) => kindOf(err) === 'InvalidArgument');
    assert.equal((await volumes.create(ctx, { name: 'x.y_z-1', driver: 'local' })).name, 'x.y_z-1');
    await volumes.remove(ctx, 'x.y_z-1');
  });

  it('keeps namespaces apart', async () => {
    await volumes.create(other, { name: 'data' });
    assert.notEqual((await volumes.inspect(other, 'data')).mountpoint, (await volumes.inspect(ctx, 'data')).mountpoint);
    assert.deepEqual(
      (await volumes.list(other)).map((v) => v.name),
      ['data'],
    );
    await volumes.remove(other, 'data');
    assert.equal((await volumes.inspect(ctx, 'data')).name, 'data');
  });

  it('reports unknown volumes as NotFound, except to a forced remove', async () => {
    await assert.rejects(volumes.inspect(ctx, 'nope'), (err) => kindOf(err) === 'NotFound');
    await assert.rejects(volumes.remove(ctx, 'nope'), (err) => kindOf(err) === 'NotFound');
    await volumes.remove(ctx, 'nope', { force: true });
  });

  it('refuses to remove a volume in use, even forced', async () => {
    users.set('data', ['c1']);
    await assert.rejects(volumes.remove(ctx, 'data'), (err) => kindOf(err) === 'Conflict');
    await assert.rejects(volumes.remove(ctx, 'data', { force: true }), (err) => kindOf(err) === 'Conflict');
    users.delete('data');
    const mp = (await volumes.inspect(ctx, 'data')).mountpoint;
    await volumes.remove(ctx, 'data');
    await assert.rejects(stat(path.dirname(mp)), { code: 'ENOENT' });
    assert.deepEqual(await volumes.list(ctx), []);
  });

  it('prunes unused anonymous volumes, or all unused ones, by label', async () => {
    const anon1 = await volumes.create(ctx, { labels: { tier: 'a' } });
    const anon2 = await volumes.create(ctx);
    const anonUsed = await volumes.create(ctx);
    await volumes.create(ctx, { name: 'named', labels: { tier: 'a' } });
    await volumes.create(ctx, { name: 'named-used' });
    users.set(anonUsed.name, ['c2']);
    users.set('named-used', ['c3']);

    assert.deepEqual((await volumes.prune(ctx, { label: ['tier=a'] })).removed, [anon1.name]);
    assert.deepEqual((await volumes.prune(ctx)).removed, [anon2.name]);
    assert.deepEqual((await volumes.prune(ctx, { all: true, label: ['tier'] })).removed, ['named']);
    assert.deepEqual((await volumes.prune(ctx, { all: true })).removed, []);
    assert.deepEqual((await volumes.list(ctx)).map((v) => v.name).sort(), [anonUsed.name, 'named-used'].sort());
  });

  it('matches labels as docker filters do', () => {
    assert.equal(matchLabel({ a: '1' }, 'a'), true);
    assert.equal(matchLabel({ a: '1' }, 'a=1'), true);
    assert.equal(matchLabel({ a: '1' }, 'a=2'), false);
    assert.equal(matchLabel({ a: '1=2' }, 'a=1=2'), true);
    assert.equal(matchLabel({}, 'a'), false);
  });
});
