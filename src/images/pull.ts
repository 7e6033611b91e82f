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
import { familiarName, normalizeName, parseName } from './names.ts';
import type { ImageServiceCore } from './types.ts';
import { limiter, readAllStream, waitDrain } from './streams.ts';
import type { Descriptor, ImageConfig, Index, Manifest, Platform } from './types.ts';
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
    let indexBytes: Buffer | undefined;
    let manifestDesc = target;
    let manifestBytes = await fetchJson(target, isIndex(target.mediaType) ? 'index' : 'manifest');
    if (isIndex(target.mediaType)) {
      indexBytes = manifestBytes;
      manifestDesc = selectFromIndex(parseJson<Index>(indexBytes, 'index'), platform, familiarName(name));
      manifestBytes = await fetchJson(manifestDesc, 'manifest');
    }
    const manifest = parseJson<Manifest>(manifestBytes, 'manifest');
    if (!manifest.config?.digest || !Array.isArray(manifest.layers)) throw berthError('DataLoss', `manifest ${manifestDesc.digest} has no config or layers`);
    const configBytes = await fetchJson(manifest.config, 'image config');
    const config = parseJson<ImageConfig>(configBytes, 'image config');
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== manifest.layers.length) {
      throw berthError('DataLoss', `image ${familiarName(name)}: manifest has ${manifest.layers.length} layers but the config lists ${diffIds.length} diff IDs`);
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

function parseJson<T>(buf: Buffer, what: string): T {
  try {
    return JSON.parse(buf.toString('utf8')) as T;
  } catch (err) {
    throw berthError('DataLoss', `${what} is not valid JSON`, err);
  }
}

/** Is everything an image needs present: its blobs and its top snapshot? */
async function isComplete(svc: ImageServiceCore, ctx: Ctx, target: Descriptor): Promise<boolean> {
  try {
    const img = await svc.resolveRecord(ctx, { name: '', target, labels: {}, createdAt: new Date(), updatedAt: new Date() });
    const top = chainIds(img.config.rootfs.diff_ids).at(-1);
    if (top) await svc.deps.snapshotter.stat(ctx, top);
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
}

/** Unpack `layers` (fetching those not in the content store) into committed snapshots named by chain ID. */
export async function unpackLayers(svc: ImageServiceCore, ctx: Ctx, name: string, layers: Descriptor[], diffIds: Digest[], emit: Emit): Promise<Digest[]> {
  const { deps } = svc;
  const sn = deps.snapshotter;
  const chain = chainIds(diffIds);
  const parallel = sn.capabilities.parallelUnpack;
  const limit = limiter(Math.max(1, deps.config.maxConcurrentDownloads));
  const created: string[] = [];
  for (const l of layers) emit({ id: shortId(l.digest), status: 'Waiting' });

  const jobs = layers.map((layer, i) =>
    (async (): Promise<Extracted | undefined> => {
      const id = shortId(layer.digest);
      await deps.leases.attach(ctx, { kind: 'snapshot', id: chain[i], snapshotter: sn.name });
      await deps.leases.attach(ctx, { kind: 'content', id: layer.digest });
      if (await snapshotExists(svc, ctx, chain[i])) {
        emit({ id, status: 'Already exists' });
        return undefined;
      }
      return shared(svc, `fetch:${chain[i]}`, () =>
        limit(async () => {
          if (await snapshotExists(svc, ctx, chain[i])) return {};
          if (!parallel) {
            await fetchLayer(svc, ctx, name, layer, id, emit, undefined);
            return {};
          }
          const key = `extract-${randomBytes(6).toString('hex')}-${chain[i]}`;
          const mounts = await sn.prepare(ctx, key, undefined, { labels: { 'containerd.io/snapshot.ref': chain[i] } });
          created.push(key);
          await deps.leases.attach(ctx, { kind: 'snapshot', id: key, snapshotter: sn.name });
          const diffId = await deps.withMounted(ctx, mounts, (dir) => fetchLayer(svc, ctx, name, layer, id, emit, (stream) => deps.applyLayer(ctx, dir, stream, { format: 'overlay' })));
          if (diffId !== diffIds[i]) throw berthError('DataLoss', `layer ${layer.digest}: unpacked diff ID ${diffId} does not match the config's ${diffIds[i]}`);
          return { key };
        }),
      );
    })(),
  );
  const results = await Promise.allSettled(jobs);
  const failed = results.find((r) => r.status === 'rejected');
  try {
    if (failed) throw (failed as PromiseRejectedResult).reason;
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
    const res = await deps.withMounted(ctx, mounts, async (dir) => deps.applyLayer(ctx, dir, await deps.content.reader(ctx, layer.digest), { format: 'plain' }));
    const got = res.diffId;
    await deps.content.updateLabels(ctx, layer.digest, { [GcLabels.layerSize]: String(res.size) }).catch(() => {});
    if (got !== diffId) throw berthError('DataLoss', `layer ${layer.digest}: unpacked diff ID ${got} does not match the config's ${diffId}`);
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
): Promise<Digest | undefined> {
  const { deps } = svc;
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
  applied?.catch(() => {});
  const hash = createHash('sha256');
  let n = 0;
  let lastEmit = 0;
  try {
    emit({ id, status: present ? 'Extracting' : 'Downloading', progressDetail: { current: 0, total: layer.size } });
    for await (const c of src) {
      const chunk = c as Buffer;
      hash.update(chunk);
      n += chunk.length;
      if (n > layer.size) throw berthError('DataLoss', `layer ${layer.digest}: the registry sent more than the ${layer.size} bytes the manifest declares`);
      if (writer) await writer.write(chunk);
      if (toApply && !applyDone && !toApply.destroyed && !toApply.write(chunk)) await Promise.race([waitDrain(toApply), applied!.catch(() => {})]);
      if (n - lastEmit >= 512 * 1024 || n === layer.size) {
        lastEmit = n;
        emit({ id, status: present ? 'Extracting' : 'Downloading', progressDetail: { current: n, total: layer.size } });
      }
    }
    const got = `sha256:${hash.digest('hex')}`;
    if (n !== layer.size || got !== layer.digest) {
      throw berthError('DataLoss', `layer ${layer.digest}: digest mismatch: received ${n} bytes with digest ${got} (expected ${layer.size} bytes)`);
    }
    toApply?.end();
    if (writer) {
      emit({ id, status: 'Verifying Checksum' });
      try {
        await writer.commit(ctx, { size: layer.size, digest: layer.digest });
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
      writer = undefined;
      emit({ id, status: 'Download complete' });
    }
    if (!applied) return undefined;
    emit({ id, status: 'Extracting', progressDetail: { current: layer.size, total: layer.size } });
    const result = await applied;
    await deps.content.updateLabels(ctx, layer.digest, { [GcLabels.layerSize]: String(result.size) }).catch(() => {});
    return result.diffId;
  } catch (err) {
    toApply?.destroy();
    src.destroy();
    throw await failLayer(svc, ctx, layer, writer, err);
  }
}

/**
 * Close the ingest after a failure: wrong bytes are discarded, anything
 * else (a cancel, the registry going away) keeps what arrived so the next
 * pull resumes there; GC removes abandoned ingests after a grace period.
 */
async function failLayer(svc: ImageServiceCore, ctx: Ctx, layer: Descriptor, writer: ContentWriter | undefined, err: unknown): Promise<Error> {
  const dataLoss = kindOf(err) === 'DataLoss' || kindOf(err) === 'FailedPrecondition';
  if (writer) {
    await writer.close().catch(() => {});
    if (dataLoss) await svc.deps.content.abort(cleanupCtx(ctx), writer.ref).catch(() => {});
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
): Promise<Digest | undefined> {
  const { deps } = svc;
  let n = offset;
  let lastEmit = n;
  let open: ContentWriter | undefined = writer;
  try {
    for await (const c of src) {
      n += (c as Buffer).length;
      if (n > layer.size) throw berthError('DataLoss', `layer ${layer.digest}: the registry sent more than the ${layer.size} bytes the manifest declares`);
      await writer.write(c as Buffer);
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
  if (!apply) return undefined;
  emit({ id, status: 'Extracting', progressDetail: { current: 0, total: layer.size } });
  const result = await apply(await deps.content.reader(ctx, layer.digest));
  await deps.content.updateLabels(ctx, layer.digest, { [GcLabels.layerSize]: String(result.size) }).catch(() => {});
  return result.diffId;
}
