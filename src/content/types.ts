import type { Ctx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import type { Readable, Writable } from 'node:stream';

/**
 * Content store: content-addressed blobs (layers, manifests, configs).
 *
 * Vocabulary (containerd's): a *ref* names an in-progress write so it can be
 * resumed after an interruption; a blob becomes visible only on `commit`,
 * after its size and digest were verified, by an atomic rename.
 *
 * The raw store knows nothing of namespaces: blobs are shared by every
 * namespace, and only metadata/ decides what is garbage (see metadata/gc).
 *
 * Errors: NotFound for an unknown digest or ref; AlreadyExists from `writer`
 * (when `expected.digest` is present) and from `commit` when the blob is
 * already there (callers usually treat it as success); FailedPrecondition for
 * a size or digest mismatch (and the partial write is discarded); Unavailable
 * when the ref is held by another writer; ResourceExhausted when the disk is
 * full (the partial write is discarded, nothing half-written stays).
 *
 * Example:
 *   const w = await store.writer(ctx, { ref: 'layer-sha256:ab…', expected: { digest, size } });
 *   await pipeline(body, w.stream());   // resumes at w.offset
 *   await w.commit(ctx);
 */
export interface ContentInfo {
  digest: Digest;
  size: number;
  createdAt: Date;
  updatedAt: Date;
  labels: Record<string, string>;
}

export interface ContentProvider {
  info(ctx: Ctx, digest: Digest): Promise<ContentInfo>;
  /** A stream of the blob from `offset`. */
  reader(ctx: Ctx, digest: Digest, opts?: { offset?: number }): Promise<Readable>;
  /** The whole blob, refused with ResourceExhausted if larger than `maxBytes`. */
  readAll(ctx: Ctx, digest: Digest, maxBytes: number): Promise<Buffer>;
  /** Path of the committed blob on disk, for consumers that want to read it directly. */
  blobPath(digest: Digest): string;
}

export interface IngestStatus {
  ref: string;
  offset: number;
  total?: number;
  expected?: Digest;
  startedAt: Date;
  updatedAt: Date;
}

export interface ContentWriter {
  readonly ref: string;
  /** Bytes already written (resumed writes start here). */
  readonly offset: number;
  /** A writable that appends at `offset`; hashing continues from the resumed state. */
  stream(): Writable;
  /** Append `chunk`. The chunk may be reused by the caller once the promise resolves. */
  write(chunk: Uint8Array): Promise<void>;
  /** Digest of every byte accepted so far (resumed ones included), in the algorithm of the expected digest (sha256 without one). */
  digest(): Digest;
  /** Write out what is buffered: every accepted byte is then in the file (not yet durable). */
  flush(): Promise<void>;
  /**
   * Verify size and digest (expected ones, or those given here), fsync,
   * rename into place. The writer is finished afterwards, whatever the outcome.
   * `synced`: the caller flushed, then either made the store's file system
   * durable (syncfs) after the last write, or recorded the blob as not yet
   * durable somewhere a restart reads (images' write-behind mark), so commit
   * skips its fsyncs; the caller syncs again before anything it records
   * refers to the blob, if the rename must survive a crash.
   */
  commit(ctx: Ctx, opts?: { size?: number; digest?: Digest; labels?: Record<string, string>; synced?: boolean }): Promise<ContentInfo>;
  /** Release the lock, keeping the partial data for a later resume. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface ContentIngester {
  writer(ctx: Ctx, opts: { ref: string; expected?: { digest: Digest; size?: number } }): Promise<ContentWriter>;
}

export interface IngestManager {
  /** State of an ingest; `offset` is what a reopened writer resumes at. */
  status(ctx: Ctx, ref: string): Promise<IngestStatus>;
  listStatuses(ctx: Ctx): Promise<IngestStatus[]>;
  /** Discard an ingest's partial data; Unavailable while a writer holds it. */
  abort(ctx: Ctx, ref: string): Promise<void>;
}

export interface ContentManager {
  /** Visit every committed blob; blobs deleted meanwhile are skipped. */
  walk(ctx: Ctx, fn: (info: ContentInfo) => void | Promise<void>): Promise<void>;
  /** Merge `labels` into the blob's labels; an empty value removes that key. */
  updateLabels(ctx: Ctx, digest: Digest, labels: Record<string, string>): Promise<ContentInfo>;
  delete(ctx: Ctx, digest: Digest): Promise<void>;
}

export interface ContentStore extends ContentProvider, ContentIngester, IngestManager, ContentManager {}

/**
 * What a local store's writer needs of the store it commits into: where a
 * blob goes, its labels, and its info once there. The writer depends on this
 * rather than on the store, which opens writers.
 */
export interface LocalBlobs {
  blobPath(digest: Digest): string;
  writeLabels(digest: Digest, labels: Record<string, string>): Promise<void>;
  info(ctx: Ctx, digest: Digest): Promise<ContentInfo>;
}
