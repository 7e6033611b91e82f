import { berthError } from '../core/errors.ts';
import { isDigest } from '../core/digest.ts';
import type { Digest } from '../core/digest.ts';

/**
 * Image names as the image service stores and prints them: records use the
 * normalized form (`docker.io/library/busybox:latest`), the user sees the
 * familiar one (`busybox:latest`). Docker's rules: a first component with a
 * dot or colon, or `localhost`, is a registry host; otherwise docker.io, and
 * one-component names live under `library/`.
 */
export interface ParsedName {
  /** Host and repository, no tag: `docker.io/library/busybox`. */
  repository: string;
  domain: string;
  path: string;
  tag?: string;
  digest?: Digest;
}

const pathComponent = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagPattern = /^[\w][\w.-]{0,127}$/;
const domainPattern = /^(?:\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::\d+)?$/;

export function parseName(input: string): ParsedName {
  const bad = (why: string) => berthError('InvalidArgument', `invalid reference format "${input}": ${why}`);
  if (!input || input.length > 255) throw bad('empty or longer than 255 characters');
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) throw bad(`"${d}" is not a digest`);
    digest = d;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagPattern.test(tag)) throw bad(`"${tag}" is not a valid tag`);
  }
  let domain = 'docker.io';
  let path = rest;
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['))) {
    if (!domainPattern.test(first)) throw bad(`"${first}" is not a valid registry host`);
    domain = first;
    path = rest.slice(slash + 1);
  }
  if (domain === 'index.docker.io') domain = 'docker.io';
  if (domain === 'docker.io' && !path.includes('/')) path = `library/${path}`;
  for (const c of path.split('/')) {
    if (!pathComponent.test(c)) throw bad(c !== c.toLowerCase() ? 'repository name must be lowercase' : `"${c}" is not a valid name component`);
  }
  return { repository: `${domain}/${path}`, domain, path, tag, digest };
}

/** The full name to store: repository with tag (`latest` when neither tag nor digest is given) and/or digest. */
export function normalizeName(input: string): string {
  const p = parseName(input);
  const tag = p.tag ?? (p.digest ? undefined : 'latest');
  return `${p.repository}${tag ? `:${tag}` : ''}${p.digest ? `@${p.digest}` : ''}`;
}

/** Docker's short form: without `docker.io/` and `library/`. */
export function familiarName(full: string): string {
  let s = full;
  if (s.startsWith('docker.io/')) s = s.slice('docker.io/'.length);
  if (s.startsWith('library/') && !s.slice('library/'.length).includes('/')) s = s.slice('library/'.length);
  return s;
}

/** True for a name this service stores for an untagged image. */
export function isDanglingName(name: string): boolean {
  return isDigest(name);
}

/** Does `s` look like a reference (as opposed to an ID prefix)? */
export function looksLikeIdPrefix(s: string): boolean {
  return /^(sha256:)?[a-f0-9]{3,64}$/.test(s);
}
