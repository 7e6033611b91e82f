import type { Ctx } from '../core/context.ts';
import { berthError } from '../core/errors.ts';
import type { Credentials, CredentialStore } from './credentials.ts';
import { requestCredentialsFor } from './credentials.ts';
import type { RegistryEndpoint } from './hosts.ts';
import type { HttpResponse, Transport } from './transport.ts';
import { readCapped } from './transport.ts';

/**
 * Registry authentication: anonymous, Basic, and Bearer tokens (the
 * distribution token spec: a 401 with `WWW-Authenticate: Bearer realm=...,
 * service=..., scope=...`, a GET to the realm with service and scope, Basic
 * credentials at the token endpoint when we have them). Challenges are
 * remembered per endpoint host and tokens cached per scope set until they
 * expire, so only the first request of a pull sees a 401.
 *
 * Errors: Unauthenticated when credentials are missing or refused, naming
 * the registry; Unavailable when the token endpoint cannot be reached.
 */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parse a WWW-Authenticate header (RFC 7235): several challenges, quoted or token params. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const text = Array.isArray(header) ? header.join(', ') : (header ?? '');
  const out: Challenge[] = [];
  let current: Challenge | undefined;
  let i = 0;
  const skip = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === ',' || text[i] === '\t')) i++;
  };
  const token = () => {
    const start = i;
    while (i < text.length && !/[\s,="]/.test(text[i])) i++;
    return text.slice(start, i);
  };
  while (true) {
    skip();
    if (i >= text.length) break;
    const word = token();
    if (word === '') {
      i++;
      continue;
    }
    let j = i;
    while (text[j] === ' ') j++;
    if (text[j] === '=' && current) {
      i = j + 1;
      while (text[i] === ' ') i++;
      let value = '';
      if (text[i] === '"') {
        i++;
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < text.length) i++;
          value += text[i++];
        }
        i++;
      } else {
        value = token();
      }
      current.params[word.toLowerCase()] = value;
    } else {
      current = { scheme: word.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}

/** `repository:NAME:ACTIONS` */
export function repositoryScope(path: string, actions: 'pull' | 'push' | 'pull,push'): string {
  return `repository:${path}:${actions}`;
}

interface CachedToken {
  token: string;
  expires: number;
}

const basicHeader = (c: Credentials) => `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;

export class Authorizer {
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, CachedToken>();
  private readonly transport: Transport;
  private readonly credentials?: CredentialStore;

  constructor(transport: Transport, credentials?: CredentialStore) {
    this.transport = transport;
    this.credentials = credentials;
  }

  private async creds(ctx: Ctx, ep: RegistryEndpoint, explicit?: Credentials): Promise<Credentials | undefined> {
    return explicit ?? requestCredentialsFor(ep.registry) ?? (await this.credentials?.get(ctx, ep.registry));
  }

  /** The Authorization header for a request to `ep` needing `scopes`, if a challenge is known. */
  async header(ctx: Ctx, ep: RegistryEndpoint, scopes: string[], explicit?: Credentials): Promise<string | undefined> {
    const host = new URL(ep.url).host;
    const ch = this.challenges.get(host);
    if (!ch) return undefined;
    if (ch.scheme === 'basic') {
      const c = await this.creds(ctx, ep, explicit);
      return c ? basicHeader(c) : undefined;
    }
    if (ch.scheme !== 'bearer') return undefined;
    // A token got with one request's credentials is never reused by a request without them.
    const who = explicit ?? requestCredentialsFor(ep.registry);
    const key = `${host}|${[...scopes].sort().join(' ')}|${who ? `as:${who.username}` : ''}`;
    const cached = this.tokens.get(key);
    if (cached && cached.expires > Date.now()) return `Bearer ${cached.token}`;
    const tok = await this.fetchToken(ctx, ep, ch, scopes, await this.creds(ctx, ep, explicit));
    this.tokens.set(key, tok);
    return `Bearer ${tok.token}`;
  }

  /**
   * Record the challenge of a 401. Returns true when a retry with new
   * authorization may succeed (a challenge we had not answered yet).
   */
  async onUnauthorized(ctx: Ctx, ep: RegistryEndpoint, res: HttpResponse, scopes: string[], sent: string | undefined, explicit?: Credentials): Promise<boolean> {
    const host = new URL(ep.url).host;
    const challenges = parseChallenges(res.headers['www-authenticate']);
    const ch = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    if (!ch) return false;
    const prev = this.challenges.get(host);
    this.challenges.set(host, ch);
    if (sent === undefined) {
      if (ch.scheme === 'basic' && !(await this.creds(ctx, ep, explicit))) return false;
      return true;
    }
    // A bearer token was refused: drop it; one more try only if the challenge changed.
    for (const k of this.tokens.keys()) if (k.startsWith(`${host}|`)) this.tokens.delete(k);
    return prev === undefined || prev.scheme !== ch.scheme || JSON.stringify(prev.params) !== JSON.stringify(ch.params);
  }

  private async fetchToken(ctx: Ctx, ep: RegistryEndpoint, ch: Challenge, scopes: string[], creds: Credentials | undefined): Promise<CachedToken> {
    const realm = ch.params.realm;
    if (!realm) throw berthError('Unauthenticated', `registry ${ep.registry}: bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw berthError('Unauthenticated', `registry ${ep.registry}: invalid token realm "${realm}"`);
    }
    if (ch.params.service) url.searchParams.set('service', ch.params.service);
    const all = new Set(scopes);
    if (ch.params.scope) for (const s of ch.params.scope.split(' ')) all.add(s);
    for (const s of all) url.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (creds) headers.authorization = basicHeader(creds);
    const sameHost = url.host === new URL(ep.url).host;
    const res = await this.transport.send(ctx, { method: 'GET', url: url.toString(), headers }, sameHost ? ep : undefined);
    const body = await readCapped(res, 1 << 20, `registry ${ep.registry}: token response`);
    if (res.status === 401 || res.status === 403) {
      throw berthError('Unauthenticated', creds
        ? `registry ${ep.registry}: unauthorized: incorrect username or password`
        : `registry ${ep.registry}: unauthorized: authentication required`);
    }
    if (res.status < 200 || res.status >= 300) {
      throw berthError(res.status >= 500 ? 'Unavailable' : 'Unauthenticated', `registry ${ep.registry}: token endpoint ${url.host} answered ${res.status}`);
    }
    let doc: { token?: string; access_token?: string; expires_in?: number };
    try {
      doc = JSON.parse(body.toString('utf8')) as typeof doc;
    } catch {
      throw berthError('Unknown', `registry ${ep.registry}: token endpoint ${url.host} returned invalid JSON`);
    }
    const token = doc.token ?? doc.access_token;
    if (!token) throw berthError('Unknown', `registry ${ep.registry}: token endpoint ${url.host} returned no token`);
    // The spec's default lifetime is 60s; renew a little early.
    const ttl = Math.max(10, (doc.expires_in ?? 60) - 5) * 1000;
    return { token, expires: Date.now() + ttl };
  }
}
