import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEngine, type Engine } from '../helpers/engine.ts';
import { contextMaker } from '../helpers/build-context.ts';

/**
 * `berth build` where the image's file system or a concurrent command gets
 * in the way: WORKDIR's directory, COPY through a symlink of the image, and
 * an image prune while a build runs.
 */
describe('berth build: edges', { timeout: 600_000 }, () => {
  let e: Engine;
  let tmp: string;
  before(async () => {
    e = await startEngine();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-build-edges-'));
  });
  after(async () => {
    await e?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => e.d.cli(args);
  /** A fresh context directory with these files. */
  const context = contextMaker(() => tmp);
  const layers = async (ref: string) => {
    const r = await cli('image', 'inspect', ref);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as Array<{ RootFS: { Layers: string[] } }>)[0].RootFS.Layers.length;
  };
  /** `sh -c SCRIPT` in a container of `ref` whose working directory is `/`, so the runtime makes no directory of its own. */
  const inImage = (ref: string, script: string) => cli('run', '--rm', '--network', 'none', '-w', '/', ref, 'sh', '-c', script);

  it('WORKDIR makes a missing directory (0755, owned by the USER at that point) in a layer; an existing one changes only the config', async () => {
    const dir = context({
      Dockerfile: `FROM ${e.image}\nRUN echo "app:x:1234:1234::/home/app:/bin/sh" >> /etc/passwd && echo "app:x:1234:" >> /etc/group\nUSER app\nWORKDIR /srv/data/app\nUSER root\nWORKDIR /tmp\nWORKDIR relative\n`,
    });
    const r = await cli('build', '--progress=plain', '-t', 'workdir:1', dir);
    assert.equal(r.code, 0, r.stderr);
    const ls = await inImage('workdir:1', 'ls -ldn /srv/data/app /srv /tmp/relative');
    assert.equal(ls.code, 0, ls.stderr + ls.stdout);
    assert.match(ls.stdout, /^drwxr-xr-x\s+\d+ 1234\s+1234 .* \/srv\/data\/app$/m);
    assert.match(ls.stdout, /^drwxr-xr-x\s+\d+ 1234\s+1234 .* \/srv$/m, 'the parents it made are the user\'s too');
    assert.match(ls.stdout, /^drwxr-xr-x\s+\d+ 0\s+0 .* \/tmp\/relative$/m);
    // The base's layers, the RUN's, and one for each directory made (/tmp was there).
    assert.equal(await layers('workdir:1'), (await layers(e.image)) + 3);
    const again = await cli('build', '--progress=plain', '-t', 'workdir:2', dir);
    assert.equal(again.code, 0, again.stderr);
    assert.equal([...again.stderr.matchAll(/^#\d+ CACHED$/gm)].length, 4, again.stderr);
    assert.equal((await cli('ps', '-aq')).stdout, '', 'no build container is left');
  });

  it('COPY into a path that is a symlink to a directory in the image copies into that directory, the link stays', async () => {
    const dir = context({
      Dockerfile: `FROM ${e.image}\nRUN mkdir -p /real /etc/realconf && ln -s /real /link && ln -s realconf /etc/conf\nCOPY f.txt /link\nCOPY tree/ /\nCOPY d /link/sub/\n`,
      'f.txt': 'file\n',
      'tree/etc/conf/c.conf': 'conf\n',
      'd/in.txt': 'in\n',
    });
    const r = await cli('build', '--progress=plain', '-t', 'links:1', dir);
    assert.equal(r.code, 0, r.stderr);
    const check = await inImage('links:1', 'test -L /link && test -L /etc/conf && cat /real/f.txt /etc/realconf/c.conf /real/sub/in.txt');
    assert.equal(check.code, 0, check.stderr + check.stdout);
    assert.equal(check.stdout, 'file\nconf\nin\n');
  });

  it('system df counts the build cache (its steps and cache mounts); builder prune empties it', async () => {
    const dir = context({ Dockerfile: `FROM ${e.image}\nRUN --mount=type=cache,target=/cache echo kept > /cache/k && echo layer > /l\nCOPY f.txt /f\n`, 'f.txt': 'f\n' });
    const r = await cli('build', '--progress=plain', '-q', dir);
    assert.equal(r.code, 0, r.stderr);
    const row = async () => {
      const df = await cli('system', 'df', '--format', 'json');
      assert.equal(df.code, 0, df.stderr);
      return df.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>).find((x) => x.Type === 'Build Cache')!;
    };
    const before = await row();
    assert.ok(Number(before.TotalCount) >= 3, JSON.stringify(before));
    assert.notEqual(before.Size, '0B');
    const verbose = await cli('system', 'df', '-v');
    assert.match(verbose.stdout, /^Build cache usage: /m);
    assert.match(verbose.stdout, /exec\.cachemount/);
    assert.match(verbose.stdout, /regular/);
    assert.equal((await cli('builder', 'prune', '-f')).code, 0);
    const after = await row();
    assert.equal(after.TotalCount, '0');
    assert.equal(after.Size, '0B');
  });

  it('an image prune while a build runs leaves its intermediate images alone', async () => {
    const steps = Array.from({ length: 8 }, (_, i) => (i % 2 ? `COPY f.txt /f${i}` : `RUN echo ${i} > /r${i}`)).join('\n');
    const dir = context({ Dockerfile: `FROM ${e.image}\n${steps}\nLABEL done=yes\n`, 'f.txt': 'f\n' });
    let building = true;
    let prunes = 0;
    const pruning = (async () => {
      while (building) {
        const p = await cli('image', 'prune', '-f');
        assert.equal(p.code, 0, p.stderr);
        prunes++;
      }
    })();
    try {
      for (let i = 0; i < 2; i++) {
        const r = await cli('build', '--progress=plain', '--no-cache', '-t', `pruned:${i}`, dir);
        assert.equal(r.code, 0, r.stderr);
        const check = await inImage(`pruned:${i}`, 'cat /r0 /r6 /f7');
        assert.equal(check.stdout, '0\n6\nf\n', check.stderr);
      }
    } finally {
      building = false;
      await pruning;
    }
    assert.ok(prunes > 0);
  });
});
