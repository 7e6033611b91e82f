import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliCommand, nativeCli, runCli, startDaemon } from '../helpers/daemon.ts';
import { startEngine, type Engine } from '../helpers/engine.ts';
import { runWithStdinFile, writeStdinInputs } from '../helpers/stdin-file.ts';
import { until } from '../helpers/tasks.ts';

/**
 * The native berth client and berthd's CLI host (native/cli.c,
 * src/daemon/cli-host.ts): root's commands run inside berthd with the
 * caller's stdio, environment, working directory and signals; commands that
 * touch the caller's files, callers that are not root and callers in
 * another mount namespace get the Node CLI.
 *
 * A probe tells the two paths apart: BERTH_CLI_ENTRY names the Node CLI the
 * client falls back to, so pointing it at a missing file makes every
 * fallback fail while hosted commands still work.
 */
const NO_FALLBACK = { BERTH_CLI_ENTRY: '/nonexistent/berth-cli.js' };

describe('the native client and the CLI host', { timeout: 300_000, skip: !existsSync(nativeCli) && 'native/build/berth is not built' }, () => {
  let e: Engine;
  let tmp: string;
  before(async () => {
    e = await startEngine();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-clihost-'));
  });
  after(async () => {
    await e?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const host = () => `unix://${e.d.socket}`;
  const cli = (args: string[], opts: Parameters<typeof runCli>[1] = {}) => runCli(['-H', host(), ...args], opts);
  const daemonFds = () => readdirSync(`/proc/${e.d.proc.pid}/fd`).length;

  it("runs a command in berthd with the caller's stdio, exit code, stdin and working directory", async () => {
    const hosted = await cli(['images', '--format', '{{.Repository}}:{{.Tag}}'], { env: NO_FALLBACK });
    assert.equal(hosted.code, 0, hosted.stderr);
    const local = await cli(['images', '--format', '{{.Repository}}:{{.Tag}}'], { env: { BERTH_CLI_LOCAL: '1' } });
    assert.equal(hosted.stdout, local.stdout);
    assert.match(hosted.stdout, /busybox:1/);

    const three = await cli(['run', '--rm', '--network', 'none', e.image, 'sh', '-c', 'echo out; echo err >&2; exit 3'], { env: NO_FALLBACK });
    assert.deepEqual([three.code, three.stdout, three.stderr], [3, 'out\n', 'err\n']);
    const piped = await cli(['run', '-i', '--rm', '--network', 'none', e.image, 'cat'], { env: NO_FALLBACK, input: 'through stdin\n' });
    assert.equal(piped.stdout, 'through stdin\n', piped.stderr);

    // Relative paths are the caller's: --env-file is read and --cidfile written in its working directory.
    writeFileSync(path.join(tmp, 'vars.env'), 'FROM_FILE=yes\n');
    const withFiles = await cli(['run', '--rm', '--network', 'none', '--env-file', 'vars.env', '--cidfile', 'cid', e.image, 'env'], { env: NO_FALLBACK, cwd: tmp });
    assert.equal(withFiles.code, 0, withFiles.stderr);
    assert.match(withFiles.stdout, /^FROM_FILE=yes$/m);
    assert.match(readFileSync(path.join(tmp, 'cid'), 'utf8'), /^[0-9a-f]{64}$/);

    const unknown = await cli(['no-such-command'], { env: NO_FALLBACK });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^berth: unknown command: berth no-such-command\n/);
  });

  it("hands commands that read or write the caller's files to the Node CLI", async () => {
    const refused = await cli(['save', '-o', 'image.tar', e.image], { env: NO_FALLBACK, cwd: tmp });
    assert.notEqual(refused.code, 0, 'save ran without the Node CLI');
    const saved = await cli(['save', '-o', 'image.tar', e.image], { cwd: tmp });
    assert.equal(saved.code, 0, saved.stderr);
    assert.ok(statSync(path.join(tmp, 'image.tar')).size > 0);
  });

  it('leaves a client in another mount namespace, whose paths mean other files, to the Node CLI', () => {
    const inOwnMounts = (env: Record<string, string>) =>
      spawnSync('unshare', ['--mount', '--propagation', 'private', '--', nativeCli, '-H', host(), 'images', '-q'], { env: { ...process.env, ...env }, encoding: 'utf8' });
    assert.notEqual(inOwnMounts(NO_FALLBACK).status, 0, 'berthd ran a command for a client in another mount namespace');
    const fallback = inOwnMounts({ BERTH_CLI_ENTRY: path.resolve(import.meta.dirname, '../../src/cli/main.ts') });
    assert.equal(fallback.status, 0, fallback.stderr);
    assert.match(fallback.stdout, /^[0-9a-f]{12}$/m);
  });

  it("writes at the caller's file offset, between what others write to the same file", () => {
    const out = path.join(tmp, 'shared.txt');
    execFileSync('sh', ['-c', `{ echo first; "$0" -H "$1" images -q; echo last; } > "$2"`, nativeCli, host(), out], { env: { ...process.env, ...NO_FALLBACK } });
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    assert.equal(lines[0], 'first');
    assert.match(lines[1], /^[0-9a-f]{12}$/);
    assert.equal(lines.at(-1), 'last');
  });

  it('forwards signals: to the command when it handles them, or else they end the client as they would a process', async () => {
    const proxied = spawn(nativeCli, ['-H', host(), 'run', '--rm', '--network', 'none', e.image, 'sh', '-c', 'trap "echo trapped; exit 7" INT; echo ready; while :; do sleep 0.1; done'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...NO_FALLBACK },
    });
    let out = '';
    proxied.stdout.on('data', (d: Buffer) => {
      out += d;
      if (out === 'ready\n') proxied.kill('SIGINT');
    });
    const [code] = await new Promise<[number | null, string | null]>((r) => proxied.once('close', (c, s) => r([c, s])));
    assert.equal(code, 7, 'the container got SIGINT through the client and berthd');
    assert.equal(out, 'ready\ntrapped\n');

    const name = `ticker-${process.pid}`;
    assert.equal((await cli(['run', '-d', '--name', name, '--network', 'none', e.image, 'sh', '-c', 'while :; do echo tick; sleep 0.2; done'])).code, 0);
    const follow = spawn(nativeCli, ['-H', host(), 'logs', '-f', name], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...NO_FALLBACK } });
    follow.stdout.once('data', () => follow.kill('SIGINT'));
    const [, signal] = await new Promise<[number | null, string | null]>((r) => follow.once('close', (c, s) => r([c, s])));
    assert.equal(signal, 'SIGINT', 'logs -f has no handler of its own: SIGINT ends the client');
    assert.equal((await cli(['rm', '-f', name])).code, 0);
  });

  it('holds the output of a command whose client is stopped (ctrl-z) until it is continued', async () => {
    const name = `stopped-${process.pid}`;
    assert.equal((await cli(['run', '-d', '--name', name, '--network', 'none', e.image, 'sh', '-c', 'while :; do echo tick; sleep 0.1; done'])).code, 0);
    const follow = spawn(nativeCli, ['-H', host(), 'logs', '-f', '--tail', '0', name], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...NO_FALLBACK } });
    let out = '';
    follow.stdout.on('data', (d: Buffer) => (out += d));
    await new Promise((r) => follow.stdout.once('data', r));
    follow.kill('SIGTSTP');
    // What was already on its way may still arrive; after that, nothing while the client is stopped.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(readFileSync(`/proc/${follow.pid}/stat`, 'utf8').split(' ')[2], 'T', 'the client stopped itself');
    const mark = out.length;
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(out.length, mark, 'no output while stopped, though the container printed ten lines');
    follow.kill('SIGCONT');
    while (out.length === mark) await new Promise((r) => setTimeout(r, 50));
    follow.kill('SIGINT');
    await new Promise((r) => follow.once('close', r));
    assert.equal((await cli(['rm', '-f', name])).code, 0);
  });

  it('gives all of a few MiB of piped input, its small last chunk too, to run -i, exec -i and start -ai, every time, hosted and local', async () => {
    const { file, empty, want } = writeStdinInputs(tmp);
    const catter = 'stdin-catter';
    const rerun = 'stdin-rerun';
    assert.equal((await cli(['run', '-d', '--name', catter, '--network', 'none', e.image, 'sleep', '600'])).code, 0);
    try {
      // A container made by run -i keeps its stdin-once: start -ai gives it input again.
      const made = await cliFromFile(['run', '-i', '--name', rerun, '--network', 'none', e.image, 'sha256sum'], empty);
      assert.equal(made.code, 0, made.stderr);
      // What the container read is hashed inside it: this is about the input. 3 MiB of cat's output on
      // the way back came short of their own under load (a container's monitor lets a client that falls
      // 1 MiB behind go; the Node CLI's exec output to a pipe), input all read.
      const hashed = (r: { stdout: Buffer }) => r.stdout.toString('utf8').split(' ')[0];
      for (const [client, env] of [
        ['hosted', NO_FALLBACK],
        ['local', { BERTH_CLI_LOCAL: '1' }],
      ] as const) {
        const commands = [
          ['run', '-i', '--rm', '--network', 'none', e.image, 'sha256sum'],
          ['exec', '-i', catter, 'sha256sum'],
        ];
        for (let i = 0; i < 15; i++) {
          for (const args of commands) {
            const r = await cliFromFile(args, file, env);
            const what = `${client} ${args[0]}, round ${i}`;
            assert.equal(r.code, 0, `${what}: ${r.stderr}`);
            assert.equal(hashed(r), want, `${what}: what the container read differs`);
          }
        }
        for (let i = 0; i < 3; i++) {
          const r = await cliFromFile(['start', '-ai', rerun], file, env);
          assert.equal(r.code, 0, `${client} start -ai, round ${i}: ${r.stderr}`);
          assert.equal(hashed(r), want, `${client} start -ai, round ${i}: what the container read differs`);
        }
        // No input at all still ends the command's stdin.
        const emptyHash = createHash('sha256').digest('hex');
        for (const args of [...commands, ['start', '-ai', rerun]]) {
          const none = await cliFromFile(args, empty, env);
          assert.equal(none.code, 0, `${client} ${args[0]} of no input: ${none.stderr}`);
          assert.equal(hashed(none), emptyHash, `${client} ${args[0]} of no input`);
        }
      }
    } finally {
      await cli(['rm', '-f', catter, rerun]);
    }
  });

  it('a foreground run holds its container for a reader that falls behind, and the reader gets every byte', async () => {
    for (const [client, env] of [
      ['hosted', NO_FALLBACK],
      ['local', { BERTH_CLI_LOCAL: '1' }],
    ] as const) {
      const name = `behind-${client}-${process.pid}`;
      // seq writes 6,888,896 bytes: berthd, the monitor and the pipes hold a small part of them.
      const cmd = cliCommand(['-H', host(), 'run', '--rm', '--name', name, '--network', 'none', e.image, 'seq', '1', '1000000']);
      const run = spawn(cmd.file, cmd.args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...cmd.env, ...env } });
      run.stdout.pause();
      let stderr = '';
      run.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((r) => run.once('close', r));
      try {
        const [pid, logPath] = await until(
          async () => (await cli(['inspect', '--format', '{{.State.Pid}} {{.LogPath}}', name])).stdout.trim().split(' '),
          ([p]) => Number(p) > 0,
          `${client}: the container running`,
        );
        let seen = { log: -1, times: 0 };
        const outcome = await until(
          async () => {
            const waiting = (await readFile(`/proc/${pid}/wchan`, 'utf8').catch(() => 'exited')) as string;
            if (waiting === 'exited') return 'exited';
            const log = statSync(logPath).size;
            seen = waiting.includes('pipe_write') && log === seen.log ? { log, times: seen.times + 1 } : { log, times: 0 };
            return seen.times >= 3 ? 'held' : 'running';
          },
          (o) => o !== 'running',
          `${client}: seq to wait for its reader, or to exit`,
        );
        assert.equal(outcome, 'held', `${client}: the container ran on while its reader was behind`);
        let bytes = 0;
        run.stdout.on('data', (d: Buffer) => (bytes += d.length));
        run.stdout.resume();
        assert.equal(await exited, 0, `${client}: ${stderr}`);
        assert.equal(bytes, 6_888_896, client);
      } finally {
        run.kill('SIGKILL');
        await cli(['rm', '-f', name]);
      }
    }
  });

  /** The CLI with its stdin read from `file`, as a shell's `< file` gives it; stdout as bytes. */
  function cliFromFile(args: string[], file: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: Buffer; stderr: string }> {
    const cmd = cliCommand(['-H', host(), ...args]);
    return runWithStdinFile(cmd.file, cmd.args, file, { ...process.env, ...cmd.env, ...env });
  }

  it('keeps no descriptor of a client that died, was cut off or never read its output', async () => {
    const before = daemonFds();
    const name = `chatter-${process.pid}`;
    assert.equal((await cli(['run', '-d', '--name', name, '--network', 'none', e.image, 'sh', '-c', 'while :; do echo chatter; sleep 0.1; done'])).code, 0);
    for (let i = 0; i < 3; i++) {
      const killed = spawn(nativeCli, ['-H', host(), 'logs', '-f', name], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, ...NO_FALLBACK } });
      await new Promise((r) => killed.stdout.once('data', r));
      killed.kill('SIGKILL');
      await new Promise((r) => killed.once('close', r));
    }
    // A reader that is gone before anything is written: the write fails with EPIPE and the client dies of SIGPIPE.
    const cut = spawn(nativeCli, ['-H', host(), 'logs', name], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, ...NO_FALLBACK } });
    cut.stdout.destroy();
    const [, cutSignal] = await new Promise<[number | null, string | null]>((r) => cut.once('close', (c, s) => r([c, s])));
    assert.equal(cutSignal, 'SIGPIPE');
    assert.equal((await cli(['rm', '-f', name])).code, 0);
    let now = daemonFds();
    // Fewer is fine: what an earlier test left closing may finish closing meanwhile.
    for (let i = 0; i < 100 && now > before; i++) {
      await new Promise((r) => setTimeout(r, 50));
      now = daemonFds();
    }
    assert.ok(now <= before, `berthd holds ${now} descriptors, ${before} before`);
    assert.equal((await cli(['version'], { env: NO_FALLBACK })).code, 0, 'and still serves');
  });
});

describe('the CLI host and callers that are not root', { timeout: 120_000, skip: !existsSync(nativeCli) && 'native/build/berth is not built' }, () => {
  it('leaves them to the Node CLI, which runs with their own rights', async () => {
    const d = await startDaemon({ config: 'version = 1\n[daemon]\nsocket_mode = "0666"\n' });
    try {
      chmodSync(d.dir, 0o711);
      const asNobody = (env: Record<string, string>) =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
          const p = spawn('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', '--', nativeCli, '-H', `unix://${d.socket}`, 'images', '-q'], {
            stdio: ['ignore', 'pipe', 'pipe'],
            env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
          });
          let stdout = '';
          let stderr = '';
          p.stdout.on('data', (b: Buffer) => (stdout += b));
          p.stderr.on('data', (b: Buffer) => (stderr += b));
          p.once('close', (code) => resolve({ code, stdout, stderr }));
        });
      const refused = await asNobody(NO_FALLBACK);
      assert.notEqual(refused.code, 0, 'berthd ran a command for uid 65534');
      const fallback = await asNobody({ BERTH_CLI_ENTRY: path.resolve(import.meta.dirname, '../../src/cli/main.ts'), NODE_COMPILE_CACHE: '' });
      assert.equal(fallback.code, 0, fallback.stderr);
      assert.equal(fallback.stdout, '');
    } finally {
      await d.stop();
    }
  });
});
