import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDaemon } from '../helpers/daemon.ts';
import { startEngine, type Engine } from '../helpers/engine.ts';
import { contextMaker } from '../helpers/build-context.ts';

/**
 * A context directory read in place: the native client's `berth build DIR`
 * is hosted by berthd, which reads DIR where it is instead of a tar. Its
 * file hashes are kept between builds, so what is checked here is that the
 * cache still follows content: an unchanged file is a hit, a changed one a
 * miss even with its size and mtime put back, and .dockerignore holds on
 * every read (COPY, and a RUN's bind mount of the context).
 */
describe('berth build: a context read in place', { timeout: 600_000 }, () => {
  let e: Engine;
  let tmp: string;
  before(async () => {
    e = await startEngine();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-build-context-'));
  });
  after(async () => {
    await e?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => e.d.cli(args);
  /** A fresh context directory with these files. */
  const context = contextMaker(() => tmp);
  /** The texts of the steps a plain-progress build took from its cache. */
  const cached = (stderr: string) =>
    [...stderr.matchAll(/^#(\d+) \[[^\]]+\] (.*)$/gm)].filter((m) => new RegExp(`^#${m[1]} CACHED$`, 'm').test(stderr)).map((m) => m[2]);
  const build = async (dir: string, tag: string) => {
    const r = await cli('build', '--progress=plain', '--network', 'none', '-t', tag, dir);
    assert.equal(r.code, 0, r.stderr);
    return r;
  };
  const cat = async (tag: string, file: string) => {
    const r = await cli('run', '--rm', '--network', 'none', tag, 'cat', file);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };

  it('an unchanged file is a hit; a file rewritten with its size and mtime put back is a miss, and the image has its new bytes', async () => {
    const files: Record<string, string> = { Dockerfile: `FROM ${e.image}\nCOPY src /src\nRUN cat /src/a.txt /src/deep/b.txt > /both\n`, 'src/a.txt': 'aaaa\n', 'src/deep/b.txt': 'bbbb\n' };
    for (let i = 0; i < 50; i++) files[`src/many/f${i}.txt`] = `file ${i}\n`;
    const dir = context(files);
    // Old enough that their hashes are kept (a file changed less than a second ago is read again next time).
    const past = new Date(Date.now() - 60_000);
    for (const f of ['src/a.txt', 'src/deep/b.txt']) utimesSync(path.join(dir, f), past, past);
    await build(dir, 'inplace:1');
    assert.equal(await cat('inplace:1', '/both'), 'aaaa\nbbbb\n');

    const again = await build(dir, 'inplace:1');
    assert.deepEqual(cached(again.stderr), ['COPY src /src', 'RUN cat /src/a.txt /src/deep/b.txt > /both']);

    // The same size and the old mtime: only the ctime (which nobody can set) tells the file changed.
    const b = path.join(dir, 'src/deep/b.txt');
    const before = statSync(b);
    writeFileSync(b, 'BBBB\n');
    utimesSync(b, before.atime, before.mtime);
    assert.equal(statSync(b).size, before.size);
    assert.equal(statSync(b).mtimeMs, before.mtimeMs);
    const changed = await build(dir, 'inplace:1');
    assert.deepEqual(cached(changed.stderr), []);
    assert.equal(await cat('inplace:1', '/both'), 'aaaa\nBBBB\n');

    // Changed back within the same second: read again, as its times are too recent to trust.
    writeFileSync(b, 'bbbb\n');
    const back = await build(dir, 'inplace:1');
    assert.deepEqual(cached(back.stderr), ['COPY src /src', 'RUN cat /src/a.txt /src/deep/b.txt > /both']);
    assert.equal(await cat('inplace:1', '/both'), 'aaaa\nbbbb\n');
    writeFileSync(b, 'cccc\n');
    const quick = await build(dir, 'inplace:1');
    assert.deepEqual(cached(quick.stderr), []);
    assert.equal(await cat('inplace:1', '/both'), 'aaaa\ncccc\n');
    await cli('rmi', 'inplace:1');
  });

  it('.dockerignore holds on every read of the directory: COPY, a wildcard, a bind mount of the context', async () => {
    const dir = context({
      Dockerfile: `FROM ${e.image}\nCOPY . /ctx\nCOPY *.txt /txt/\nRUN --mount=type=bind,target=/c find /c | sort > /seen\n`,
      '.dockerignore': 'secret.txt\nlogs\n**/*.tmp\n',
      'keep.txt': 'keep\n',
      'secret.txt': 'secret\n',
      'logs/a.log': 'log\n',
      'sub/x.tmp': 'tmp\n',
      'sub/y.dat': 'y\n',
    });
    await build(dir, 'inplace:2');
    const listing = await cli('run', '--rm', '--network', 'none', 'inplace:2', 'sh', '-c', 'cd /ctx && find . -type f | sort; echo ---; ls /txt; echo ---; cat /seen');
    assert.equal(listing.code, 0, listing.stderr);
    const [ctxFiles, txt, seen] = listing.stdout.split('---\n');
    assert.equal(ctxFiles, './.dockerignore\n./Dockerfile\n./keep.txt\n./sub/y.dat\n');
    assert.equal(txt, 'keep.txt\n');
    assert.equal(seen, '/c\n/c/.dockerignore\n/c/Dockerfile\n/c/keep.txt\n/c/sub\n/c/sub/y.dat\n');
    const named = await cli('build', context({ Dockerfile: `FROM ${e.image}\nCOPY secret.txt /s\n`, '.dockerignore': 'secret.txt\n', 'secret.txt': 's\n' }));
    assert.equal(named.code, 1);
    assert.match(named.stderr, /secret\.txt.*not found \(or excluded by \.dockerignore\)/);
    // An ignored file that changes changes nothing.
    writeFileSync(path.join(dir, 'secret.txt'), 'other secret\n');
    const again = await build(dir, 'inplace:2');
    assert.equal(cached(again.stderr).length, 3, again.stderr);
    await cli('rmi', 'inplace:2');
  });

  it('the user\'s directory is left as it was', async () => {
    const dir = context({ Dockerfile: `FROM ${e.image}\nCOPY . /ctx\nRUN --mount=type=bind,target=/c ls /c > /dev/null\n`, 'a.txt': 'a\n' });
    const st = statSync(path.join(dir, 'a.txt'));
    await build(dir, 'inplace:3');
    const after = statSync(path.join(dir, 'a.txt'));
    assert.equal(after.mtimeMs, st.mtimeMs);
    assert.equal(after.ctimeMs, st.ctimeMs);
    assert.equal(after.uid, st.uid);
    await cli('rmi', 'inplace:3');
  });
});

describe('berth build: contextdir for callers that are not root', { timeout: 120_000 }, () => {
  it('is refused: berthd would read the path with its own rights', async () => {
    const d = await startDaemon({ config: 'version = 1\n[daemon]\nsocket_mode = "0666"\n' });
    try {
      chmodSync(d.dir, 0o711);
      const r = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', '--', 'curl', '-s', '-w', '\n%{http_code}', '--unix-socket', d.socket, '-X', 'POST', 'http://berth/build?contextdir=/root'], { encoding: 'utf8' });
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines.at(-1), '403', r.stdout + r.stderr);
      assert.match(r.stdout, /contextdir/);
    } finally {
      await d.stop();
    }
  });
});
