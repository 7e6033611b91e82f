import { berthError } from './errors.ts';
import type { Digest } from './digest.ts';

/**
 * Image references, parsed and normalized the way docker/distribution's
 * `reference` package does (ParseNormalizedNamed), so names mean what they
 * mean to docker:
 *
 *   busybox                    -> docker.io/library/busybox (tag latest added by `withDefaultTag`)
 *   user/app:1.0               -> docker.io/user/app:1.0
 *   localhost:5000/app@sha256:… -> localhost:5000/app@sha256:…
 *   [::1]:5000/ns/app:tag      -> IPv6 host with port
 *
 * Grammar (docker/distribution reference/reference.go):
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [domain '/'] path-component ['/' path-component]*
 *   domain    := host [':' port]; host is a DNS name, IPv4, or [IPv6]
 *   path-component := [a-z0-9]+ (separator [a-z0-9]+)*; separator := [_.] | __ | -+
 *   tag       := [\w][\w.-]{0,127}
 *
 * A first component is a domain only if it contains '.' or ':', is
 * `localhost`, or has uppercase letters (which docker then rejects as a
 * path). Errors are InvalidArgument with docker's wording, e.g.
 * `invalid reference format: repository name must be lowercase`.
 *
 * Example:
 *   const ref = withDefaultTag(parseReference('busybox'));
 *   formatReference(ref); // 'docker.io/library/busybox:latest'
 *   familiar(ref);        // 'busybox:latest'
 */
export interface Reference {
  /** Registry host with optional port: `docker.io`, `localhost:5000`, `[::1]:5000`. */
  readonly domain: string;
  /** Repository path within the registry: `library/busybox`. */
  readonly path: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

export const DEFAULT_DOMAIN = 'docker.io';
export const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
export const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';
const NAME_TOTAL_MAX = 255;

const alnum = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alnum}(?:${separator}${alnum})*`;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const ipv6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainName = `(?:${domainComponent}(?:\\.${domainComponent})*|${ipv6})(?::[0-9]+)?`;
const tagPattern = '[\\w][\\w.-]{0,127}';
const digestPattern = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';

const pathRe = new RegExp(`^${pathComponent}(?:/${pathComponent})*$`);
const domainRe = new RegExp(`^${domainName}$`);
const tagRe = new RegExp(`^${tagPattern}$`);
const digestRe = new RegExp(`^${digestPattern}$`);
const idRe = /^[a-f0-9]{64}$/;

const invalid = (detail?: string) =>
  berthError('InvalidArgument', detail ? `invalid reference format: ${detail}` : 'invalid reference format');

/** Split off `@digest` and `:tag` (a ':' after the last '/' is a tag, before it a port). */
function splitTagDigest(s: string): { name: string; tag?: string; digest?: string } {
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/') && colon > rest.lastIndexOf(']')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  return { name: rest, tag, digest };
}

function splitDomain(name: string): { domain: string; path: string } {
  const i = name.indexOf('/');
  let domain: string;
  let rest: string;
  const first = name.slice(0, i);
  if (i === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    rest = name;
  } else {
    domain = first;
    rest = name.slice(i + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !rest.includes('/')) rest = OFFICIAL_REPO_PREFIX + rest;
  return { domain, path: rest };
}

function checkDigest(d: string): Digest {
  if (!digestRe.test(d)) throw invalid('invalid digest');
  const [alg, hex] = d.split(':');
  if (alg === 'sha256' && hex.length !== 64) throw invalid('invalid checksum digest length');
  if (alg === 'sha512' && hex.length !== 128) throw invalid('invalid checksum digest length');
  if (alg !== 'sha256' && alg !== 'sha512') throw invalid(`unsupported digest algorithm "${alg}"`);
  if (hex !== hex.toLowerCase()) throw invalid('invalid checksum digest format');
  return d as Digest;
}

/**
 * Parse and normalize a reference as docker does. Does not add a default
 * tag (see `withDefaultTag`). InvalidArgument names what is wrong.
 */
export function parseReference(s: string): Reference {
  if (s === '') throw invalid('repository name must have at least one component');
  if (idRe.test(s)) {
    throw berthError('InvalidArgument', `invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`);
  }
  const { name, tag, digest } = splitTagDigest(s);
  if (name === '') throw invalid('repository name must have at least one component');
  const { domain, path } = splitDomain(name);
  if (path !== path.toLowerCase()) throw invalid('repository name must be lowercase');
  if (!domainRe.test(domain)) throw invalid(`invalid registry host "${domain}"`);
  if (path === '' || path.split('/').some((c) => c === '')) throw invalid('repository name must have at least one component');
  if (!pathRe.test(path)) throw invalid();
  if (domain.length + 1 + path.length > NAME_TOTAL_MAX) {
    throw invalid(`repository name must not be more than ${NAME_TOTAL_MAX} characters`);
  }
  if (tag !== undefined && !tagRe.test(tag)) throw invalid(`invalid tag "${tag}"`);
  const ref: { domain: string; path: string; tag?: string; digest?: Digest } = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = checkDigest(digest);
  return ref;
}

/** The reference with tag `latest` when it has neither tag nor digest. */
export function withDefaultTag(ref: Reference): Reference {
  return ref.tag === undefined && ref.digest === undefined ? { ...ref, tag: DEFAULT_TAG } : ref;
}

/** parseReference + withDefaultTag: what `pull NAME` means. */
export function parseNormalized(s: string): Reference {
  return withDefaultTag(parseReference(s));
}

/** `domain/path`, e.g. `docker.io/library/busybox`. */
export function nameOf(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The full normalized string: `docker.io/library/busybox:latest`, `host/app@sha256:…`. */
export function formatReference(ref: Reference): string {
  return nameOf(ref) + (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');
}

/** The short name docker shows: `busybox`, `user/app`, `localhost:5000/app`. */
export function familiarName(ref: Reference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return nameOf(ref);
  return ref.path.startsWith(OFFICIAL_REPO_PREFIX) && ref.path.indexOf('/', OFFICIAL_REPO_PREFIX.length) === -1
    ? ref.path.slice(OFFICIAL_REPO_PREFIX.length)
    : ref.path;
}

/** The display form: `docker.io/library/busybox:latest` -> `busybox:latest`. Accepts a string too. */
export function familiar(ref: Reference | string): string {
  const r = typeof ref === 'string' ? parseReference(ref) : ref;
  return familiarName(r) + (r.tag !== undefined ? `:${r.tag}` : '') + (r.digest !== undefined ? `@${r.digest}` : '');
}

/** True when `s` is a valid tag. */
export function isValidTag(s: string): boolean {
  return tagRe.test(s);
}

/** The same repository with `tag` (and no digest), as `tag SOURCE TARGET` needs. */
export function withTag(ref: Reference, tag: string): Reference {
  if (!tagRe.test(tag)) throw invalid(`invalid tag "${tag}"`);
  return { domain: ref.domain, path: ref.path, tag };
}

/** The same repository pinned to `digest` (tag dropped). */
export function withDigest(ref: Reference, digest: Digest): Reference {
  return { domain: ref.domain, path: ref.path, digest: checkDigest(digest) };
}

/**
 * The target of `tag`: a name with an optional tag, default `latest`; a
 * digest is refused since a tag cannot point at a digest reference.
 */
export function parseTagTarget(s: string): Reference {
  const ref = parseReference(s);
  if (ref.digest !== undefined) throw invalid('a tag target cannot contain a digest');
  return withDefaultTag(ref);
}

/**
 * What a user typed where an image id or a reference may stand (docker's
 * ParseAnyReference): a 64-hex id or `sha256:…` is an id, anything else a
 * reference.
 */
export function parseAnyReference(s: string): { id: Digest } | { ref: Reference } {
  if (idRe.test(s)) return { id: `sha256:${s}` };
  if (/^sha256:[a-f0-9]{64}$/.test(s)) return { id: s as Digest };
  return { ref: parseReference(s) };
}

/** True when two references name the same repository. */
export function sameRepository(a: Reference, b: Reference): boolean {
  return a.domain === b.domain && a.path === b.path;
}

/** The host part without port or IPv6 brackets: `[::1]:5000` -> `::1`. */
export function hostnameOf(domain: string): string {
  if (domain.startsWith('[')) return domain.slice(1, domain.indexOf(']'));
  const c = domain.lastIndexOf(':');
  return c >= 0 ? domain.slice(0, c) : domain;
}
