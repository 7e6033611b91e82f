import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readlinkSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEngine, type Engine } from '../helpers/engine.ts';

/**
 * `berth build` end to end: a real berthd builds Dockerfiles on a busybox
 * base pulled from a loopback registry; RUN steps run under runc; results
 * are checked by running them and by reading the image back.
 */
describe('berth build', { timeout: 600_000 }, () => {
  let e: Engine;
  let tmp: string;
  before(async () => {
    e = await startEngine();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-build-'));
  });
  after(async () => {
    await e?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => e.d.cli(args);
  let n = 0;
  /** A fresh context directory with these files. */
  const context = (files: Record<string, string>): string => {
    const dir = path.join(tmp, `ctx${n++}`);
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      writeFileSync(path.join(dir, name), text);
    }
    return dir;
  };
  const inspect = async (ref: string) => {
    const r = await cli('image', 'inspect', ref);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as Array<{ Id: string; Config: Record<string, unknown>; RootFS: { Layers: string[] } }>)[0];
  };

  it('builds a single stage: RUN, COPY, ENV, WORKDIR, USER, CMD carried across steps', async () => {
    const dir = context({
      Dockerfile: `FROM ${e.image}\nENV GREETING=hello DIR=/app\nWORKDIR $DIR\nCOPY hello.txt ./\nRUN echo "$GREETING from $(pwd)" > out.txt && cat hello.txt >> out.txt\nRUN echo "app:x:1234:1234::/home/app:/bin/sh" >> /etc/passwd && echo "app:x:1234:" >> /etc/group\nUSER app\nRUN id -u > /tmp/uid\nLABEL org.example.name=test\nEXPOSE 8080\nCMD ["cat", "/app/out.txt"]\n`,
      'hello.txt': 'file content\n',
    });
    const r = await cli('build', '--progress=plain', '-t', 'single:1', '-t', 'single:2', dir);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stderr, /#\d+ \[stage-0 2\/11\] ENV GREETING=hello DIR=\/app/);
    assert.match(r.stderr, /naming to single:1/);
    const run = await cli('run', '--rm', 'single:1');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'hello from /app\nfile content\n');
    const uid = await cli('run', '--rm', 'single:2', 'cat', '/tmp/uid');
    assert.equal(uid.stdout, '1234\n');
    const img = await inspect('single:1');
    assert.equal(img.Config.User, 'app');
    assert.equal(img.Config.WorkingDir, '/app');
    assert.deepEqual(img.Config.Cmd, ['cat', '/app/out.txt']);
    assert.deepEqual(img.Config.ExposedPorts, { '8080/tcp': {} });
    assert.deepEqual((img.Config.Labels as Record<string, string>)['org.example.name'], 'test');
    assert.ok((img.Config.Env as string[]).includes('GREETING=hello'));
    const hist = await cli('history', '--no-trunc', '--format', '{{.CreatedBy}}', 'single:1');
    assert.match(hist.stdout, /^\/bin\/sh -c #\(nop\)  CMD \["cat","\/app\/out.txt"\]$/m);
    assert.match(hist.stdout, /^\/bin\/sh -c echo "\$GREETING from \$\(pwd\)" > out.txt && cat hello.txt >> out.txt$/m);
    assert.match(hist.stdout, /^\/bin\/sh -c #\(nop\) COPY file:[0-9a-f]{64} in \/app\/ $/m);
    assert.equal((await cli('ps', '-aq')).stdout, '', 'no build container is left');
  });
});
