import type { Readable } from 'node:stream';
import type { Ctx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { isAlreadyExists } from '../core/errors.ts';
import type { ContentInfo, ContentStore, ContentWriter, IngestStatus } from '../content/types.ts';
import type { LeaseManager } from './leases.ts';

/**
 * A ContentStore that puts what a caller writes under the caller's lease
 * (`ctx.lease`), as containerd's metadata content store does: the ingest ref
 * when the writer opens, the content digest as soon as it is known - before
 * the commit when the digest is expected, so GC can never see the new blob
 * unprotected. A writer refused with AlreadyExists still attaches the
 * existing blob, which is what makes "the blob is already here, skip it" safe
 * against a GC running at the same moment.
 *
 * Without `ctx.lease` it behaves exactly like the store it wraps.
 */
export class LeasedContentStore implements ContentStore {
  readonly #inner: ContentStore;
  readonly #leases: Pick<LeaseManager, 'attach'>;

  constructor(inner: ContentStore, leases: Pick<LeaseManager, 'attach'>) {
    this.#inner = inner;
    this.#leases = leases;
  }

  async writer(ctx: Ctx, opts: { ref: string; expected?: { digest: Digest; size?: number } }): Promise<ContentWriter> {
    if (ctx.lease === undefined) return this.#inner.writer(ctx, opts);
    if (opts.expected) await this.#leases.attach(ctx, { kind: 'content', id: opts.expected.digest });
    await this.#leases.attach(ctx, { kind: 'ingest', id: opts.ref });
    const w = await this.#inner.writer(ctx, opts);
    return new LeasedWriter(w, ctx, this.#leases);
  }

  info(ctx: Ctx, digest: Digest): Promise<ContentInfo> {
    return this.#inner.info(ctx, digest);
  }

  reader(ctx: Ctx, digest: Digest, opts?: { offset?: number }): Promise<Readable> {
    return this.#inner.reader(ctx, digest, opts);
  }

  readAll(ctx: Ctx, digest: Digest, maxBytes: number): Promise<Buffer> {
    return this.#inner.readAll(ctx, digest, maxBytes);
  }

  blobPath(digest: Digest): string {
    return this.#inner.blobPath(digest);
  }

  status(ctx: Ctx, ref: string): Promise<IngestStatus> {
    return this.#inner.status(ctx, ref);
  }

  listStatuses(ctx: Ctx): Promise<IngestStatus[]> {
    return this.#inner.listStatuses(ctx);
  }

  abort(ctx: Ctx, ref: string): Promise<void> {
    return this.#inner.abort(ctx, ref);
  }

  walk(ctx: Ctx, fn: (info: ContentInfo) => void | Promise<void>): Promise<void> {
    return this.#inner.walk(ctx, fn);
  }

  updateLabels(ctx: Ctx, digest: Digest, labels: Record<string, string>): Promise<ContentInfo> {
    return this.#inner.updateLabels(ctx, digest, labels);
  }

  delete(ctx: Ctx, digest: Digest): Promise<void> {
    return this.#inner.delete(ctx, digest);
  }
}

class LeasedWriter implements ContentWriter {
  readonly #w: ContentWriter;
  readonly #ctx: Ctx;
  readonly #leases: Pick<LeaseManager, 'attach'>;

  constructor(w: ContentWriter, ctx: Ctx, leases: Pick<LeaseManager, 'attach'>) {
    this.#w = w;
    this.#ctx = ctx;
    this.#leases = leases;
  }

  get ref(): string {
    return this.#w.ref;
  }

  get offset(): number {
    return this.#w.offset;
  }

  stream() {
    return this.#w.stream();
  }

  write(chunk: Uint8Array): Promise<void> {
    return this.#w.write(chunk);
  }

  digest(): Digest {
    return this.#w.digest();
  }

  flush(): Promise<void> {
    return this.#w.flush();
  }

  async commit(ctx: Ctx, opts: { size?: number; digest?: Digest; labels?: Record<string, string>; synced?: boolean } = {}): Promise<ContentInfo> {
    if (opts.digest) await this.#leases.attach(this.#ctx, { kind: 'content', id: opts.digest });
    try {
      const info = await this.#w.commit(ctx, opts);
      if (!opts.digest) await this.#leases.attach(this.#ctx, { kind: 'content', id: info.digest });
      return info;
    } catch (err) {
      if (isAlreadyExists(err) && opts.digest) await this.#leases.attach(this.#ctx, { kind: 'content', id: opts.digest });
      throw err;
    }
  }

  close(): Promise<void> {
    return this.#w.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.#w.close();
  }
}
