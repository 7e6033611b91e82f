import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runProcess } from '../helpers/daemon.ts';
import { dockerSkip, startDockerEngine, type DockerEngine } from '../helpers/docker.ts';
import { contextMaker } from '../helpers/build-context.ts';

/**
 * `docker build` (the docker CLI 28 without buildx, so the legacy builder
 * protocol: POST /build with the context as a tar) through berth's Docker
 * API socket, and what it built seen from both sides.
 */
describe('docker build through the Docker API', { skip: dockerSkip, timeout: 600_000 }, () => {
  let de: DockerEngine;
  let tmp: string;
  before(async () => {
    de = await startDockerEngine();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-dbuild-'));
  });
  after(async () => {
    await de?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });
  /** A fresh context directory with these files. */
  const context = contextMaker(() => tmp);
  const docker = (args: string[], input?: string) => de.docker(args, { input });

  it('builds a multi-stage Dockerfile with args, a cache hit on the second run, and the image runs in docker and berth', async () => {
    const dir = context({
      Dockerfile: [
        `FROM ${de.e.image} AS base`,
        'ARG NAME=world',
        'WORKDIR /work',
        'COPY greet.sh .',
        'RUN chmod +x greet.sh && ./greet.sh "$NAME" > greeting.txt',
        `FROM ${de.e.image}`,
        'COPY --from=base /work/greeting.txt /greeting.txt',
        'ENV MODE=prod',
        'CMD ["cat", "/greeting.txt"]',
      ].join('\n'),
      'greet.sh': '#!/bin/sh\necho "hello $1"\n',
      '.dockerignore': 'junk\n',
      junk: 'x',
    });
    const first = await docker(['build', '-t', 'dbuild:1', '--build-arg', 'NAME=berth', '--iidfile', path.join(tmp, 'iid'), dir]);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    assert.match(first.stdout, /Step 1\/9 : FROM /);
    assert.match(first.stdout, /Successfully built [0-9a-f]{12}/);
    assert.match(first.stdout, /Successfully tagged dbuild:1/);
    const iid = readFileSync(path.join(tmp, 'iid'), 'utf8');
    assert.match(iid, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await de.ok(['run', '--rm', 'dbuild:1']), 'hello berth\n');
    assert.equal((await de.e.d.cli(['run', '--rm', 'dbuild:1'])).stdout, 'hello berth\n');
    const again = await docker(['build', '-q', '-t', 'dbuild:2', '--build-arg', 'NAME=berth', dir]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.trim(), iid, 'all cached: the same image');
    assert.doesNotMatch(again.stdout, /Step/);
    const inspect = JSON.parse(await de.ok(['image', 'inspect', 'dbuild:1']))[0];
    assert.deepEqual(inspect.Config.Cmd, ['cat', '/greeting.txt']);
    assert.ok(inspect.Config.Env.includes('MODE=prod'));
    const hist = await de.ok(['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'dbuild:1']);
    assert.match(hist, /#\(nop\)  ENV MODE=prod/);
  });

  it('reports a failing RUN with its output and exits with its code; a Dockerfile on stdin; builder prune', async () => {
    const bad = await docker(['build', '-'], `FROM ${de.e.image}\nRUN echo going down && exit 3\n`);
    assert.equal(bad.code, 3, bad.stderr + bad.stdout);
    assert.match(bad.stdout, /going down/);
    assert.match(bad.stderr, /returned a non-zero code: 3/);
    assert.equal((await de.ok(['ps', '-aq'])).trim(), '');
    const unknown = await docker(['build', '-'], `FROM ${de.e.image}\nNOPE x\n`);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /Dockerfile:2:1: unknown instruction: NOPE/);
    const offline = await docker(['build', '-q', '--network', 'none', '-'], `FROM ${de.e.image}\nRUN sh -c '! grep -q eth0 /proc/net/dev'\n`);
    assert.equal(offline.code, 0, offline.stderr + offline.stdout);
    const cacheRow = async () => {
      const df = await docker(['system', 'df', '--format', '{{json .}}']);
      assert.equal(df.code, 0, df.stderr);
      return df.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>).find((x) => x.Type === 'Build Cache')!;
    };
    assert.ok(Number((await cacheRow()).TotalCount) > 0, 'the build cache is counted');
    const prune = await docker(['builder', 'prune', '-f']);
    assert.equal(prune.code, 0, prune.stderr);
    assert.match(prune.stdout, /Total reclaimed space/);
    assert.equal((await cacheRow()).TotalCount, '0');
    const tar = execFileSync('tar', ['-cf', '-', '-C', context({ Dockerfile: `FROM ${de.e.image}\nCOPY a /a\n`, a: 'A' }), '.']);
    const fromTar = await de.docker(['build', '-q', '-'], { input: tar.toString('latin1') });
    assert.equal(fromTar.code, 0, fromTar.stderr);
  });

  it('docker-py images.build and docker-compose build: through berth', async () => {
    const dir = context({
      Dockerfile: `FROM ${de.e.image}\nARG WHAT=py\nRUN echo "built by $WHAT" > /what\nCMD ["cat", "/what"]\n`,
      'docker-compose.yml': 'version: "3"\nservices:\n  app:\n    build:\n      context: .\n      args:\n        WHAT: compose\n    image: composed:1\n',
    });
    const script = [
      'import docker, sys',
      `c = docker.DockerClient(base_url="unix://${de.sock}")`,
      `img, logs = c.images.build(path=${JSON.stringify(dir)}, tag="pybuilt:1", rm=True)`,
      'print(img.id)',
      'print("".join(l.get("stream", "") for l in logs), file=sys.stderr)',
    ].join('\n');
    const py = await runPy(script, de.env);
    assert.equal(py.code, 0, py.stderr);
    assert.match(py.stdout, /^sha256:[0-9a-f]{64}\n$/);
    assert.match(py.stderr, /Successfully tagged pybuilt:1/);
    assert.equal(await de.ok(['run', '--rm', 'pybuilt:1']), 'built by py\n');
    const compose = await runProcess('docker-compose', ['--no-ansi', 'build'], { env: { ...de.env, COMPOSE_DOCKER_CLI_BUILD: '0', DOCKER_BUILDKIT: '0' }, cwd: dir, timeoutMs: 120_000 });
    assert.equal(compose.code, 0, compose.stderr + compose.stdout);
    assert.equal(await de.ok(['run', '--rm', 'composed:1']), 'built by compose\n');
  });
});

function runPy(script: string, env: Record<string, string>) {
  return runProcess('python3', ['-c', script], { env, timeoutMs: 120_000 });
}
