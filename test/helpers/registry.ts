import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, sign } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
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
  /** With `tls`: the certificate to trust (self-signed, so also its CA). */
  caFile?: string;
  /** With `auth: 'token'`: the token requests seen, as `user scope scope...`. */
  tokenRequests?: string[];
  logs(): string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /**
   * `basic`: htpasswd. `token`: the distribution token flow, with a token
   * server in this process (anonymous clients get pull, the user gets
   * pull and push, a wrong password gets 401).
   */
  auth?: 'basic' | 'token';
  /** Serve HTTPS with a self-signed certificate for 127.0.0.1 (see `caFile`). */
  tls?: boolean;
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
  let tokenServer: TokenServer | undefined;
  if (opts.auth === 'token') {
    tokenServer = await startTokenServer(dir, user, password);
    authYaml = [
      'auth:',
      '  token:',
      `    realm: http://127.0.0.1:${tokenServer.port}/token`,
      `    service: ${TOKEN_SERVICE}`,
      `    issuer: ${TOKEN_ISSUER}`,
      `    rootcertbundle: ${tokenServer.certFile}`,
      '',
    ].join('\n');
  }
  if (opts.auth === 'basic') {
    const htpasswd = path.join(dir, 'htpasswd');
    // docker-registry accepts only bcrypt entries.
    await writeFile(htpasswd, `${user}:${bcrypt.hashSync(password, 5)}\n`);
    authYaml = `auth:\n  htpasswd:\n    realm: berth-test\n    path: ${htpasswd}\n`;
  }
  let tlsYaml = '';
  let caFile: string | undefined;
  if (opts.tls) {
    caFile = path.join(dir, 'tls.crt');
    const keyFile = path.join(dir, 'tls.key');
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', caFile, '-days', '2',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ]);
    tlsYaml = `  tls:\n    certificate: ${caFile}\n    key: ${keyFile}`;
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
    tlsYaml,
    authYaml,
  ].join('\n');
  const configPath = path.join(dir, 'config.yml');
  await writeFile(configPath, config);

  let logs = '';
  const proc = spawn(REGISTRY_BIN, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d: Buffer) => (logs = (logs + d.toString()).slice(-64_000)));
  proc.stderr!.on('data', (d: Buffer) => (logs = (logs + d.toString()).slice(-64_000)));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));

  // If the test process dies without calling stop(), the registry must not outlive it.
  const onExit = () => {
    if (proc.pid !== undefined && proc.exitCode === null) {
      try {
        process.kill(proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', onExit);
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
      process.kill(proc.pid, 'SIGTERM');
      const t = setTimeout(() => proc.pid !== undefined && proc.exitCode === null && process.kill(proc.pid, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    await tokenServer?.close();
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await waitReady(port, proc, () => logs, opts.tls === true);
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
    caFile,
    tokenRequests: tokenServer?.requests,
    logs: () => logs,
    stop,
  };
}

async function waitReady(port: number, proc: ChildProcess, logs: () => string, tls: boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`docker-registry exited with ${proc.exitCode}: ${logs()}`);
    const status = await new Promise<number>((resolve) => {
      const get = tls ? https.get : http.get;
      const req = get({ host: '127.0.0.1', port, path: '/v2/', agent: false, rejectUnauthorized: false }, (res) => {
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

const TOKEN_SERVICE = 'berth-test-registry';
const TOKEN_ISSUER = 'berth-test-issuer';

interface TokenServer {
  port: number;
  certFile: string;
  requests: string[];
  close(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/**
 * A token server per the distribution token spec: RS256 JWTs whose x5c
 * header carries a self-signed certificate (made with the openssl CLI) that
 * the registry trusts as its root bundle.
 */
async function startTokenServer(dir: string, user: string, password: string): Promise<TokenServer> {
  const keyFile = path.join(dir, 'token.key');
  const certFile = path.join(dir, 'token.crt');
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=berth-test-token',
  ]);
  const key = await readFile(keyFile, 'utf8');
  const der = (await readFile(certFile, 'utf8')).replace(/-----[^-]+-----|\s/g, '');
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scopes = url.searchParams.getAll('scope');
    let who = '';
    const authz = req.headers.authorization ?? '';
    if (authz.startsWith('Basic ')) {
      const [u, ...rest] = Buffer.from(authz.slice(6), 'base64').toString().split(':');
      if (u !== user || rest.join(':') !== password) {
        requests.push(`denied ${scopes.join(' ')}`);
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
        return;
      }
      who = u;
    }
    requests.push(`${who || 'anonymous'} ${scopes.join(' ')}`);
    const access = scopes.map((s) => {
      const [type, ...rest] = s.split(':');
      const actions = rest.pop()!.split(',');
      return { type, name: rest.join(':'), actions: who ? actions : actions.filter((a) => a === 'pull') };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [der] };
    const claims = { iss: TOKEN_ISSUER, sub: who, aud: TOKEN_SERVICE, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${signingInput}.${b64url(sign('sha256', Buffer.from(signingInput), key))}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    certFile,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
