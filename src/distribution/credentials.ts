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
  [key: string]: unknown;
}

/**
 * Credentials in docker's config.json format (`auths` with base64
 * `user:password` in `auth`). Reads every file in order and uses the first
 * that names the registry; writes go to the first file (created 0600),
 * keeping the other keys it holds. `credsStore` / `credHelpers` are not
 * consulted.
 */
export class DockerConfigCredentialStore implements CredentialStore {
  readonly files: string[];

  constructor(files: string[]) {
    this.files = files;
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
