import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { runCli, type CliIo } from './cli.ts';
import { aliases, commands, groupCommands, resolve } from './registry.ts';

/** Runs a command line that needs no daemon (a socket that does not exist catches one that tries). */
async function cli(...argv: string[]): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (b: Buffer) => (stdout += b));
  err.on('data', (b: Buffer) => (stderr += b));
  const io = {
    stdout: out,
    stderr: err,
    stdin: new PassThrough(),
    env: { BERTH_HOST: 'unix:///nonexistent/berth.sock' },
    cwd: '/',
    stdinIsTTY: () => false,
    onSignal: () => () => {},
  } as unknown as CliIo;
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}

describe('help', () => {
  it('lists every command once, with its summary, under docker\'s headings', async () => {
    const { code, stdout } = await cli('--help');
    assert.equal(code, 0);
    assert.match(stdout, /^Usage: {2}berth \[OPTIONS\] COMMAND\n/);
    const headings = [...stdout.matchAll(/^([A-Z][\w-]* ?[\w-]*):$/gm)].map((m) => m[1]);
    assert.deepEqual(headings.slice(0, 3), ['Common Commands', 'Management Commands', 'Low-level Commands']);
    assert.match(stdout, /\n {2}snapshot {4}Manage snapshots/);
    assert.match(stdout, /\nCommon Commands:\n {2}run {9}Create and run a new container from an image\n {2}exec {8}Execute a command/);
    assert.match(stdout, /\nManagement Commands:\n(?: {2}\w+ +.+\n)* {2}container {3}Manage containers\n/);
    for (const name of Object.keys({ ...commands, ...aliases }).filter((k) => !k.includes(' '))) {
      const { command } = await commands[resolve(name)!]();
      assert.ok(command.summary, `${name} has no summary`);
      assert.equal(stdout.split('\n').filter((l) => l.startsWith(`  ${name} `)).length, 1, `${name} is listed once`);
    }
  });

  it('gives every command a usage, a summary, its flags, and docker\'s answer to a flag it does not know', async () => {
    for (const [key, load] of Object.entries(commands)) {
      const { command } = await load();
      assert.match(command.usage, new RegExp(`^berth ${key}( |$)`), key);
      assert.ok(command.summary, key);
      const { code, stdout } = await cli(...key.split(' '), '--help');
      assert.equal(code, 0, key);
      assert.ok(stdout.startsWith(`Usage:  ${command.usage}\n\n${command.summary}\n`), key);
      const bad = await cli(...key.split(' '), '--bogus-flag');
      assert.deepEqual(bad, { code: 125, stdout: '', stderr: `unknown flag: --bogus-flag\n\nUsage:  ${command.usage}\n\nRun 'berth ${key} --help' for more information\n` }, key);
      // A flag without a description is one docker hides (run --net): help shows exactly the others.
      for (const [flag, spec] of Object.entries(command.flags ?? {})) {
        assert.equal(new RegExp(`--${flag} `).test(stdout), !!spec.doc, `${key} --${flag}`);
      }
    }
  });

  it('answers `help` and `help COMMAND` as --help', async () => {
    assert.deepEqual(await cli('help'), await cli('--help'));
    assert.deepEqual(await cli('help', 'network', 'ls'), await cli('network', 'ls', '--help'));
    assert.match((await cli('help', 'network', 'ls')).stdout, /^Usage: {2}berth network ls /);
  });

  it("prints a command's aliases, flags and defaults as docker does", async () => {
    const { stdout } = await cli('stop', '--help');
    assert.match(stdout, /\nAliases:\n {2}berth container stop, berth stop\n/);
    assert.match(stdout, /\nOptions:\n(?:.+\n)* {2}-s, --signal string +Signal to send to the container\n/);
    assert.match((await cli('container', 'stop', '--help')).stdout, /^Usage: {2}berth container stop \[OPTIONS\] CONTAINER/);
    const kill = await cli('kill', '--help');
    assert.match(kill.stdout, / {2}-s, --signal string {3}Signal to send to the container \(default "KILL"\)\n/);
  });

  it('lists a group with one name per command', async () => {
    const { code, stdout } = await cli('image');
    assert.equal(code, 0);
    assert.match(stdout, /^Usage: {2}berth image COMMAND\n\nManage images\n\nCommands:\n/);
    assert.match(stdout, /\n {2}ls {10}List images\n/);
    assert.doesNotMatch(stdout, /\n {2}list /);
    assert.deepEqual(groupCommands('volume').map((c) => c.name), ['create', 'inspect', 'ls', 'prune', 'rm']);
  });

  it("answers an unknown command or flag in docker's words and exit codes", async () => {
    assert.deepEqual(await cli('bogus'), { code: 1, stdout: '', stderr: "berth: unknown command: berth bogus\n\nRun 'berth --help' for more information\n" });
    assert.deepEqual(await cli('image', 'bogus'), { code: 1, stdout: '', stderr: "berth: unknown command: berth image bogus\n\nUsage:  berth image\n\nRun 'berth image --help' for more information\n" });
    assert.deepEqual(await cli('ps', '--bogus'), { code: 125, stdout: '', stderr: "unknown flag: --bogus\n\nUsage:  berth ps [OPTIONS]\n\nRun 'berth ps --help' for more information\n" });
    assert.deepEqual(await cli('container', 'ls', '-Z'), { code: 125, stdout: '', stderr: "unknown shorthand flag: 'Z' in -Z\n\nUsage:  berth container ls [OPTIONS]\n\nRun 'berth container ls --help' for more information\n" });
    assert.deepEqual(await cli('logs', '--tail'), { code: 125, stdout: '', stderr: "flag needs an argument: --tail\n\nUsage:  berth logs [OPTIONS] CONTAINER\n\nRun 'berth logs --help' for more information\n" });
    assert.equal((await cli('run', '--bogus', 'img')).code, 125);
    assert.equal((await cli('--bogus')).code, 125);
  });
});
