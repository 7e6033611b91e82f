import type { Ctx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { digestOf } from '../core/digest.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { berthError, isAlreadyExists, isNotFound, kindOf } from '../core/errors.ts';
import type { ContentStore } from '../content/types.ts';
import type { Descriptor, ImageConfig, Index, LeaseRole, Manifest, Platform, ResolvedImage } from './types.ts';
import { GcLabels, isIndex } from './types.ts';

/** Manifests, indexes and configs are small; anything larger is refused. */
export const MAX_JSON_BLOB = 8 << 20;

export async function readJsonBlob<T>(ctx: Ctx, content: ContentStore, digest: Digest, what: string): Promise<T> {
  const buf = await content.readAll(ctx, digest, MAX_JSON_BLOB);
  try {
    return JSON.parse(buf.toString('utf8')) as T;
  } catch (err) {
    throw berthError('DataLoss', `${what} ${digest} is not valid JSON`, err);
  }
}

/** Store `data` as a blob (present already counts as success) and set `labels` on it. */
export async function putBlob(ctx: Ctx, content: ContentStore, data: Buffer, labels: Record<string, string> = {}, expected?: Digest, lease?: LeaseRole): Promise<Digest> {
  const digest = digestOf(data);
  await lease?.attach(ctx, { kind: 'content', id: digest });
  if (expected && expected !== digest) throw berthError('DataLoss', `content digest mismatch: expected ${expected}, got ${digest}`);
  const present = await content.info(ctx, digest).then(
    () => true,
    (err) => {
      if (isNotFound(err)) return false;
      throw err;
    },
  );
  if (!present) {
    let w;
    try {
      w = await content.writer(ctx, { ref: `put-${digest}`, expected: { digest, size: data.length } });
    } catch (err) {
      // Another operation is writing these very bytes: wait for it rather than fail.
      if (kindOf(err) !== 'Unavailable') throw err;
      for (let i = 0; i < 500 && !(await hasBlob(ctx, content, digest)); i++) await sleep(20, undefined, { signal: ctx.signal });
      if (!(await hasBlob(ctx, content, digest))) throw err;
      if (Object.keys(labels).length) await content.updateLabels(ctx, digest, labels);
      return digest;
    }
    try {
      // A resumed ref holds a prefix of these same bytes (the ref is named by digest).
      await w.write(data.subarray(w.offset));
      await w.commit(ctx, { size: data.length, digest, labels });
      return digest;
    } catch (err) {
      if (isAlreadyExists(err)) {
        if (Object.keys(labels).length) await content.updateLabels(ctx, digest, labels);
        return digest;
      }
      await w.close().catch(() => {});
      throw err;
    }
  }
  if (Object.keys(labels).length) await content.updateLabels(ctx, digest, labels);
  return digest;
}

export async function hasBlob(ctx: Ctx, content: ContentStore, digest: Digest): Promise<boolean> {
  try {
    await content.info(ctx, digest);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

const archMap: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

export function hostPlatform(): Platform {
  return { os: 'linux', architecture: archMap[process.arch] ?? process.arch };
}

export function parsePlatform(s: string): Platform {
  const [os, architecture, variant] = s.split('/');
  if (!os || !architecture) throw berthError('InvalidArgument', `invalid platform "${s}": expected os/arch[/variant]`);
  return { os, architecture, variant };
}

export function platformMatches(want: Platform, have: Platform | undefined): boolean {
  if (!have) return false;
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  return !want.variant || !have.variant || want.variant === have.variant;
}

/** Pick the manifest for `platform` from an index (Unavailable names what the index offers). */
export function selectFromIndex(index: Index, platform: Platform, where: string): Descriptor {
  const found = index.manifests.find((m) => platformMatches(platform, m.platform));
  if (found) return found;
  const offered = index.manifests.map((m) => (m.platform ? `${m.platform.os}/${m.platform.architecture}${m.platform.variant ? `/${m.platform.variant}` : ''}` : 'unknown')).join(', ');
  throw berthError('NotFound', `${where}: no manifest for platform ${platform.os}/${platform.architecture} (the index offers: ${offered || 'nothing'})`);
}

/** Walk a stored target down to the platform's manifest and config. */
export async function loadImage(ctx: Ctx, content: ContentStore, target: Descriptor, platform: Platform): Promise<ResolvedImage> {
  let manifestDesc = target;
  if (isIndex(target.mediaType)) {
    const index = await readJsonBlob<Index>(ctx, content, target.digest, 'index');
    const candidates = index.manifests.filter((m) => platformMatches(platform, m.platform));
    let chosen: Descriptor | undefined;
    for (const c of [...candidates, ...index.manifests]) {
      if (await hasBlob(ctx, content, c.digest)) {
        chosen = c;
        break;
      }
    }
    if (!chosen) throw berthError('NotFound', `index ${target.digest}: none of its manifests is present`);
    manifestDesc = chosen;
  }
  const manifest = await readJsonBlob<Manifest>(ctx, content, manifestDesc.digest, 'manifest');
  if (!manifest.config || !Array.isArray(manifest.layers)) throw berthError('DataLoss', `manifest ${manifestDesc.digest} has no config or layers`);
  const config = await readJsonBlob<ImageConfig>(ctx, content, manifest.config.digest, 'image config');
  const layerSizes: number[] = [];
  for (const l of manifest.layers) {
    const info = await content.info(ctx, l.digest).catch(() => undefined);
    const recorded = Number(info?.labels[GcLabels.layerSize]);
    layerSizes.push(Number.isFinite(recorded) && recorded > 0 ? recorded : l.size);
  }
  const size = layerSizes.reduce((a, b) => a + b, 0);
  return { target, manifestDesc, manifest, config, id: manifest.config.digest, size, layerSizes };
}
