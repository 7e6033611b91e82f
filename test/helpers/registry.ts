import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';

/**
 * A real registry (Debian's docker-registry, i.e. docker/distribution 2.8)
 * on 127.0.0.1 with a free port, its own temp storage and generated config.
 * Deletes are enabled so tests can exercise them.
 *
 * `auth: 'basic'` protects it with htpasswd; the user is `testuser` with
 * password `testpass` unless `user`/`password` say otherwise.
 *
 * Example:
 *   const reg = await startRegistry();
 *   after(() => reg.stop());
 *   await pushToRegistry(layout, `${reg.host}/demo:1`);
 */
export const REGISTRY_BIN = '/usr/bin/docker-registry';

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  port: number;
  dir: string;
  user?: string;
  password?: string;
  proc: ChildProcess;
  logs(): string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  auth?: 'basic';
  user?: string;
  password?: string;
}

/** A port that was free a moment ago (the registry cannot take port 0 and report it back). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      // Another process may grab the port between freePort() and listen.
      if (attempt >= 3) throw err;
    }
  }
}

async function startOnce(opts: RegistryOptions): Promise<TestRegistry> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-registry-'));
  const storage = path.join(dir, 'storage');
  await mkdir(storage);
  const port = await freePort();
  const user = opts.user ?? 'testuser';
  const password = opts.password ?? 'testpass';
  let authYaml = '';
  if (opts.auth === 'basic') {
    const htpasswd = path.join(dir, 'htpasswd');
    // docker-registry accepts only bcrypt entries.
    await writeFile(htpasswd, `${user}:${bcrypt.hashSync(password, 5)}\n`);
    authYaml = `auth:\n  htpasswd:\n    realm: berth-test\n    path: ${htpasswd}\n`;
  }
  const config = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    authYaml,
  ].join('\n');
  const configPath = path.join(dir, 'config.yml');
  await writeFile(configPath, config);

  let logs = '';
  const proc = spawn(REGISTRY_BIN, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d: Buffer) => (logs = (logs + d.toString()).slice(-64_000)));
  proc.stderr!.on('data', (d: Buffer) => (logs = (logs + d.toString()).slice(-64_000)));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
      process.kill(proc.pid, 'SIGTERM');
      const t = setTimeout(() => proc.pid !== undefined && proc.exitCode === null && process.kill(proc.pid, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await waitReady(port, proc, () => logs);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    host: `127.0.0.1:${port}`,
    port,
    dir,
    user: opts.auth ? user : undefined,
    password: opts.auth ? password : undefined,
    proc,
    logs: () => logs,
    stop,
  };
}

async function waitReady(port: number, proc: ChildProcess, logs: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`docker-registry exited with ${proc.exitCode}: ${logs()}`);
    const status = await new Promise<number>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/v2/', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(0));
      req.setTimeout(1000, () => req.destroy());
    });
    if (status === 200 || status === 401) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry on port ${port} did not become ready: ${logs()}`);
}
