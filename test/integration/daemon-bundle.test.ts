import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { criClient } from '../helpers/cri.ts';
import { projectRoot, runCli } from '../helpers/daemon.ts';

const berthd = path.join(projectRoot, 'bin/berthd');
const bundle = path.join(projectRoot, 'dist/berthd.cjs');

function get(socketPath: string, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath, path: urlPath, agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/**
 * The other tests run berthd from src/; bin/berthd runs the bundle the
 * build made (dist/berthd.cjs, scripts/bundle-daemon.mjs). This starts it
 * as a user does and has each door answer, so what bundles differently
 * (a module's import.meta paths, a lazy door's dynamic import, the CRI's
 * pre-parsed api.proto) shows up here.
 */
describe('berthd as bin/berthd runs it (the bundle)', { skip: !existsSync(bundle) && 'dist/berthd.cjs is not built (scripts/setup.sh builds it)' }, () => {
  let dir: string;
  let state: string;
  let proc: ChildProcess;
  let log = '';
  const socket = () => path.join(state, 'berth.sock');

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'berth-bundle-daemon-'));
    state = path.join(dir, 'run');
    const config = path.join(dir, 'berth.toml');
    await writeFile(config, `version = 1\n[network]\nbridge = "bt${randomBytes(3).toString('hex')}"\nsubnet = "10.${200 + randomInt(51)}.${randomInt(256)}.0/24"\n`);
    // A preload that lists the modules berthd has loaded when asked (SIGUSR2): the first test reads it.
    const preload = path.join(dir, 'modules-on-usr2.cjs');
    await writeFile(
      preload,
      `process.on('SIGUSR2', () => { const fs = require('node:fs'); const out = process.env.BERTH_TEST_MODULES_OUT; fs.writeFileSync(out + '.tmp', process.moduleLoadList.join('\\n')); fs.renameSync(out + '.tmp', out); });\n`,
    );
    const env = { ...process.env, NODE_OPTIONS: `--require ${preload}`, BERTH_TEST_MODULES_OUT: path.join(dir, 'modules.txt') };
    proc = spawn(berthd, ['--root', path.join(dir, 'root'), '--state', state, '--config', config, '--log-level', 'debug'], { stdio: ['ignore', 'pipe', 'pipe'], env });
    proc.stdout!.on('data', (d) => (log += d));
    proc.stderr!.on('data', (d) => (log += d));
    const deadline = Date.now() + 30_000;
    while (!existsSync(socket()) || !log.includes('berthd ready')) {
      if (proc.exitCode !== null) throw new Error(`berthd exited with ${proc.exitCode}:\n${log}`);
      if (Date.now() > deadline) throw new Error(`berthd did not start:\n${log}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  });

  after(async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('starts without TLS, zlib, worker threads or HTTP/2, which only some work or a front door needs', async () => {
    // koffi's package entry once loaded node:https (so TLS) at the overlayfs check: ~7 ms of start and ~4.7 MiB.
    const out = path.join(dir, 'modules.txt');
    proc.kill('SIGUSR2');
    const deadline = Date.now() + 10_000;
    while (!existsSync(out)) {
      if (Date.now() > deadline) throw new Error(`berthd wrote no module list:\n${log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const loaded = new Set(readFileSync(out, 'utf8').split('\n'));
    assert.ok(loaded.has('NativeModule net'), 'the list is the module list');
    for (const m of ['tls', 'https', 'zlib', 'worker_threads', 'http2']) assert.equal(loaded.has(`NativeModule ${m}`), false, `node:${m} is loaded at start`);
  });

  it('runs the bundle, listens before it recovers, and serves the native API', async () => {
    assert.ok(readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').split('\0').some((a) => a && path.resolve(a) === bundle), 'bin/berthd runs dist/berthd.cjs');
    assert.ok(log.indexOf('berthd listening') < log.indexOf('berthd ready'), log);
    assert.deepEqual(await get(socket(), '/_ping'), { status: 200, body: '"OK"' });
    const version = await runCli(['-H', `unix://${socket()}`, 'version']);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /Server:/);
  });

  it('loads the CRI door on its first client, with the definitions the build made of api.proto', async () => {
    assert.ok(existsSync(path.join(projectRoot, 'dist/api/cri/api.json')));
    const cri = criClient(path.join(state, 'cri.sock'));
    try {
      const v = await cri.runtime('Version', {});
      assert.equal(v.runtime_name, 'berth');
      assert.equal(v.runtime_api_version, 'v1');
      assert.deepEqual((await cri.image('ListImages', {})).images, []);
    } finally {
      cri.close();
    }
    assert.match(log, /"msg":"CRI loaded"/);
  });

  it('loads the Docker door on its first client', async () => {
    const ping = await get(path.join(state, 'docker.sock'), '/_ping');
    assert.equal(ping.status, 200);
    assert.equal(ping.body, 'OK');
  });

  it('is ASCII, so that V8 holds its source at one byte a character', () => {
    const nonAscii = /[^\x00-\x7f]/.exec(readFileSync(bundle, 'latin1'));
    assert.equal(nonAscii, null, nonAscii ? `a non-ASCII byte at offset ${nonAscii.index}` : '');
  });

  it('stops on SIGTERM, removing its sockets and pid file', async () => {
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    assert.equal(await exited, 0, log);
    for (const s of ['berth.sock', 'cri.sock', 'docker.sock']) assert.equal(existsSync(path.join(state, s)), false, `${s} is removed`);
    assert.equal(existsSync(path.join(dir, 'root', 'berthd.pid')), false);
  });
});
