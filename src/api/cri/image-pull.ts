import { berthError, wrap } from '../../core/errors.ts';
import { DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN, parseNormalized } from '../../core/reference.ts';
import { DOCKER_HUB_API_HOST } from '../../distribution/hosts.ts';
import type { Credentials } from '../../distribution/credentials.ts';
import { withRegistryCredentials } from '../../distribution/credentials.ts';
import type { AuthConfig, ImageSpec, UnaryHandler } from './types.ts';

/**
 * PullImage: pull into the k8s.io namespace and answer the image ID, which
 * kubelet hands back in later calls. The request's AuthConfig applies to
 * this pull only, and only towards the image's own registry (or the one
 * `server_address` names). The sandbox config is not needed to pull.
 */
export const pullImage: UnaryHandler<{ image?: ImageSpec; auth?: AuthConfig }, object> = async (ctx, req, deps) => {
  const ref = req.image?.image ?? '';
  if (!ref) throw berthError('InvalidArgument', 'PullImage: no image reference given');
  const registry = parseNormalized(ref).domain;
  const creds = credentialsFor(req.auth, registry);
  const pull = () => deps.images.pull(ctx, ref);
  let name: string;
  try {
    name = creds ? await withRegistryCredentials(registry, creds, pull) : await pull();
  } catch (err) {
    throw wrap(err, `pull image "${ref}"`);
  }
  return { image_ref: (await deps.images.find(ctx, name)).id };
};

/**
 * containerd's reading of AuthConfig: none when server_address names
 * another registry; else username and password, or an identity token (as
 * the password of an empty user), or `auth` (base64 of "user:password").
 * A registry token is not supported, as in containerd; it pulls anonymously.
 */
export function credentialsFor(auth: AuthConfig | undefined, registry: string): Credentials | undefined {
  if (!auth) return undefined;
  if (auth.server_address && hostOf(auth.server_address) !== registry) return undefined;
  if (auth.username) return { username: auth.username, password: auth.password ?? '' };
  if (auth.identity_token) return { username: '', password: auth.identity_token };
  if (auth.auth) {
    const decoded = Buffer.from(auth.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw berthError('InvalidArgument', 'PullImage: auth.auth is not base64 of "username:password"');
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1).replace(/\0+$/, '') };
  }
  return undefined;
}

/** `https://host:5000/v1/` or `host:5000` -> `host:5000`; Docker Hub's other host names name its domain. */
function hostOf(address: string): string {
  const host = address.replace(/^[a-z]+:\/\//, '').split('/')[0];
  return host === LEGACY_DEFAULT_DOMAIN || host === DOCKER_HUB_API_HOST ? DEFAULT_DOMAIN : host;
}
