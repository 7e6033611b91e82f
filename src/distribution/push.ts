import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Ctx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { berthError } from '../core/errors.ts';
import type { Descriptor } from '../core/media-types.ts';
import { nameOf, type Reference } from '../core/reference.ts';
import { repositoryScope } from './auth.ts';
import type { Credentials } from './credentials.ts';
import type { RegistryEndpoint } from './hosts.ts';
import { responseError, type Requester } from './requester.ts';
import { discard, type HttpResponse } from './transport.ts';

/**
 * Push, per the distribution spec: HEAD to skip blobs the repository has,
 * a cross-repository mount when the blob lives in another repository of
 * the same registry, else an upload session (POST) finished by one PUT for
 * blobs up to `uploadChunkBytes`, or by PATCH chunks of that size and a
 * closing PUT for larger ones (chunks are buffered, so each can be retried).
 * Manifests go up last with their own media type as Content-Type.
 *
 * Errors: as the client's; DataLoss when the registry reports a different
 * digest than the one pushed.
 */
export type BlobSource = (offset: number) => Readable | Promise<Readable>;

export interface PushBlobOptions {
  /** Repository paths of the same registry that may already hold the blob. */
  mountFrom?: string[];
  /** Called with the total bytes of this blob handled so far. */
  onProgress?: (bytes: number) => void;
}

export type PushBlobResult = 'exists' | 'mounted' | 'uploaded';

const pushScopes = (ref: Reference, from: string[] = []) => [
  repositoryScope(ref.path, 'pull,push'),
  ...from.filter((f) => f !== ref.path).map((f) => repositoryScope(f, 'pull')),
];

async function pushEndpoint(r: Requester, ctx: Ctx, ref: Reference): Promise<RegistryEndpoint> {
  return (await r.endpoints(ctx, ref.domain, 'push'))[0];
}

export async function blobExists(r: Requester, ctx: Ctx, ref: Reference, desc: Descriptor): Promise<boolean> {
  const ep = await pushEndpoint(r, ctx, ref);
  const res = await r.on(ctx, ep, pushScopes(ref), { method: 'HEAD', path: `/${ref.path}/blobs/${desc.digest}` });
  discard(res);
  if (res.status === 200) return true;
  if (res.status === 404) return false;
  throw await responseError(res, `${nameOf(ref)}@${desc.digest}`);
}

function locationOf(res: HttpResponse, ep: RegistryEndpoint, what: string): URL {
  const loc = res.headers.location;
  if (typeof loc !== 'string' || loc === '') throw berthError('Unknown', `${what}: registry ${ep.registry} started an upload without a Location`);
  return new URL(loc, ep.url);
}

async function expectStatus(res: HttpResponse, ok: number[], what: string): Promise<void> {
  if (!ok.includes(res.status)) throw await responseError(res, what);
  discard(res);
}

export async function pushBlob(r: Requester, ctx: Ctx, ref: Reference, desc: Descriptor, open: BlobSource, opts: PushBlobOptions = {}): Promise<PushBlobResult> {
  const what = `${nameOf(ref)}@${desc.digest}`;
  const ep = await pushEndpoint(r, ctx, ref);
  const scopes = pushScopes(ref, opts.mountFrom);
  if (await blobExists(r, ctx, ref, desc)) {
    opts.onProgress?.(desc.size);
    return 'exists';
  }
  let session: URL | undefined;
  for (const from of opts.mountFrom ?? []) {
    if (from === ref.path) continue;
    const q = new URLSearchParams({ mount: desc.digest, from });
    const res = await r.on(ctx, ep, scopes, { method: 'POST', path: `/${ref.path}/blobs/uploads/?${q}`, body: Buffer.alloc(0) });
    if (res.status === 201) {
      discard(res);
      opts.onProgress?.(desc.size);
      return 'mounted';
    }
    if (res.status === 202) {
      // Not mountable from there; the registry opened a normal upload instead.
      session = locationOf(res, ep, what);
      discard(res);
      break;
    }
    discard(res);
  }
  if (!session) {
    const res = await r.on(ctx, ep, scopes, { method: 'POST', path: `/${ref.path}/blobs/uploads/`, body: Buffer.alloc(0) });
    if (res.status !== 202) throw await responseError(res, what);
    session = locationOf(res, ep, what);
    discard(res);
  }
  const source = await open(0);
  let done: HttpResponse;
  if (desc.size <= r.cfg.uploadChunkBytes) {
    const body = await readAllBounded(source, desc.size, what);
    opts.onProgress?.(body.length);
    const put = withDigest(session, desc.digest);
    done = await r.on(ctx, ep, scopes, { method: 'PUT', url: put.toString(), headers: { 'content-type': 'application/octet-stream' }, body });
  } else {
    let offset = 0;
    for await (const chunk of chunks(source, r.cfg.uploadChunkBytes)) {
      const res = await r.on(ctx, ep, scopes, {
        method: 'PATCH',
        url: session.toString(),
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}` },
        body: chunk,
      });
      if (res.status !== 202) throw await responseError(res, what);
      session = locationOf(res, ep, what);
      discard(res);
      offset += chunk.length;
      opts.onProgress?.(offset);
    }
    if (offset !== desc.size) throw berthError('DataLoss', `${what}: source gave ${offset} bytes, descriptor says ${desc.size}`);
    done = await r.on(ctx, ep, scopes, { method: 'PUT', url: withDigest(session, desc.digest).toString(), body: Buffer.alloc(0) });
  }
  await expectStatus(done, [201, 204], what);
  const echoed = done.headers['docker-content-digest'];
  if (typeof echoed === 'string' && echoed !== desc.digest) throw berthError('DataLoss', `${what}: registry stored digest ${echoed}`);
  return 'uploaded';
}

function withDigest(session: URL, digest: string): URL {
  const u = new URL(session);
  u.searchParams.set('digest', digest);
  return u;
}

async function readAllBounded(src: Readable, size: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of src as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > size) {
      src.destroy();
      throw berthError('DataLoss', `${what}: source gave more than the ${size} bytes the descriptor says`);
    }
    parts.push(c);
  }
  if (n !== size) throw berthError('DataLoss', `${what}: source gave ${n} bytes, descriptor says ${size}`);
  return Buffer.concat(parts);
}

/** Re-chunk a stream into buffers of exactly `size` bytes (the last may be shorter). */
async function* chunks(src: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let n = 0;
  for await (const c of src as AsyncIterable<Buffer>) {
    let rest = c;
    while (rest.length > 0) {
      const take = Math.min(size - n, rest.length);
      parts.push(rest.subarray(0, take));
      n += take;
      rest = rest.subarray(take);
      if (n === size) {
        yield Buffer.concat(parts);
        parts = [];
        n = 0;
      }
    }
  }
  if (n > 0) yield Buffer.concat(parts);
}

export async function pushManifest(r: Requester, ctx: Ctx, ref: Reference, mediaType: string, bytes: Buffer): Promise<Descriptor> {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
  if (ref.digest && ref.digest !== digest) throw berthError('InvalidArgument', `${nameOf(ref)}@${ref.digest}: manifest has digest ${digest}`);
  const target = ref.tag ?? digest;
  const what = `${nameOf(ref)}:${target}`;
  const ep = await pushEndpoint(r, ctx, ref);
  const res = await r.on(ctx, ep, pushScopes(ref), {
    method: 'PUT',
    path: `/${ref.path}/manifests/${target}`,
    headers: { 'content-type': mediaType },
    body: bytes,
  });
  await expectStatus(res, [201, 200, 204], what);
  const echoed = res.headers['docker-content-digest'];
  if (typeof echoed === 'string' && echoed !== digest) throw berthError('DataLoss', `${what}: registry stored digest ${echoed}, pushed ${digest}`);
  return { mediaType, digest, size: bytes.length };
}

/**
 * Check credentials against `GET /v2/`. A registry that answers 200 without
 * asking is fine too (it needs no login).
 */
export async function login(r: Requester, ctx: Ctx, domain: string, creds: Credentials): Promise<void> {
  const eps = await r.endpoints(ctx, domain, 'push').catch(() => r.endpoints(ctx, domain, 'pull'));
  const ep = eps[eps.length - 1];
  try {
    const res = await r.on(ctx, ep, [], { method: 'GET', path: '/' }, { credentials: creds });
    if (res.status === 200) {
      discard(res);
      return;
    }
    throw await responseError(res, `login to ${domain}`);
  } catch (err) {
    if ((err as { kind?: string }).kind === 'Unauthenticated') {
      throw berthError('Unauthenticated', `login to ${domain}: unauthorized: incorrect username or password`, err);
    }
    throw err;
  }
}
