import { AsyncLocalStorage } from 'node:async_hooks';
import { spawn } from 'node:child_process';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Ctx } from '../core/context.ts';
import { berthError, hasErrno } from '../core/errors.ts';
import { DEFAULT_DOMAIN } from '../core/reference.ts';

/**
 * Registry credentials by registry domain (`docker.io`, `localhost:5000`).
 *
 * Errors: InvalidArgument for a file that is not valid JSON (naming it);
 * Unavailable when a file cannot be read or written for another reason.
 *
 * Example:
 *   const store = new DockerConfigCredentialStore(['/etc/berth/auth.json', '/root/.docker/config.json']);
 *   await store.store(ctx, 'localhost:5000', { username: 'u', password: 'p' });
 *   await store.get(ctx, 'localhost:5000'); // { username: 'u', password: 'p' }
 */
export interface Credentials {
  username: string;
  password: string;
}

export interface CredentialStore {
  /** Credentials for `registry`, or undefined for anonymous access. */
  get(ctx: Ctx, registry: string): Promise<Credentials | undefined>;
  store(ctx: Ctx, registry: string, creds: Credentials): Promise<void>;
  /** Forget `registry`'s credentials; NotFound when there were none. */
  erase(ctx: Ctx, registry: string): Promise<void>;
}

/** Docker writes docker.io credentials under this key; other tools read it there. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

/** The registry domain a config.json `auths` key stands for (keys may be URLs). */
export function authKeyDomain(key: string): string {
  let k = key.trim().replace(/^[a-z]+:\/\//i, '');
  k = k.split('/')[0].toLowerCase();
  if (k === 'index.docker.io' || k === 'registry-1.docker.io') return DEFAULT_DOMAIN;
  return k;
}

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  /** A credential helper for every registry: `docker-credential-<credsStore>`. */
  credsStore?: string;
  /** Per-registry helpers, keyed like `auths`; they win over credsStore. */
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

/** How long a credential helper may take: a keychain prompt must not hang a pull. */
const HELPER_TIMEOUT_MS = 30_000;

/**
 * Credentials in docker's config.json format (`auths` with base64
 * `user:password` in `auth`). Reads every file in order and uses the first
 * that names the registry. A file's credential helper (`credHelpers` for the
 * registry, else `credsStore`) is asked first, as docker does:
 * `docker-credential-NAME get` with the server on stdin; a helper that knows
 * nothing of the registry falls back to the file's `auths`. Writes go to the
 * first file (created 0600), keeping the other keys it holds; they never go
 * to a helper.
 */
export class DockerConfigCredentialStore implements CredentialStore {
  readonly files: string[];
  /** Where helpers are looked for (a PATH); the daemon's own PATH by default. */
  readonly helperPath: string | undefined;

  constructor(files: string[], opts: { helperPath?: string } = {}) {
    this.files = files;
    this.helperPath = opts.helperPath;
  }

  private async read(ctx: Ctx, file: string): Promise<DockerConfigFile | undefined> {
    let text: string;
    try {
      text = await readFile(file, { encoding: 'utf8', signal: ctx.signal });
    } catch (err) {
      if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ENOTDIR')) return undefined;
      throw berthError('Unavailable', `credentials: reading ${file}: ${(err as Error).message}`, err);
    }
    if (text.trim() === '') return {};
    try {
      const doc = JSON.parse(text) as DockerConfigFile;
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('not an object');
      return doc;
    } catch (err) {
      throw berthError('InvalidArgument', `credentials: ${file} is not a valid config file: ${(err as Error).message}`, err);
    }
  }

  async get(ctx: Ctx, registry: string): Promise<Credentials | undefined> {
    const want = authKeyDomain(registry);
    for (const file of this.files) {
      const doc = await this.read(ctx, file);
      const helperKey = Object.keys(doc?.credHelpers ?? {}).find((k) => authKeyDomain(k) === want);
      const helper = (helperKey !== undefined ? doc?.credHelpers?.[helperKey] : undefined) || doc?.credsStore;
      if (helper) {
        const fromHelper = await this.askHelper(ctx, helper, want);
        if (fromHelper) return fromHelper;
      }
      for (const [key, entry] of Object.entries(doc?.auths ?? {})) {
        if (authKeyDomain(key) !== want || !entry) continue;
        if (entry.auth) {
          const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
          const i = decoded.indexOf(':');
          if (i < 0) throw berthError('InvalidArgument', `credentials: ${file}: entry "${key}" has an invalid auth field`);
          return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
        }
        if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
      }
    }
    return undefined;
  }

  /**
   * `docker-credential-NAME get`: the server on stdin, `{ServerURL, Username,
   * Secret}` on stdout; "credentials not found" (exit 1) means none. An
   * identity token (Username `<token>`) is an OAuth refresh token that this
   * client does not exchange: treated as none.
   */
  private async askHelper(ctx: Ctx, name: string, domain: string): Promise<Credentials | undefined> {
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw berthError('InvalidArgument', `credentials: invalid credential helper name "${name}"`);
    const bin = `docker-credential-${name}`;
    const server = domain === DEFAULT_DOMAIN ? DOCKER_HUB_AUTH_KEY : domain;
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const env = this.helperPath === undefined ? process.env : { ...process.env, PATH: this.helperPath };
      const child = spawn(bin, ['get'], { stdio: ['pipe', 'pipe', 'pipe'], env, signal: ctx.signal, timeout: HELPER_TIMEOUT_MS });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.stderr.on('data', (d: Buffer) => (err += d));
      child.on('error', reject);
      child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
      child.stdin.on('error', () => {});
      child.stdin.end(server);
    }).catch((err: unknown) => {
      // Unlike docker, a helper that is not installed does not fail pulls that need no credentials.
      if (hasErrno(err, 'ENOENT')) return undefined;
      throw berthError('Unavailable', `credentials: running ${bin}: ${(err as Error).message}`, err);
    });
    if (!result) {
      ctx.log.warn('credential helper named in a docker config is not installed; using the file alone', { helper: bin });
      return undefined;
    }
    const { code, stdout, stderr } = result;
    if (code !== 0) {
      if (/credentials not found/i.test(stdout + stderr)) return undefined;
      throw berthError('Unavailable', `credentials: ${bin} get failed (exit ${code}): ${(stdout + stderr).trim() || 'no message'}`);
    }
    let reply: { Username?: string; Secret?: string };
    try {
      reply = JSON.parse(stdout) as typeof reply;
    } catch (err) {
      throw berthError('Unavailable', `credentials: ${bin} get answered something that is not JSON`, err);
    }
    if (!reply.Username || reply.Secret === undefined || reply.Username === '<token>') return undefined;
    return { username: reply.Username, password: reply.Secret };
  }

  private async write(ctx: Ctx, change: (auths: NonNullable<DockerConfigFile['auths']>) => boolean): Promise<boolean> {
    const file = this.files[0];
    if (!file) throw berthError('FailedPrecondition', 'credentials: no credential file configured');
    const doc = (await this.read(ctx, file)) ?? {};
    doc.auths ??= {};
    if (!change(doc.auths)) return false;
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.tmp-${process.pid}`;
    try {
      await writeFile(tmp, JSON.stringify(doc, null, '\t') + '\n', { mode: 0o600, signal: ctx.signal });
      await rename(tmp, file);
    } catch (err) {
      throw berthError('Unavailable', `credentials: writing ${file}: ${(err as Error).message}`, err);
    }
    return true;
  }

  async store(ctx: Ctx, registry: string, creds: Credentials): Promise<void> {
    const domain = authKeyDomain(registry);
    await this.write(ctx, (auths) => {
      for (const key of Object.keys(auths)) if (authKeyDomain(key) === domain) delete auths[key];
      auths[domain === DEFAULT_DOMAIN ? DOCKER_HUB_AUTH_KEY : domain] = {
        auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64'),
      };
      return true;
    });
  }

  async erase(ctx: Ctx, registry: string): Promise<void> {
    const domain = authKeyDomain(registry);
    const changed = await this.write(ctx, (auths) => {
      let found = false;
      for (const key of Object.keys(auths)) {
        if (authKeyDomain(key) === domain) {
          delete auths[key];
          found = true;
        }
      }
      return found;
    });
    if (!changed) throw berthError('NotFound', `credentials: not logged in to ${registry}`);
  }
}

/** A store holding credentials in memory, for tests and one-off calls with explicit credentials. */
export class StaticCredentialStore implements CredentialStore {
  private readonly map = new Map<string, Credentials>();

  constructor(entries: Record<string, Credentials> = {}) {
    for (const [k, v] of Object.entries(entries)) this.map.set(authKeyDomain(k), v);
  }

  async get(_ctx: Ctx, registry: string): Promise<Credentials | undefined> {
    return this.map.get(authKeyDomain(registry));
  }

  async store(_ctx: Ctx, registry: string, creds: Credentials): Promise<void> {
    this.map.set(authKeyDomain(registry), creds);
  }

  async erase(_ctx: Ctx, registry: string): Promise<void> {
    if (!this.map.delete(authKeyDomain(registry))) throw berthError('NotFound', `credentials: not logged in to ${registry}`);
  }
}

const requestCredentials = new AsyncLocalStorage<{ registry: string; creds: Credentials }>();

/**
 * Run `fn` with credentials for `registry` that take precedence over every
 * store, for the registry requests `fn` makes and nothing else: the CRI
 * hands each PullImage its own credentials (kubelet reads them from the
 * pod's image pull secrets) and they must neither be stored nor leak into
 * other requests. AsyncLocalStorage carries them down the call chain, so the
 * image service and the registry client keep their signatures.
 */
export function withRegistryCredentials<T>(registry: string, creds: Credentials, fn: () => Promise<T>): Promise<T> {
  return requestCredentials.run({ registry, creds }, fn);
}

/** The credentials `withRegistryCredentials` set for `registry` in the current call chain. */
export function requestCredentialsFor(registry: string): Credentials | undefined {
  const scoped = requestCredentials.getStore();
  return scoped && scoped.registry === registry ? scoped.creds : undefined;
}
