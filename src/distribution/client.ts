import { createHash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Ctx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { berthError, isBerthError } from '../core/errors.ts';
import {
  MANIFEST_ACCEPT, MediaTypes, isIndexType, isManifestType,
  type Descriptor, type ImageIndex, type ImageManifest,
} from '../core/media-types.ts';
import { formatReference, nameOf, type Reference } from '../core/reference.ts';
import { Authorizer, repositoryScope } from './auth.ts';
import { distributionConfig, type DistributionConfig } from './config.ts';
import type { Credentials, CredentialStore } from './credentials.ts';
import { resolveHosts, type RegistryEndpoint } from './hosts.ts';
import { Requester, Semaphore, responseError } from './requester.ts';
import { Transport, discard, markRetryable, networkError, readCapped } from './transport.ts';
import * as push from './push.ts';

/**
 * The OCI distribution client: what `pull` and `push` need from a registry.
 *
 *   resolve(ref)                  -> the descriptor a tag or digest names (HEAD, falling back to GET)
 *   fetchManifest / fetchIndex    -> parsed JSON plus the exact bytes, digest-verified, 4 MiB cap
 *   fetchBlob(ref, desc, offset)  -> a stream of a blob from `offset`; interrupted or stalled
 *                                    transfers resume with Range; digest checked on request
 *   blobExists / pushBlob / pushManifest -> push (see push.ts)
 *   login(domain, creds)          -> checks credentials against GET /v2/
 *
 * Endpoints come from the hosts directory (mirrors first), credentials from
 * the CredentialStore. Blob transfers are limited to
 * `max_concurrent_downloads` / `max_concurrent_uploads` at once.
 *
 * Errors: NotFound `docker.io/library/x:y: not found`; Unavailable naming the
 * host when a registry cannot be reached (after bounded retries);
 * Unauthenticated / PermissionDenied from the registry; DataLoss for a digest
 * or size mismatch; ResourceExhausted for a manifest above the cap; Unknown
 * for answers that are not what the protocol promises; Canceled on abort.
 *
 * Example:
 *   const client = new RegistryClient({ credentials: new DockerConfigCredentialStore(files) });
 *   const ref = parseNormalized('localhost:5000/app:1');
 *   let desc = await client.resolve(ctx, ref);
 *   if (isIndexType(desc.mediaType)) desc = selectPlatform((await client.fetchIndex(ctx, ref, desc)).index);
 *   const { manifest } = await client.fetchManifest(ctx, ref, desc);
 *   await pipeline(await client.fetchBlob(ctx, ref, manifest.layers[0]), writer.stream());
 *   client.close();
 */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface RegistryClientOptions {
  config?: Partial<DistributionConfig>;
  credentials?: CredentialStore;
  /** Endpoints of a registry domain; default: the hosts directory `config.configPath`. */
  hosts?: (ctx: Ctx, domain: string) => Promise<RegistryEndpoint[]>;
  userAgent?: string;
}

export class RegistryClient {
  readonly cfg: DistributionConfig;
  readonly requester: Requester;
  private readonly downloads: Semaphore;
  readonly uploads: Semaphore;
  /** Manifest bodies a GET-based resolve already read, so the next fetch does not repeat it. */
  private readonly recent = new Map<string, Buffer>();

  constructor(opts: RegistryClientOptions = {}) {
    this.cfg = { ...distributionConfig(), ...opts.config };
    const transport = new Transport({ connectTimeoutMs: this.cfg.connectTimeoutMs, userAgent: opts.userAgent });
    const hosts = opts.hosts ?? ((ctx: Ctx, domain: string) => resolveHosts(ctx, this.cfg.configPath, domain));
    this.requester = new Requester(transport, new Authorizer(transport, opts.credentials), this.cfg, hosts);
    this.downloads = new Semaphore(this.cfg.maxConcurrentDownloads);
    this.uploads = new Semaphore(this.cfg.maxConcurrentUploads);
  }

  /** Close the keep-alive connections. */
  close(): void {
    this.requester.transport.close();
  }

  /** The descriptor `ref` names: its digest, media type and size. */
  async resolve(ctx: Ctx, ref: Reference): Promise<Descriptor> {
    const what = formatReference(ref);
    const target = ref.digest ?? ref.tag ?? 'latest';
    const scopes = [repositoryScope(ref.path, 'pull')];
    const spec = { method: 'HEAD', path: `/${ref.path}/manifests/${target}`, headers: { accept: MANIFEST_ACCEPT } };
    const { res, ep } = await this.requester.first(ctx, ref.domain, 'resolve', scopes, spec);
    discard(res);
    if (res.status === 404) throw berthError('NotFound', `${what}: not found`);
    const digest = res.headers['docker-content-digest'];
    const mediaType = contentType(res.headers['content-type']);
    const size = Number(res.headers['content-length']);
    if (res.status === 200 && typeof digest === 'string' && /^sha256:[a-f0-9]{64}$/.test(digest) && (isManifestType(mediaType) || isIndexType(mediaType)) && size > 0) {
      if (ref.digest && digest !== ref.digest) {
        throw berthError('DataLoss', `${what}: registry ${ep.registry} answered with digest ${digest}`);
      }
      return { mediaType, digest: digest as Digest, size };
    }
    // Some registries answer HEAD without a digest or refuse it: GET the manifest and hash it.
    const got = await this.requester.on(ctx, ep, scopes, { ...spec, method: 'GET' });
    if (got.status === 404) {
      discard(got);
      throw berthError('NotFound', `${what}: not found`);
    }
    if (got.status !== 200) throw await responseError(got, what);
    const bytes = await readCapped(got, MAX_MANIFEST_BYTES, `${what}: manifest`);
    const computed = sha256(bytes);
    if (ref.digest && computed !== ref.digest) throw berthError('DataLoss', `${what}: registry ${ep.registry} sent content with digest ${computed}`);
    const doc = parseJson(bytes, `${what}: registry ${ep.registry} sent an invalid manifest`);
    const mt = contentType(got.headers['content-type']);
    const type = isManifestType(mt) || isIndexType(mt) ? mt : detectMediaType(doc, what);
    this.remember(computed, bytes);
    return { mediaType: type, digest: computed, size: bytes.length };
  }

  /** The exact bytes of a manifest or index, verified against `desc`. */
  async fetchManifestBytes(ctx: Ctx, ref: Reference, desc: Descriptor): Promise<Buffer> {
    const what = `${nameOf(ref)}@${desc.digest}`;
    if (desc.size > MAX_MANIFEST_BYTES) throw berthError('ResourceExhausted', `${what}: manifest of ${desc.size} bytes is above the ${MAX_MANIFEST_BYTES}-byte limit`);
    const cached = this.recent.get(desc.digest);
    if (cached) return cached;
    const scopes = [repositoryScope(ref.path, 'pull')];
    const { res, ep } = await this.requester.first(ctx, ref.domain, 'pull', scopes, {
      method: 'GET',
      path: `/${ref.path}/manifests/${desc.digest}`,
      headers: { accept: desc.mediaType ? `${desc.mediaType}, ${MANIFEST_ACCEPT}` : MANIFEST_ACCEPT },
    });
    if (res.status !== 200) throw await responseError(res, what);
    const bytes = await readCapped(res, MAX_MANIFEST_BYTES, `${what}: manifest`);
    const computed = sha256(bytes);
    if (computed !== desc.digest) throw berthError('DataLoss', `${what}: registry ${ep.registry} sent content with digest ${computed}`);
    if (desc.size > 0 && bytes.length !== desc.size) throw berthError('DataLoss', `${what}: registry ${ep.registry} sent ${bytes.length} bytes, descriptor says ${desc.size}`);
    return bytes;
  }

  /** An image manifest (OCI or Docker schema2). */
  async fetchManifest(ctx: Ctx, ref: Reference, desc: Descriptor): Promise<{ bytes: Buffer; manifest: ImageManifest; mediaType: string }> {
    const what = `${nameOf(ref)}@${desc.digest}`;
    const bytes = await this.fetchManifestBytes(ctx, ref, desc);
    const raw = parseJson(bytes, `${what}: invalid manifest`);
    const mediaType = detectMediaType(raw, what, desc.mediaType);
    const doc = raw as unknown as ImageManifest;
    if (!isManifestType(mediaType)) throw berthError('FailedPrecondition', `${what}: is an ${mediaType}, not an image manifest`);
    if (!doc.config?.digest || !Array.isArray(doc.layers)) throw berthError('Unknown', `${what}: invalid manifest: missing config or layers`);
    return { bytes, manifest: doc, mediaType };
  }

  /** An image index (OCI index or Docker manifest list). */
  async fetchIndex(ctx: Ctx, ref: Reference, desc: Descriptor): Promise<{ bytes: Buffer; index: ImageIndex; mediaType: string }> {
    const what = `${nameOf(ref)}@${desc.digest}`;
    const bytes = await this.fetchManifestBytes(ctx, ref, desc);
    const raw = parseJson(bytes, `${what}: invalid index`);
    const mediaType = detectMediaType(raw, what, desc.mediaType);
    const doc = raw as unknown as ImageIndex;
    if (!isIndexType(mediaType)) throw berthError('FailedPrecondition', `${what}: is an ${mediaType}, not an image index`);
    if (!Array.isArray(doc.manifests)) throw berthError('Unknown', `${what}: invalid index: no manifests`);
    return { bytes, index: doc, mediaType };
  }

  /** A small blob (an image config) read whole, verified, capped at `maxBytes`. */
  async fetchBlobBytes(ctx: Ctx, ref: Reference, desc: Descriptor, maxBytes = MAX_MANIFEST_BYTES): Promise<Buffer> {
    if (desc.size > maxBytes) throw berthError('ResourceExhausted', `${nameOf(ref)}@${desc.digest}: ${desc.size} bytes is above the ${maxBytes}-byte limit`);
    const chunks: Buffer[] = [];
    for await (const c of await this.fetchBlob(ctx, ref, desc, 0, { verify: true })) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  /**
   * A stream of blob `desc` from byte `offset`. The stream holds one of the
   * download slots until it ends, fails or is destroyed. Connection drops
   * and stalls (no bytes for `progressTimeoutMs`) resume with a Range
   * request, as long as each attempt makes progress and at most `retries`
   * attempts in a row fail. More bytes than `desc.size` is DataLoss. The
   * digest is left to the consumer (the content store checks it on commit),
   * unless `opts.verify` asks for it (from offset 0 only; DataLoss at the end
   * on a mismatch).
   */
  async fetchBlob(ctx: Ctx, ref: Reference, desc: Descriptor, offset = 0, opts: { verify?: boolean } = {}): Promise<Readable> {
    const release = await this.downloads.acquire(ctx.signal);
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    const stop = new AbortController();
    const signal = AbortSignal.any([ctx.signal, stop.signal]);
    out.once('close', () => stop.abort());
    const what = `${nameOf(ref)}@${desc.digest}`;
    let first: { res: Awaited<ReturnType<Requester['first']>>['res']; ep: RegistryEndpoint } | undefined;
    try {
      first = await this.openBlob({ ...ctx, signal }, ref, desc, offset, what);
    } catch (err) {
      release();
      throw err;
    }
    void this.pumpBlob({ ...ctx, signal }, ref, desc, offset, what, first, out, opts.verify === true)
      .catch((err) => out.destroy(err as Error))
      .finally(release);
    return out;
  }

  private async openBlob(ctx: Ctx, ref: Reference, desc: Descriptor, offset: number, what: string) {
    const headers: Record<string, string> = {};
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const { res, ep } = await this.requester.first(ctx, ref.domain, 'pull', [repositoryScope(ref.path, 'pull')], {
      method: 'GET',
      path: `/${ref.path}/blobs/${desc.digest}`,
      headers,
    });
    if (res.status === 416 && offset > 0 && offset === desc.size) return { res, ep };
    if (res.status !== 200 && res.status !== 206) throw await responseError(res, what);
    return { res, ep };
  }

  private async pumpBlob(
    ctx: Ctx, ref: Reference, desc: Descriptor, start: number, what: string,
    first: { res: Awaited<ReturnType<Requester['first']>>['res']; ep: RegistryEndpoint }, out: PassThrough, verify: boolean,
  ): Promise<void> {
    const hash = verify && start === 0 ? createHash(desc.digest.startsWith('sha512:') ? 'sha512' : 'sha256') : undefined;
    let pos = start;
    let failures = 0;
    let current: typeof first | undefined = first;
    const size = desc.size > 0 ? desc.size : undefined;
    for (;;) {
      if (!current) {
        try {
          current = await this.openBlob(ctx, ref, desc, pos, what);
        } catch (err) {
          if (!isRetry(err) || ++failures > this.cfg.retries) throw err;
          await backoff(this.cfg.retryBackoffMs, failures, ctx.signal);
          continue;
        }
      }
      const { res } = current;
      current = undefined;
      if (res.status === 416) {
        discard(res);
        break;
      }
      let skip = res.status === 200 ? pos : 0;
      if (res.status === 206) {
        const m = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
        if (!m || Number(m[1]) !== pos) {
          res.body.destroy();
          throw berthError('Unknown', `${what}: registry answered a range request from ${pos} with "${res.headers['content-range'] ?? ''}"`);
        }
      }
      let progressed = false;
      try {
        await this.copyBody(ctx, res.body, out, what, (chunk) => {
          let c = chunk;
          if (skip > 0) {
            const n = Math.min(skip, c.length);
            skip -= n;
            c = c.subarray(n);
            if (c.length === 0) return undefined;
          }
          pos += c.length;
          if (size !== undefined && pos > size) throw berthError('DataLoss', `${what}: registry sent more than the ${size} bytes the descriptor says`);
          hash?.update(c);
          progressed = true;
          return c;
        });
        if (size === undefined || pos >= size) break;
        throw markRetryable(berthError('Unavailable', `${what}: connection closed after ${pos} of ${size} bytes`));
      } catch (raw) {
        res.body.destroy();
        const err = networkError(raw, res.url, ctx.signal);
        if (progressed) failures = 0;
        if (!isRetry(err) || ++failures > this.cfg.retries || out.destroyed) throw err;
        ctx.log.debug('blob transfer interrupted, resuming', { blob: what, offset: pos, err });
        await backoff(this.cfg.retryBackoffMs, failures, ctx.signal);
      }
    }
    if (hash) {
      const got = `${desc.digest.slice(0, desc.digest.indexOf(':'))}:${hash.digest('hex')}`;
      if (got !== desc.digest) throw berthError('DataLoss', `${what}: content has digest ${got}`);
    }
    out.end();
  }

  /**
   * Copy `body` into `out` through `each` (which may trim or refuse a
   * chunk), with backpressure, failing with a retryable error when no byte
   * arrives for `progressTimeoutMs`. Event-based rather than `for await`:
   * this is the hot path of every pull.
   */
  private copyBody(ctx: Ctx, body: Readable, out: PassThrough, what: string, each: (c: Buffer) => Buffer | undefined): Promise<void> {
    const ms = this.cfg.progressTimeoutMs;
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let lastData = Date.now();
      const cleanup = () => {
        clearInterval(timer);
        body.off('data', onData);
        body.off('end', onEnd);
        body.off('error', onError);
        body.off('close', onClose);
        out.off('drain', onDrain);
        out.off('close', onOutClose);
        ctx.signal.removeEventListener('abort', onAbort);
      };
      const fail = (err: unknown) => {
        cleanup();
        reject(err);
      };
      const onData = (chunk: Buffer) => {
        lastData = Date.now();
        let c: Buffer | undefined;
        try {
          c = each(chunk);
        } catch (err) {
          fail(err);
          return;
        }
        if (c && !out.write(c)) body.pause();
      };
      const onDrain = () => {
        lastData = Date.now();
        body.resume();
      };
      const onEnd = () => {
        cleanup();
        resolve();
      };
      const onError = (err: Error) => fail(err);
      const onClose = () => {
        if (!body.readableEnded) fail(markRetryable(berthError('Unavailable', `${what}: connection closed early`)));
      };
      const onOutClose = () => fail(berthError('Canceled', `${what}: reader went away`));
      const onAbort = () => fail(ctx.signal.reason);
      body.on('data', onData);
      body.once('end', onEnd);
      body.once('error', onError);
      body.once('close', onClose);
      out.on('drain', onDrain);
      out.once('close', onOutClose);
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      if (ms > 0) {
        // A coarse interval instead of re-arming a timer per chunk.
        timer = setInterval(() => {
          if (!body.isPaused() && Date.now() - lastData >= ms) {
            fail(markRetryable(berthError('Unavailable', `${what}: no data for ${Math.round(ms / 1000)}s, transfer stalled`)));
          }
        }, Math.min(ms, 1000));
      }
    });
  }

  /** Is `desc` already in `ref`'s repository? */
  blobExists(ctx: Ctx, ref: Reference, desc: Descriptor): Promise<boolean> {
    return push.blobExists(this.requester, ctx, ref, desc);
  }

  /** Upload a blob unless present, mounting it from `opts.mountFrom` repositories of the same registry first. */
  async pushBlob(ctx: Ctx, ref: Reference, desc: Descriptor, open: push.BlobSource, opts: push.PushBlobOptions = {}): Promise<push.PushBlobResult> {
    const release = await this.uploads.acquire(ctx.signal);
    try {
      return await push.pushBlob(this.requester, ctx, ref, desc, open, opts);
    } finally {
      release();
    }
  }

  /** PUT a manifest or index under `ref`'s tag (or its digest); returns its descriptor. */
  pushManifest(ctx: Ctx, ref: Reference, mediaType: string, bytes: Buffer): Promise<Descriptor> {
    return push.pushManifest(this.requester, ctx, ref, mediaType, bytes);
  }

  /** Check `creds` against registry `domain` (GET /v2/). Unauthenticated when refused. */
  login(ctx: Ctx, domain: string, creds: Credentials): Promise<void> {
    return push.login(this.requester, ctx, domain, creds);
  }

  private remember(digest: string, bytes: Buffer): void {
    this.recent.set(digest, bytes);
    if (this.recent.size > 16) this.recent.delete(this.recent.keys().next().value!);
  }
}

function isRetry(err: unknown): boolean {
  return isBerthError(err) ? err.kind === 'Unavailable' || err.kind === 'DeadlineExceeded' : false;
}

async function backoff(base: number, n: number, signal: AbortSignal): Promise<void> {
  await sleep(base * 2 ** (n - 1), undefined, { signal });
}

export function contentType(h: string | string[] | undefined): string {
  const v = Array.isArray(h) ? h[0] : h;
  return (v ?? '').split(';')[0].trim();
}

function sha256(b: Buffer): Digest {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function parseJson(bytes: Buffer, what: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw berthError('Unknown', `${what}: not JSON`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw berthError('Unknown', `${what}: not a JSON object`);
  return doc as Record<string, unknown>;
}

/** The media type of a manifest document: its own field, else the descriptor's, else by shape. */
function detectMediaType(doc: Record<string, unknown>, what: string, fallback?: string): string {
  const mt = typeof doc.mediaType === 'string' ? doc.mediaType : fallback;
  if (mt === MediaTypes.dockerSchema1 || mt === MediaTypes.dockerSchema1Signed || doc.schemaVersion === 1) {
    throw berthError('Unimplemented', `${what}: Docker schema 1 manifests are not supported; push the image again with a current client`);
  }
  if (mt && (isManifestType(mt) || isIndexType(mt))) return mt;
  if (Array.isArray(doc.manifests)) return MediaTypes.ociIndex;
  if (doc.config && Array.isArray(doc.layers)) return MediaTypes.ociManifest;
  throw berthError('Unknown', `${what}: not an image manifest or index`);
}
