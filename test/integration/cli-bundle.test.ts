import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nodeBin, startDaemon, type CliResult, type TestDaemon } from '../helpers/daemon.ts';
// @ts-expect-error: a plain .mjs build script, without type declarations
import { bundleCli } from '../../scripts/bundle-cli.mjs';

/**
 * The other tests run the CLI from src/; bin/berth runs the bundle. This
 * builds the bundle afresh and drives a real berthd with it, so a module
 * that bundles differently (import.meta, top-level await, a lazy getter)
 * shows up here rather than on a user's machine.
 */
describe('the bundled CLI', () => {
  let dir: string;
  let bundle: string;
  let d: TestDaemon;

  const berth = (args: string[], input?: Buffer): Promise<CliResult> =>
    new Promise((resolve, reject) => {
      const p = spawn(nodeBin, [bundle, '-H', `unix://${d.socket}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000 });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (c) => (stdout += c));
      p.stderr.on('data', (c) => (stderr += c));
      p.on('error', reject);
      p.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
      p.stdin.end(input);
    });

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'berth-bundle-'));
    bundle = path.join(dir, 'berth.cjs');
    await bundleCli(bundle);
    d = await startDaemon();
  });
  after(async () => {
    await d?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('talks to the daemon and lists images', async () => {
    const v = await berth(['version']);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /Server:/);
    const images = await berth(['images']);
    assert.equal(images.code, 0, images.stderr);
    assert.match(images.stdout, /^REPOSITORY\s+TAG\s+IMAGE ID/);
  });

  it('imports a rootfs from stdin and runs it with the container exit code', async () => {
    const rootfs = path.join(dir, 'rootfs');
    await mkdir(path.join(rootfs, 'bin'), { recursive: true });
    await copyFile('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
    await symlink('busybox', path.join(rootfs, 'bin', 'sh'));
    const tar = await new Promise<Buffer>((resolve, reject) => {
      const p = spawn('tar', ['-C', rootfs, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const chunks: Buffer[] = [];
      p.stdout.on('data', (c) => chunks.push(c));
      p.on('error', reject);
      p.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`tar exited ${code}`))));
    });
    const imp = await berth(['import', '-', 'bundled:latest'], tar);
    assert.equal(imp.code, 0, imp.stderr);
    const run = await berth(['run', '--rm', '--network', 'none', 'bundled:latest', 'sh', '-c', 'echo from-bundle; exit 3']);
    assert.equal(run.stdout, 'from-bundle\n', run.stderr);
    assert.equal(run.code, 3);
    assert.equal((await berth(['ps', '-aq'])).stdout, '');
  });

  it('reports bad input with docker exit codes', async () => {
    const unknown = await berth(['nosuchcommand']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^berth: unknown command: berth nosuchcommand\n/);
    const group = await berth(['image']);
    assert.equal(group.code, 0);
    assert.match(group.stdout, /^Usage: {2}berth image COMMAND\n[\s\S]*\n {2}inspect +Display detailed information/);
    const badSub = await berth(['image', 'bogus']);
    assert.equal(badSub.code, 1);
    assert.match(badSub.stderr, /^berth: unknown command: berth image bogus\n/);
    const badFlag = await berth(['ps', '--bogus']);
    assert.equal(badFlag.code, 125);
    assert.equal(badFlag.stderr, "unknown flag: --bogus\n\nUsage:  berth ps [OPTIONS]\n\nRun 'berth ps --help' for more information\n");
    const missing = await berth(['rm', 'no-such-container']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /no-such-container/);
  });
});
