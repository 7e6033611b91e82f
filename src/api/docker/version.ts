import { berthError } from '../../core/errors.ts';

/**
 * The Docker Engine API versions this door speaks. Paths may carry a
 * `/v1.NN` prefix; a request without one is served as API_VERSION.
 * Versions outside [MIN_API_VERSION, API_VERSION] answer 400 with docker's
 * own words (moby api/server/middleware/version.go).
 */
export const API_VERSION = '1.50';
export const MIN_API_VERSION = '1.24';

const versioned = /^\/v(\d+\.\d+)(\/.*)?$/;

/** `-1`, `0` or `1` as `a` is older than, equal to or newer than `b` ("1.9" < "1.24"). */
export function compareVersions(a: string, b: string): number {
  const [am, an] = a.split('.').map(Number);
  const [bm, bn] = b.split('.').map(Number);
  return am !== bm ? Math.sign(am - bm) : Math.sign(an - bn);
}

/** Split a request path into its API version and the path the routes see; InvalidArgument outside the range. */
export function splitVersion(pathname: string): { version: string; path: string } {
  const m = versioned.exec(pathname);
  if (!m) return { version: API_VERSION, path: pathname };
  const version = m[1];
  if (compareVersions(version, MIN_API_VERSION) < 0) {
    throw berthError('InvalidArgument', `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`);
  }
  if (compareVersions(version, API_VERSION) > 0) throw berthError('InvalidArgument', `client version ${version} is too new. Maximum supported API version is ${API_VERSION}`);
  return { version, path: m[2] ?? '/' };
}
