import { berthError } from '../../core/errors.ts';
import { DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN, parseNormalized } from '../../core/reference.ts';
import { withRegistryCredentials, type Credentials } from '../../distribution/credentials.ts';
import { DOCKER_HUB_API_HOST } from '../../distribution/hosts.ts';

/**
 * docker's `X-Registry-Auth`: base64 (URL-safe or not) of a JSON AuthConfig
 * (`username`, `password`, `auth`, `serveraddress`, `identitytoken`). It
 * holds for this request only and only towards the image's own registry
 * (or the one `serveraddress` names), as dockerd uses it; the credentials
 * of `berth login` apply otherwise. The docker CLI sends `e30=` (`{}`) when
 * it has none.
 */
export interface DockerAuthConfig {
  username?: string;
  password?: string;
  auth?: string;
  serveraddress?: string;
  identitytoken?: string;
}

export function credentialsOf(header: string | string[] | undefined, ref: string): Credentials | undefined {
  if (!header || Array.isArray(header)) return undefined;
  let a: DockerAuthConfig;
  try {
    a = JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as DockerAuthConfig;
  } catch {
    throw berthError('InvalidArgument', 'X-Registry-Auth is not base64 of a JSON auth config');
  }
  if (!a || typeof a !== 'object') return undefined;
  const registry = parseNormalized(ref).domain;
  if (a.serveraddress && hostOf(a.serveraddress) !== registry) return undefined;
  if (a.identitytoken) return { username: '', password: a.identitytoken };
  if (a.username) return { username: a.username, password: a.password ?? '' };
  if (a.auth) {
    const decoded = Buffer.from(a.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw berthError('InvalidArgument', 'X-Registry-Auth: auth is not base64 of "username:password"');
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return undefined;
}

/** Run `fn` (a pull or push of `ref`) with the request's credentials, when it has any. */
export function withRequestAuth<T>(header: string | string[] | undefined, ref: string, fn: () => Promise<T>): Promise<T> {
  const creds = credentialsOf(header, ref);
  return creds ? withRegistryCredentials(parseNormalized(ref).domain, creds, fn) : fn();
}

/** `https://host:5000/v1/` or `host:5000` -> `host:5000`; Docker Hub's other host names name its domain. */
function hostOf(address: string): string {
  const host = address.replace(/^[a-z]+:\/\//, '').split('/')[0];
  return host === LEGACY_DEFAULT_DOMAIN || host === DOCKER_HUB_API_HOST ? DEFAULT_DOMAIN : host;
}
