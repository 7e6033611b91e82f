import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'smol-toml';
import type { Ctx } from '../core/context.ts';
import { berthError, hasErrno } from '../core/errors.ts';
import { DEFAULT_DOMAIN, hostnameOf } from '../core/reference.ts';

/**
 * Which endpoints serve a registry, in the order to try them, from a
 * containerd-style hosts directory: `<dir>/<host[:port]>/hosts.toml`
 * (falling back to `<dir>/_default/hosts.toml`).
 *
 *   server = "https://upstream.example"          # last resort, all capabilities
 *   [host."https://mirror.example"]
 *     capabilities = ["pull", "resolve"]         # default: all three
 *     skip_verify = true
 *     ca = "/etc/berth/certs.d/mirror.crt"       # or a list; relative to the host dir
 *     override_path = false                      # true: the URL path already ends where /v2 would
 *     [host."https://mirror.example".header]
 *       x-custom = "1"
 *   [host."http://plain.example:5000"]           # http:// means plain HTTP
 *
 * Without a file, a registry is served by `https://HOST` (docker.io by its
 * API host). Loopback registries (localhost, 127.0.0.0/8, ::1) are
 * insecure by default, as in Docker: TLS is not verified, and their
 * endpoint has `plainHttpFallback` so the client drops to HTTP when TLS
 * fails.
 *
 * Errors: InvalidArgument naming the file for bad TOML or bad values.
 *
 * Example:
 *   const eps = await resolveHosts(ctx, '/etc/berth/certs.d', 'docker.io');
 *   // [{ url: 'https://mirror.example/v2', capabilities: ['pull','resolve'], ... },
 *   //  { url: 'https://registry-1.docker.io/v2', capabilities: ['pull','resolve','push'], ... }]
 */
export type Capability = 'pull' | 'resolve' | 'push';
export const ALL_CAPABILITIES: readonly Capability[] = ['pull', 'resolve', 'push'];

/** docker.io's API host. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';

export interface RegistryEndpoint {
  /** The registry this endpoint serves (the reference's domain). */
  registry: string;
  /** Base URL of the API, ending in `/v2` (unless override_path): `https://mirror.example/v2`. */
  url: string;
  capabilities: Capability[];
  skipVerify: boolean;
  /** CA bundle file paths to trust in addition to the system's. */
  ca: string[];
  /** Extra request headers. */
  header: Record<string, string>;
  /** A loopback registry with no configuration: try HTTPS (unverified), drop to HTTP if TLS fails. */
  plainHttpFallback: boolean;
}

/** True for localhost, 127.0.0.0/8 and ::1 (with or without a port). */
export function isLoopbackRegistry(domain: string): boolean {
  const host = hostnameOf(domain).toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function defaultServer(domain: string): string {
  return `https://${domain === DEFAULT_DOMAIN ? DOCKER_HUB_API_HOST : domain}`;
}

function apiUrl(raw: string, overridePath: boolean, where: string): string {
  let u: URL;
  try {
    u = new URL(raw.includes('://') ? raw : `https://${raw}`);
  } catch {
    throw berthError('InvalidArgument', `${where}: invalid host URL "${raw}"`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw berthError('InvalidArgument', `${where}: host URL "${raw}" must be http or https`);
  let p = u.pathname.replace(/\/+$/, '');
  if (!overridePath && !p.endsWith('/v2')) p += '/v2';
  return `${u.protocol}//${u.host}${p}`;
}

function stringList(v: unknown, key: string, where: string): string[] {
  if (v === undefined) return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw berthError('InvalidArgument', `${where}: "${key}" must be a string or a list of strings`);
}

function endpointOf(domain: string, url: string, t: Record<string, unknown>, where: string, hostDir: string): RegistryEndpoint {
  const caps = t.capabilities === undefined ? [...ALL_CAPABILITIES] : stringList(t.capabilities, 'capabilities', where);
  for (const c of caps) {
    if (!ALL_CAPABILITIES.includes(c as Capability)) throw berthError('InvalidArgument', `${where}: unknown capability "${c}"`);
  }
  if (t.skip_verify !== undefined && typeof t.skip_verify !== 'boolean') throw berthError('InvalidArgument', `${where}: "skip_verify" must be a boolean`);
  if (t.override_path !== undefined && typeof t.override_path !== 'boolean') throw berthError('InvalidArgument', `${where}: "override_path" must be a boolean`);
  const header: Record<string, string> = {};
  if (t.header !== undefined) {
    if (typeof t.header !== 'object' || t.header === null || Array.isArray(t.header)) throw berthError('InvalidArgument', `${where}: "header" must be a table`);
    for (const [k, v] of Object.entries(t.header)) header[k.toLowerCase()] = stringList(v, `header.${k}`, where).join(', ');
  }
  return {
    registry: domain,
    url: apiUrl(url, t.override_path === true, where),
    capabilities: caps as Capability[],
    skipVerify: t.skip_verify === true,
    ca: stringList(t.ca, 'ca', where).map((c) => path.resolve(hostDir, c)),
    header,
    plainHttpFallback: false,
  };
}

/**
 * Parse one hosts.toml for registry `domain`. Pure: `hostDir` only resolves
 * relative CA paths and names the file in errors.
 */
export function parseHostsToml(domain: string, text: string, hostDir = '.'): RegistryEndpoint[] {
  const where = path.join(hostDir, 'hosts.toml');
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (err) {
    throw berthError('InvalidArgument', `${where}: ${(err as Error).message.split('\n')[0]}`);
  }
  const out: RegistryEndpoint[] = [];
  const hosts = doc.host;
  if (hosts !== undefined) {
    if (typeof hosts !== 'object' || hosts === null || Array.isArray(hosts)) throw berthError('InvalidArgument', `${where}: "host" must be a table`);
    for (const [url, t] of Object.entries(hosts as Record<string, unknown>)) {
      if (typeof t !== 'object' || t === null) throw berthError('InvalidArgument', `${where}: host "${url}" must be a table`);
      out.push(endpointOf(domain, url, t as Record<string, unknown>, `${where}: host "${url}"`, hostDir));
    }
  }
  if (doc.server !== undefined && typeof doc.server !== 'string') throw berthError('InvalidArgument', `${where}: "server" must be a string`);
  const server = (doc.server as string | undefined) ?? defaultServer(domain);
  // The top-level keys configure the server itself, as in containerd.
  out.push(endpointOf(domain, server, { ...doc, host: undefined, server: undefined, capabilities: doc.capabilities ?? [...ALL_CAPABILITIES] }, where, hostDir));
  if (doc.server === undefined && isLoopbackRegistry(domain)) {
    const ep = out[out.length - 1];
    ep.plainHttpFallback = true;
    ep.skipVerify = true;
  }
  return out;
}

/** The endpoints for `domain` when no hosts.toml names it. */
export function defaultEndpoints(domain: string): RegistryEndpoint[] {
  return [{
    registry: domain,
    url: `${defaultServer(domain)}/v2`,
    capabilities: [...ALL_CAPABILITIES],
    // Docker treats loopback registries as insecure: TLS without verification, or plain HTTP.
    skipVerify: isLoopbackRegistry(domain),
    ca: [],
    header: {},
    plainHttpFallback: isLoopbackRegistry(domain),
  }];
}

/**
 * Endpoints for `domain` from `<configPath>/<domain>/hosts.toml`, then
 * `<configPath>/_default/hosts.toml`, then the defaults.
 */
export async function resolveHosts(ctx: Ctx, configPath: string, domain: string): Promise<RegistryEndpoint[]> {
  if (configPath) {
    for (const dirName of [domain, '_default']) {
      const dir = path.join(configPath, dirName);
      let text: string;
      try {
        text = await readFile(path.join(dir, 'hosts.toml'), { encoding: 'utf8', signal: ctx.signal });
      } catch (err) {
        if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ENOTDIR')) continue;
        throw berthError('Unavailable', `registry hosts: reading ${path.join(dir, 'hosts.toml')}: ${(err as Error).message}`, err);
      }
      return parseHostsToml(domain, text, dir);
    }
  }
  return defaultEndpoints(domain);
}
