import { isDigest } from '../core/digest.ts';
import type { Digest } from '../core/digest.ts';
import { familiar, nameOf, parseNormalized, parseReference, formatReference } from '../core/reference.ts';

/**
 * Image names as the image service stores and prints them: records use the
 * normalized form (`docker.io/library/busybox:latest`, core/reference.ts),
 * the user sees the familiar one (`busybox:latest`). An untagged image's
 * record is named by its ID (`sha256:…`), docker's `<none>:<none>`.
 */
export interface ParsedName {
  /** Host and repository, no tag: `docker.io/library/busybox`. */
  repository: string;
  /** The repository path within its registry: `library/busybox`. */
  path: string;
  tag?: string;
  digest?: Digest;
}

export function parseName(input: string): ParsedName {
  const r = parseReference(input);
  return { repository: nameOf(r), path: r.path, tag: r.tag, digest: r.digest };
}

/** The full name to store: repository with tag (`latest` when neither tag nor digest is given) and/or digest. */
export function normalizeName(input: string): string {
  return formatReference(parseNormalized(input));
}

/** Docker's short form of a stored name: without `docker.io/` and `library/`. */
export function familiarName(full: string): string {
  return isDigest(full) ? full : familiar(full);
}

/** True for a name this service stores for an untagged image. */
export function isDanglingName(name: string): boolean {
  return isDigest(name);
}

/** Could `s` be an image ID prefix? */
export function looksLikeIdPrefix(s: string): boolean {
  return /^(sha256:)?[a-f0-9]{3,64}$/.test(s);
}
