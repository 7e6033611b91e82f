import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import type { Ctx } from '../core/context.ts';
import { cleanupCtx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { digestOf, shortId } from '../core/digest.ts';
import { berthError, isAlreadyExists, isNotFound, kindOf, wrap } from '../core/errors.ts';
import type { ProgressEvent } from '../core/images.ts';
import type { ContentWriter } from '../content/types.ts';
import { hasBlob, putBlob, selectFromIndex } from './blobs.ts';
import { chainIds } from '../core/chain-id.ts';
import { chunksOf } from '../core/chunks.ts';
import { familiarName, normalizeName, parseName } from './names.ts';
import type { ImageServiceCore } from './types.ts';
import { limiter, readAllStream, waitDrain } from './streams.ts';
import type { Descriptor, Platform } from './types.ts';
import { checkedConfig, checkedIndex, checkedManifest } from './untrusted.ts';
import { isIndexType, isManifestType } from '../core/media-types.ts';
import { GcLabels, isIndex } from './types.ts';
import { MAX_JSON_BLOB } from './blobs.ts';

type Emit = (ev: ProgressEvent) => void;

/**
 * Pull: resolve, fetch the manifest for the platform and the config, then
 * fetch every layer at once (up to `maxConcurrentDownloads`). With a
 * snapshotter that can unpack in parallel, each download is teed into the
 * content store and into the layer applier as the bytes arrive, each layer
 * into its own parentless snapshot; the snapshots are committed in order
 * afterwards, named by chain ID. Layers whose chain snapshot exists are
 * skipped. Everything happens under a lease, and the image record is
 * written last: a failed pull leaves no record and GC takes what it made.
 *
 * Resolves to the normalized name. Errors: InvalidArgument (bad reference),
 * NotFound (unknown image or platform), Unavailable (registry down),
 * Unauthenticated, DataLoss (digest or diff ID mismatch, corrupt layer).
 */
export async function pullImage(svc: ImageServiceCore, ctx: Ctx, input: string, emit: Emit, opts: { platform?: Platform }): Promise<string> {
  const name = normalizeName(input);
  const p = parseName(name);
  const platform = opts.platform ?? svc.platform;
  const { deps } = svc;
  // A present image costs one resolve: no lease, no writes.
  const resolved = await deps.registry.resolve(ctx, name);
  const target = resolved.descriptor;
  const existing = await deps.records.get(ctx, name).catch((err) => {
    if (isNotFound(err)) return undefined;
    throw err;
  });
  if (existing && existing.target.digest === target.digest && (await isComplete(svc, ctx, existing.target))) {
    emit({ status: `Digest: ${target.digest}` });
    emit({ status: `Status: Image is up to date for ${familiarName(name)}` });
    return name;
  }
  return svc.withLease(ctx, async (lctx) => {
    emit({ id: p.tag ?? p.digest ?? 'latest', status: `Pulling from ${p.path}` });

    // Shared by digest, so concurrent pulls of one image fetch each document once.
    const fetchJson = async (desc: Descriptor, what: string): Promise<Buffer> => {
      // Each pull's own lease holds what it uses, even when another pull fetched it.
      await deps.leases.attach(lctx, { kind: 'content', id: desc.digest });
      return shared(svc, `json:${desc.digest}`, async () => {
        if (await hasBlob(lctx, deps.content, desc.digest)) return deps.content.readAll(lctx, desc.digest, MAX_JSON_BLOB);
        const body = await readAllStream(await deps.registry.fetch(lctx, name, desc), MAX_JSON_BLOB, `${what} ${desc.digest}`);
        const got = digestOf(body);
        if (got !== desc.digest) throw berthError('DataLoss', `${what} of ${familiarName(name)}: digest mismatch: expected ${desc.digest}, got ${got}`);
        await putBlob(lctx, deps.content, body, {}, desc.digest, deps.leases);
        return body;
      });
    };
    const image = familiarName(name);
    let indexBytes: Buffer | undefined;
    let manifestDesc = target;
    checkDocumentType(target, image);
    let manifestBytes = await fetchJson(target, isIndex(target.mediaType) ? 'index' : 'manifest');
    if (isIndex(target.mediaType)) {
      indexBytes = manifestBytes;
      manifestDesc = selectFromIndex(checkedIndex(indexBytes, `image "${image}": index ${target.digest}`), platform, image);
      checkDocumentType(manifestDesc, image);
      if (isIndex(manifestDesc.mediaType)) throw berthError('InvalidArgument', `image "${image}": index ${target.digest} names another index (${manifestDesc.digest}) for the platform`);
      manifestBytes = await fetchJson(manifestDesc, 'manifest');
    }
    // Checked before anything is unpacked or recorded: a hostile document is refused, never stored as an image.
    const manifest = checkedManifest(manifestBytes, `image "${image}": manifest ${manifestDesc.digest}`);
    const configBytes = await fetchJson(manifest.config, 'image config');
    const config = checkedConfig(configBytes, `image "${image}": config ${manifest.config.digest}`);
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== manifest.layers.length) {
      throw berthError('DataLoss', `image ${image}: manifest has ${manifest.layers.length} layers but the config lists ${diffIds.length} diff IDs`);
    }

    const chain = await unpackLayers(svc, lctx, name, manifest.layers, diffIds, emit);

    const sn = deps.snapshotter.name;
    await putBlob(lctx, deps.content, configBytes, chain.length ? { [GcLabels.snapshotRef(sn)]: chain.at(-1)! } : {}, undefined, deps.leases);
    const mlabels: Record<string, string> = { [GcLabels.contentRef('config')]: manifest.config.digest };
    manifest.layers.forEach((l, i) => (mlabels[GcLabels.contentRef(`l.${i}`)] = l.digest));
    await putBlob(lctx, deps.content, manifestBytes, mlabels, undefined, deps.leases);
    if (indexBytes) await putBlob(lctx, deps.content, indexBytes, { [GcLabels.contentRef('m.0')]: manifestDesc.digest }, undefined, deps.leases);

    await svc.setName(ctx, name, target, manifest.config.digest);
    emit({ status: `Digest: ${target.digest}` });
    emit({ status: `Status: Downloaded newer image for ${familiarName(name)}` });
    return name;
  });
}

/** A manifest or index the registry names must be of a type berth knows: an image, not some other artifact. */
function checkDocumentType(desc: Descriptor, image: string): void {
  if (isIndexType(desc.mediaType) || isManifestType(desc.mediaType)) return;
  throw berthError('InvalidArgument', `image "${image}": unsupported manifest media type "${desc.mediaType}" (${desc.digest})`);
}

/** Is everything an image needs present: its blobs and its top snapshot? */
async function isComplete(svc: ImageServiceCore, ctx: Ctx, target: Descriptor): Promise<boolean> {
  try {
    const img = await svc.resolveRecord(ctx, { name: '', target, labels: {}, createdAt: new Date(), updatedAt: new Date() });
    const top = chainIds(img.config.rootfs.diff_ids).at(-1);
    if (top) await svc.deps.snapshotter.stat(ctx, top);
    for (const l of img.manifest.layers) if (!(await hasBlob(ctx, svc.deps.content, l.digest))) return false;
    return true;
  } catch {
    return false;
  }
}

async function snapshotExists(svc: ImageServiceCore, ctx: Ctx, name: string): Promise<boolean> {
  try {
    const info = await svc.deps.snapshotter.stat(ctx, name);
    return info.kind === 'committed';
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** Share one promise per key between concurrent pulls. */
function shared<T>(svc: ImageServiceCore, key: string, fn: () => Promise<T>): Promise<T> {
  const cur = svc.inflight.get(key) as Promise<T> | undefined;
  if (cur) return cur;
  const p = fn().finally(() => svc.inflight.delete(key));
  svc.inflight.set(key, p);
  return p;
}

interface Extracted {
  /** Key of the active snapshot holding the diff (parallel unpack only). */
  key?: string;
  /** The downloaded blob, verified but not committed: the caller marks it first. */
  blob?: DeferredBlob;
}

/** A verified download whose commit waits for its write-behind mark. */
interface DeferredBlob {
  /** Rename it into the store (the mark covers its bytes); once, however many pulls share it. */
  commit(): Promise<void>;
  /**
   * The pull failed elsewhere: drop the download, as GC would drop the blob
   * of a failed pull once its lease is gone; nothing after a commit.
   */
  discard(): Promise<void>;
}

/** The result of fetchLayer. */
interface Fetched {
  diffId?: Digest;
  blob?: DeferredBlob;
}

/** Unpack `layers` (fetching those not in the content store) into committed snapshots named by chain ID. */
export async function unpackLayers(svc: ImageServiceCore, ctx: Ctx, name: string, layers: Descriptor[], diffIds: Digest[], emit: Emit): Promise<Digest[]> {
  const { deps } = svc;
  const sn = deps.snapshotter;
  const chain = chainIds(diffIds);
  const parallel = sn.capabilities.parallelUnpack;
  const limit = limiter(Math.max(1, deps.config.maxConcurrentDownloads));
  const created: string[] = [];
  const repeated = new Set(layers.filter((l, i) => layers.findIndex((o) => o.digest === l.digest) !== i).map((l) => l.digest));
  for (const l of layers) emit({ id: shortId(l.digest), status: 'Waiting' });

  const jobs = layers.map((layer, i) =>
    (async (): Promise<Extracted | undefined> => {
      const id = shortId(layer.digest);
      await deps.leases.attach(ctx, { kind: 'snapshot', id: chain[i], snapshotter: sn.name });
      await deps.leases.attach(ctx, { kind: 'content', id: layer.digest });
      // The snapshot may come from another image whose layer has the same content but another blob
      // (compressed otherwise): the image still needs its own blob in the store, for save and push.
      const ensureBlob = async (inLimit: boolean): Promise<boolean> => {
        if (await hasBlob(ctx, deps.content, layer.digest)) return false;
        if (!name) throw berthError('InvalidArgument', `layer ${layer.digest}: blob not in the archive`);
        const fetch = () => fetchLayer(svc, ctx, name, layer, id, emit, undefined);
        await shared(svc, `blob:${layer.digest}`, () => (inLimit ? fetch() : limit(fetch)));
        return true;
      };
      if (await snapshotExists(svc, ctx, chain[i])) {
        if (!(await ensureBlob(false))) emit({ id, status: 'Already exists' });
        return undefined;
      }
      return shared(svc, `fetch:${chain[i]}`, () =>
        limit(async () => {
          if (await snapshotExists(svc, ctx, chain[i])) {
            await ensureBlob(true);
            return {};
          }
          if (!parallel) {
            await fetchLayer(svc, ctx, name, layer, id, emit, undefined);
            return {};
          }
          const key = `extract-${randomBytes(6).toString('hex')}-${chain[i]}`;
          const mounts = await sn.prepare(ctx, key, undefined, { labels: { 'containerd.io/snapshot.ref': chain[i] } });
          created.push(key);
          await deps.leases.attach(ctx, { kind: 'snapshot', id: key, snapshotter: sn.name });
          // A blob the image names twice is committed at once: the other layer reads it from the store.
          const defer = !repeated.has(layer.digest);
          const { diffId, blob } = await deps.withMounted(ctx, mounts, (dir) =>
            fetchLayer(svc, ctx, name, layer, id, emit, (stream) => deps.applyLayer(ctx, dir, stream, { format: 'overlay', maxBytes: deps.config.maxLayerUnpackedBytes, handOver: true }), defer),
          );
          if (diffId !== diffIds[i]) {
            await blob?.discard();
            throw berthError('DataLoss', `layer ${layer.digest}: unpacked diff ID ${diffId} does not match the config's ${diffIds[i]}`);
          }
          return { key, blob };
        }),
      );
    })(),
  );
  const results = await Promise.allSettled(jobs);
  const failed = results.find((r) => r.status === 'rejected');
  const extracted = results.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
  try {
    if (failed) throw (failed as PromiseRejectedResult).reason;
    // Before any blob or snapshot the pull wrote becomes visible, a write-behind mark names them: their
    // sync runs after the answer, and a start after a crash drops what it names. A crash then loses a
    // pull, never the data of a committed snapshot or blob.
    await deps.writeBehind.mark(ctx, {
      snapshots: extracted.flatMap((ex, i) => (ex?.key ? [chain[i]] : [])),
      blobs: extracted.flatMap((ex, i) => (ex?.blob ? [layers[i].digest] : [])),
    });
    for (const ex of extracted) await ex?.blob?.commit();
    for (let i = 0; i < layers.length; i++) {
      const ex = (results[i] as PromiseFulfilledResult<Extracted | undefined>).value;
      if (!ex) continue;
      const id = shortId(layers[i].digest);
      await shared(svc, `commit:${chain[i]}`, async () => {
        if (await snapshotExists(svc, ctx, chain[i])) return;
        if (ex.key) {
          await commitSnapshot(svc, ctx, chain[i], ex.key, chain[i - 1]);
          created.splice(created.indexOf(ex.key), 1);
        } else {
          await applySequential(svc, ctx, layers[i], chain[i], chain[i - 1], diffIds[i], id, emit);
        }
      });
      emit({ id, status: 'Pull complete' });
    }
  } finally {
    for (const ex of extracted) await ex?.blob?.discard().catch(() => {});
    const cctx = cleanupCtx(ctx);
    for (const key of created) await sn.remove(cctx, key).catch((err) => ctx.log.warn('cannot remove extract snapshot', { key, err }));
  }
  return chain;
}

async function commitSnapshot(svc: ImageServiceCore, ctx: Ctx, name: string, key: string, parent: string | undefined): Promise<void> {
  try {
    await svc.deps.snapshotter.commit(ctx, name, key, { parent });
  } catch (err) {
    if (!isAlreadyExists(err)) throw wrap(err, `commit snapshot ${name}`);
    await svc.deps.snapshotter.remove(cleanupCtx(ctx), key).catch(() => {});
  }
}

/** Copy-snapshotter path: each layer applied on top of its parent, in order, from the content store. */
async function applySequential(svc: ImageServiceCore, ctx: Ctx, layer: Descriptor, chainId: Digest, parent: Digest | undefined, diffId: Digest, id: string, emit: Emit): Promise<void> {
  const { deps } = svc;
  const key = `extract-${randomBytes(6).toString('hex')}-${chainId}`;
  await deps.leases.attach(ctx, { kind: 'snapshot', id: key, snapshotter: deps.snapshotter.name });
  const mounts = await deps.snapshotter.prepare(ctx, key, parent);
  try {
    emit({ id, status: 'Extracting', progressDetail: { current: 0, total: layer.size } });
    const res = await deps.withMounted(ctx, mounts, async (dir) => deps.applyLayer(ctx, dir, await deps.content.reader(ctx, layer.digest), { format: 'plain', maxBytes: deps.config.maxLayerUnpackedBytes }));
    const got = res.diffId;
    await deps.content.updateLabels(ctx, layer.digest, { [GcLabels.layerSize]: String(res.size) }).catch(() => {});
    if (got !== diffId) throw berthError('DataLoss', `layer ${layer.digest}: unpacked diff ID ${got} does not match the config's ${diffId}`);
    // The next layer is applied on top of this one: each commit needs the data under it durable.
    await deps.durable?.(ctx);
    await commitSnapshot(svc, ctx, chainId, key, parent);
  } catch (err) {
    await deps.snapshotter.remove(cleanupCtx(ctx), key).catch(() => {});
    throw err;
  }
}

async function waitForBlob(ctx: Ctx, svc: ImageServiceCore, digest: Digest): Promise<boolean> {
  for (let i = 0; i < 6000; i++) {
    if (await hasBlob(ctx, svc.deps.content, digest)) return true;
    const status = await svc.deps.content.status(ctx, `layer-${digest}`).catch(() => undefined);
    if (!status && i > 0) return hasBlob(ctx, svc.deps.content, digest);
    await sleep(50, undefined, { signal: ctx.signal });
  }
  return false;
}

/**
 * Download one layer blob into the content store (or read it from there
 * when present), handing the bytes to `apply` as they arrive. The download
 * is verified against the descriptor before the blob is committed; a
 * mismatch is DataLoss and leaves nothing behind.
 */
async function fetchLayer(
  svc: ImageServiceCore,
  ctx: Ctx,
  name: string,
  layer: Descriptor,
  id: string,
  emit: Emit,
  apply: ((stream: Readable) => Promise<{ diffId: Digest; size: number }>) | undefined,
  defer = false,
): Promise<Fetched> {
  const { deps } = svc;
  // Unpacked as it arrives, the blob's commit waits for the pull's write-behind mark (see unpackLayers).
  const deferCommit = defer && apply !== undefined;
  let present = await hasBlob(ctx, deps.content, layer.digest);
  let writer: ContentWriter | undefined;
  let src: Readable;
  let resumeFrom = 0;
  const ref = `layer-${layer.digest}`;
  if (!present) {
    await deps.leases.attach(ctx, { kind: 'ingest', id: ref });
    await deps.leases.attach(ctx, { kind: 'content', id: layer.digest });
    try {
      writer = await deps.content.writer(ctx, { ref, expected: { digest: layer.digest, size: layer.size } });
    } catch (err) {
      // The same blob twice in one image (empty layers often are), or another
      // pull writing it: wait for that download and read the blob from the store.
      if (kindOf(err) !== 'Unavailable') throw err;
      present = await waitForBlob(ctx, svc, layer.digest);
      if (!present) throw wrap(err, `layer ${layer.digest}`);
    }
  }
  if (!present && writer!.offset === layer.size && writer!.digest() === layer.digest) {
    // A whole download whose commit a stop or crash interrupted (a pull commits its blobs last): commit it now.
    try {
      await writer!.commit(ctx, { size: layer.size, digest: layer.digest });
    } catch (err) {
      if (!isAlreadyExists(err)) throw wrap(err, `layer ${layer.digest}`);
    }
    writer = undefined;
    present = true;
  }
  if (present) {
    src = await deps.content.reader(ctx, layer.digest);
  } else {
    writer = writer!;
    if (writer.offset >= layer.size) {
      // A complete but uncommitted download (interrupted at the last step): start over, cheaper than guessing.
      await writer.close();
      await deps.content.abort(ctx, ref);
      writer = await deps.content.writer(ctx, { ref, expected: { digest: layer.digest, size: layer.size } });
    }
    // A download interrupted earlier (berthd stopped or killed) resumes where it stopped.
    resumeFrom = writer.offset;
    try {
      src = await deps.registry.fetch(ctx, name, layer, resumeFrom);
    } catch (err) {
      await writer.close().catch(() => {});
      throw wrap(err, `layer ${layer.digest}`);
    }
  }
  if (resumeFrom > 0) {
    emit({ id, status: 'Downloading', progressDetail: { current: resumeFrom, total: layer.size } });
    return resumeLayer(svc, ctx, layer, id, emit, writer!, src, resumeFrom, apply);
  }
  const toApply = apply ? new PassThrough({ highWaterMark: 1 << 20 }) : undefined;
  let applyDone = false;
  const applied = apply && toApply ? apply(toApply).finally(() => (applyDone = true)) : undefined;
  // A layer past the unpack bound stops its download at once: the rest could only be more of a bomb.
  // Other refusals wait for the digest check, which names corruption on the way for what it is.
  let refused: { err: unknown } | undefined;
  // A whole, verified download that the applier then refused is of no use to a later pull either.
  let verified = false;
  applied?.catch((err) => {
    if (kindOf(err) !== 'ResourceExhausted') return;
    refused = { err };
    // The download may be waiting for bytes: end it now, not when the registry sends more.
    src.destroy(err instanceof Error ? err : new Error(String(err)));
  });
  // A download is hashed by its writer; a blob read back from the store is checked here.
  const hash = writer ? undefined : createHash('sha256');
  let n = 0;
  let lastEmit = 0;
  try {
    emit({ id, status: present ? 'Extracting' : 'Downloading', progressDetail: { current: 0, total: layer.size } });
    for await (const chunk of chunksOf(src)) {
      hash?.update(chunk);
      n += chunk.length;
      if (n > layer.size) throw berthError('DataLoss', `layer ${layer.digest}: the registry sent more than the ${layer.size} bytes the manifest declares`);
      if (writer) await writer.write(chunk);
      if (toApply && !applyDone && !toApply.destroyed && !toApply.write(chunk)) await Promise.race([waitDrain(toApply), applied!.catch(() => {})]);
      if (refused) throw refused.err;
      if (n - lastEmit >= 512 * 1024 || n === layer.size) {
        lastEmit = n;
        emit({ id, status: present ? 'Extracting' : 'Downloading', progressDetail: { current: n, total: layer.size } });
      }
    }
    if (writer && deferCommit) await writer.flush();
    const got = writer ? writer.digest() : `sha256:${hash!.digest('hex')}`;
    if (n !== layer.size || got !== layer.digest) {
      throw berthError('DataLoss', `layer ${layer.digest}: digest mismatch: received ${n} bytes with digest ${got} (expected ${layer.size} bytes)`);
    }
    toApply?.end();
    verified = true;
    if (writer) {
      emit({ id, status: 'Verifying Checksum' });
      if (!deferCommit) {
        try {
          await writer.commit(ctx, { size: layer.size, digest: layer.digest });
        } catch (err) {
          if (!isAlreadyExists(err)) throw err;
        }
        writer = undefined;
      }
      emit({ id, status: 'Download complete' });
    }
    if (!applied) return {};
    emit({ id, status: 'Extracting', progressDetail: { current: layer.size, total: layer.size } });
    const result = await applied;
    const blob = writer ? deferredBlob(svc, ctx, writer, layer) : undefined;
    writer = undefined;
    // Labels of a blob not committed yet would be lost: they are set once it is.
    const label = () => deps.content.updateLabels(ctx, layer.digest, { [GcLabels.layerSize]: String(result.size) }).then(() => {}, () => {});
    if (!blob) {
      await label();
      return { diffId: result.diffId };
    }
    return { diffId: result.diffId, blob: { commit: async () => { await blob.commit(); await label(); }, discard: blob.discard } };
  } catch (err) {
    toApply?.destroy();
    src.destroy();
    // What arrived of a layer past the bound is of no use to a later pull: it goes rather than wait for GC's grace period.
    throw await failLayer(svc, ctx, layer, writer, refused?.err ?? err, (refused !== undefined || verified) && !ctx.signal.aborted);
  }
}

/**
 * Close the ingest after a failure: wrong bytes (and a layer the applier
 * refused, with `discard`) are discarded, anything
 * else (a cancel, the registry going away) keeps what arrived so the next
 * pull resumes there; GC removes abandoned ingests after a grace period.
 */
async function failLayer(svc: ImageServiceCore, ctx: Ctx, layer: Descriptor, writer: ContentWriter | undefined, err: unknown, discard = false): Promise<Error> {
  const dataLoss = kindOf(err) === 'DataLoss' || kindOf(err) === 'FailedPrecondition';
  if (writer) {
    await writer.close().catch(() => {});
    if (dataLoss || discard) await svc.deps.content.abort(cleanupCtx(ctx), writer.ref).catch(() => {});
  }
  if (dataLoss) {
    const msg = err instanceof Error ? err.message : String(err);
    return /digest mismatch|diff ID/.test(msg) ? (err as Error) : berthError('DataLoss', `layer ${layer.digest}: digest mismatch: ${msg}`, err);
  }
  return wrap(err, `layer ${layer.digest}`);
}

/** Finish an interrupted download from `offset`, then unpack the whole blob from the store. */
async function resumeLayer(
  svc: ImageServiceCore,
  ctx: Ctx,
  layer: Descriptor,
  id: string,
  emit: Emit,
  writer: ContentWriter,
  src: Readable,
  offset: number,
  apply: ((stream: Readable) => Promise<{ diffId: Digest; size: number }>) | undefined,
): Promise<Fetched> {
  const { deps } = svc;
  let n = offset;
  let lastEmit = n;
  let open: ContentWriter | undefined = writer;
  try {
    for await (const c of chunksOf(src)) {
      n += c.length;
      if (n > layer.size) throw berthError('DataLoss', `layer ${layer.digest}: the registry sent more than the ${layer.size} bytes the manifest declares`);
      await writer.write(c);
      if (n - lastEmit >= 512 * 1024 || n === layer.size) {
        lastEmit = n;
        emit({ id, status: 'Downloading', progressDetail: { current: n, total: layer.size } });
      }
    }
    emit({ id, status: 'Verifying Checksum' });
    try {
      await writer.commit(ctx, { size: layer.size, digest: layer.digest });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    open = undefined;
    emit({ id, status: 'Download complete' });
  } catch (err) {
    src.destroy();
    throw await failLayer(svc, ctx, layer, open, err);
  }
  if (!apply) return {};
  emit({ id, status: 'Extracting', progressDetail: { current: 0, total: layer.size } });
  const result = await apply(await deps.content.reader(ctx, layer.digest));
  await deps.content.updateLabels(ctx, layer.digest, { [GcLabels.layerSize]: String(result.size) }).catch(() => {});
  return { diffId: result.diffId };
}

/** The commit of a verified, flushed download, for after it was marked; at most once. */
function deferredBlob(svc: ImageServiceCore, ctx: Ctx, writer: ContentWriter, layer: Descriptor): DeferredBlob {
  let committed: Promise<void> | undefined;
  let discarded: Promise<void> | undefined;
  return {
    commit: () => {
      if (discarded) return Promise.reject(berthError('Unavailable', `layer ${layer.digest}: its download was dropped by a failed pull; pull again`));
      return (committed ??= writer.commit(ctx, { size: layer.size, digest: layer.digest, synced: true }).then(
        () => {},
        (err) => {
          if (!isAlreadyExists(err)) throw err;
        },
      ));
    },
    discard: () => {
      if (committed) return committed.catch(() => {});
      return (discarded ??= (async () => {
        await writer.close();
        await svc.deps.content.abort(cleanupCtx(ctx), writer.ref);
      })());
    },
  };
}
