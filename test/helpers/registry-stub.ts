import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { tarStream, type TarItem } from '../../src/core/tar-write.ts';
import { MediaTypes } from '../../src/core/media-types.ts';

/**
 * A small OCI distribution server for crafted images, on loopback (port 0):
 * whatever a test puts in it is served as is, including what a real
 * registry would refuse (wrong digests, sizes, media types, nested JSON),
 * over plain HTTP (berth falls back to HTTP for loopback registries).
 * Blob answers can be held half-sent (`hold`) so a test can act while a
 * pull is in the middle of a layer.
 */
export interface StubRegistry {
  /** `127.0.0.1:PORT`. */
  host: string;
  /** Serve `body` as blob `digest` (the digest need not match the bytes). */
  blob(digest: string, body: Buffer): void;
  /** Serve a manifest or index as `repo:ref` (tag or digest) with that Content-Type. */
  manifest(repo: string, ref: string, body: Buffer, mediaType: string): void;
  /** Send only the first `bytes` of blob `digest`, then wait until `release()`; resolves once those bytes are out. */
  hold(digest: string, bytes: number): { sent: Promise<void>; release(): void };
  /** Blob GETs so far, by digest. */
  blobGets: Map<string, number>;
  close(): Promise<void>;
}

export async function startStubRegistry(): Promise<StubRegistry> {
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, { body: Buffer; mediaType: string }>();
  const holds = new Map<string, { bytes: number; sent: () => void; released: Promise<void> }>();
  const blobGets = new Map<string, number>();
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      res.writeHead(200, { 'Docker-Distribution-API-Version': 'registry/2.0', 'Content-Type': 'application/json' });
      return res.end('{}');
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!m) {
      res.writeHead(404);
      return res.end();
    }
    const [, repo, kind, ref] = m;
    if (kind === 'manifests') {
      const doc = manifests.get(`${repo}:${ref}`);
      if (!doc) {
        res.writeHead(404, { 'Content-Type': 'application/json' });
        return res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
      }
      res.writeHead(200, { 'Content-Type': doc.mediaType, 'Content-Length': doc.body.length, 'Docker-Content-Digest': sha256(doc.body) });
      return res.end(req.method === 'HEAD' ? undefined : doc.body);
    }
    const body = blobs.get(ref);
    if (!body) {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown' }] }));
    }
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'Content-Length': body.length, 'Docker-Content-Digest': ref });
      return res.end();
    }
    blobGets.set(ref, (blobGets.get(ref) ?? 0) + 1);
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const from = range ? Number(range[1]) : 0;
    const part = body.subarray(from);
    const headers = { 'Content-Length': part.length, 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': ref };
    if (range) res.writeHead(206, { ...headers, 'Content-Range': `bytes ${from}-${body.length - 1}/${body.length}` });
    else res.writeHead(200, headers);
    const hold = holds.get(ref);
    if (!hold) return res.end(part);
    holds.delete(ref);
    res.write(part.subarray(0, hold.bytes), () => hold.sent());
    void hold.released.then(() => {
      if (!res.destroyed) res.end(part.subarray(hold.bytes));
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    blob: (digest, body) => void blobs.set(digest, body),
    manifest: (repo, ref, body, mediaType) => void manifests.set(`${repo}:${ref}`, { body, mediaType }),
    hold(digest, bytes) {
      let sent!: () => void;
      let release!: () => void;
      const sentP = new Promise<void>((r) => (sent = r));
      const released = new Promise<void>((r) => (release = r));
      holds.set(digest, { bytes, sent, released });
      return { sent: sentP, release };
    },
    blobGets,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

export function sha256(b: Buffer | string): `sha256:${string}` {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

export async function tarOf(items: TarItem[] | Iterable<TarItem>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of tarStream(items) as Readable) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export interface CraftedLayer {
  /** The uncompressed tar. */
  tar: Buffer;
  /** gzip (the default) or none. */
  compression?: 'gzip' | 'none';
  /** Override the descriptor's media type. */
  mediaType?: string;
  /** Serve these bytes instead of the blob the descriptor names (a digest mismatch). */
  served?: Buffer;
  /** Override the descriptor's size. */
  size?: number;
}

/** A crafted image in `reg` as `repo:tag`; the config and manifest may be given raw or altered. Returns the descriptors and digests. */
export function putImage(
  reg: StubRegistry,
  repo: string,
  tag: string,
  opts: {
    layers: CraftedLayer[];
    /** Fields merged into the config, or the config's raw bytes. */
    config?: Record<string, unknown> | Buffer;
    manifestMediaType?: string;
    /** Content-Type the registry answers for the manifest (defaults to the manifest's media type). */
    contentType?: string;
  },
): { manifest: Buffer; config: Buffer; layers: { digest: string; size: number; mediaType: string; blob: Buffer }[] } {
  const layers = opts.layers.map((l) => {
    const blob = (l.compression ?? 'gzip') === 'gzip' ? gzipSync(l.tar) : l.tar;
    const mediaType = l.mediaType ?? ((l.compression ?? 'gzip') === 'gzip' ? MediaTypes.ociLayerGzip : 'application/vnd.oci.image.layer.v1.tar');
    const digest = sha256(blob);
    reg.blob(digest, l.served ?? blob);
    return { digest, size: l.size ?? blob.length, mediaType, blob };
  });
  const config = Buffer.isBuffer(opts.config)
    ? opts.config
    : Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: opts.layers.map((l) => sha256(l.tar)) }, ...opts.config }));
  const configDesc = { mediaType: MediaTypes.ociConfig, digest: sha256(config), size: config.length };
  reg.blob(configDesc.digest, config);
  const mediaType = opts.manifestMediaType ?? MediaTypes.ociManifest;
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, config: configDesc, layers: layers.map(({ digest, size, mediaType: mt }) => ({ mediaType: mt, digest, size })) }));
  reg.manifest(repo, tag, manifest, opts.contentType ?? mediaType);
  reg.manifest(repo, sha256(manifest), manifest, opts.contentType ?? mediaType);
  return { manifest, config, layers };
}
