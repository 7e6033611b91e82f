import { Readable } from 'node:stream';
import type { Ctx } from '../core/context.ts';
import { isIndexType, isManifestType, type Descriptor } from '../core/media-types.ts';
import { formatReference, parseNormalized, withDigest, type Reference } from '../core/reference.ts';
import type { RegistryClient } from './client.ts';
import { authKeyDomain, type CredentialStore } from './credentials.ts';

/**
 * The registry client addressed by reference strings, the shape the image
 * service's `RegistryRole` and `CredentialRole` ask for, so daemon/ can wire
 * it in directly.
 *
 *   resolve(ctx, 'busybox')           -> { name: 'docker.io/library/busybox:latest', descriptor }
 *   fetch(ctx, name, desc, offset?)   -> manifests and indexes as verified bytes, blobs as a resuming stream
 *   push(ctx, name, desc, body, onProgress, mountFrom) -> 'exists' when the registry already had the blob;
 *                                         manifests go to the name's tag (or their digest)
 *   login(ctx, host, user, password)  -> Unauthenticated when refused
 *
 * Example:
 *   const registry = new RegistryByName(new RegistryClient({ config, credentials }));
 *   const { name, descriptor } = await registry.resolve(ctx, 'localhost:5000/app');
 */
export class RegistryByName {
  readonly client: RegistryClient;

  constructor(client: RegistryClient) {
    this.client = client;
  }

  async resolve(ctx: Ctx, ref: string): Promise<{ name: string; descriptor: Descriptor }> {
    const r = parseNormalized(ref);
    return { name: formatReference(r), descriptor: await this.client.resolve(ctx, r) };
  }

  /** `offset` resumes a blob (a partial content write); manifests always come whole. */
  async fetch(ctx: Ctx, ref: string, desc: Descriptor, offset = 0): Promise<Readable> {
    const r = parseNormalized(ref);
    if (isManifestType(desc.mediaType) || isIndexType(desc.mediaType)) {
      return Readable.from([await this.client.fetchManifestBytes(ctx, r, desc)]);
    }
    return this.client.fetchBlob(ctx, r, desc, offset);
  }

  async push(
    ctx: Ctx,
    ref: string,
    desc: Descriptor,
    body: (offset: number) => Promise<Readable>,
    onProgress?: (bytes: number) => void,
    mountFrom?: string[],
  ): Promise<'exists' | 'mounted' | 'uploaded'> {
    const r: Reference = parseNormalized(ref);
    if (isManifestType(desc.mediaType) || isIndexType(desc.mediaType)) {
      const chunks: Buffer[] = [];
      for await (const c of await body(0)) chunks.push(c as Buffer);
      const target = r.tag !== undefined ? { domain: r.domain, path: r.path, tag: r.tag } : withDigest(r, desc.digest);
      await this.client.pushManifest(ctx, target, desc.mediaType, Buffer.concat(chunks));
      onProgress?.(desc.size);
      return 'uploaded';
    }
    return this.client.pushBlob(ctx, r, desc, (offset) => body(offset), { onProgress, mountFrom });
  }

  login(ctx: Ctx, host: string, username: string, password: string): Promise<void> {
    return this.client.login(ctx, authKeyDomain(host), { username, password });
  }
}

/** A CredentialStore in the image service's `CredentialRole` shape (no ctx; erase answers whether it removed anything). */
export function credentialsByHost(store: CredentialStore, ctx: Ctx): {
  store(host: string, username: string, password: string): Promise<void>;
  erase(host: string): Promise<boolean>;
} {
  return {
    store: (host, username, password) => store.store(ctx, host, { username, password }),
    erase: async (host) => {
      try {
        await store.erase(ctx, host);
        return true;
      } catch (err) {
        if ((err as { kind?: string }).kind === 'NotFound') return false;
        throw err;
      }
    },
  };
}
