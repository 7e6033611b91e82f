import type { ImageHistoryItem, ImageInspect, ImageSummary } from '../core/images.ts';
import { chainIds } from '../core/chain-id.ts';
import { familiarName, isDanglingName, parseName } from './names.ts';
import type { ImageRecord, ResolvedImage } from './types.ts';
import { GcLabels } from './types.ts';

/** Docker-shaped views of an image: a list row, inspect and history. */

export function repoTags(records: ImageRecord[]): string[] {
  return records
    .filter((r) => !isDanglingName(r.name) && !r.name.includes('@'))
    .map((r) => familiarName(r.name))
    .sort();
}

export function repoDigests(records: ImageRecord[]): string[] {
  const out = new Set<string>();
  for (const r of records) {
    const kept = r.labels[GcLabels.repoDigest];
    if (kept) out.add(familiarRepoDigest(kept));
    if (isDanglingName(r.name)) continue;
    out.add(`${familiarName(parseName(r.name).repository)}@${r.target.digest}`);
  }
  return [...out].sort();
}

function familiarRepoDigest(s: string): string {
  const at = s.lastIndexOf('@');
  return `${familiarName(s.slice(0, at))}${s.slice(at)}`;
}

export function imageSize(img: ResolvedImage): number {
  return img.size;
}

function createdSeconds(img: ResolvedImage): number {
  const t = img.config.created ? Date.parse(img.config.created) : NaN;
  return Number.isNaN(t) ? 0 : Math.floor(t / 1000);
}

export function toSummary(img: ResolvedImage, records: ImageRecord[], containers: number): ImageSummary {
  return {
    Id: img.id,
    ParentId: '',
    RepoTags: repoTags(records),
    RepoDigests: repoDigests(records),
    Created: createdSeconds(img),
    Size: imageSize(img),
    Labels: img.config.config?.Labels ?? {},
    Containers: containers,
  };
}

export function toInspect(img: ResolvedImage, records: ImageRecord[], snapshotter: string): ImageInspect {
  const c = img.config;
  const lastTag = records.map((r) => r.labels[GcLabels.lastTagTime]).filter(Boolean).sort().at(-1) ?? '0001-01-01T00:00:00Z';
  const diffIds = c.rootfs?.diff_ids ?? [];
  return {
    Id: img.id,
    RepoTags: repoTags(records),
    RepoDigests: repoDigests(records),
    Parent: '',
    Comment: c.comment ?? c.history?.at(-1)?.comment ?? '',
    Created: c.created ?? '0001-01-01T00:00:00Z',
    DockerVersion: c.docker_version ?? '',
    Author: c.author ?? '',
    Config: {
      User: c.config?.User ?? '',
      ExposedPorts: c.config?.ExposedPorts,
      Env: c.config?.Env ?? [],
      Entrypoint: c.config?.Entrypoint ?? null,
      Cmd: c.config?.Cmd ?? null,
      Volumes: c.config?.Volumes,
      WorkingDir: c.config?.WorkingDir ?? '',
      Labels: c.config?.Labels ?? {},
      StopSignal: c.config?.StopSignal,
      OnBuild: c.config?.OnBuild ?? null,
      ...(c.config?.Healthcheck ? { Healthcheck: c.config.Healthcheck } : {}),
    },
    Architecture: c.architecture,
    Variant: c.variant,
    Os: c.os,
    Size: imageSize(img),
    GraphDriver: { Name: snapshotter, Data: diffIds.length ? { ChainID: chainIds(diffIds).at(-1)! } : null },
    RootFS: { Type: c.rootfs?.type ?? 'layers', Layers: diffIds },
    Metadata: { LastTagTime: lastTag },
  };
}

/** Docker's history: one row per config history entry, newest first; layer rows carry the layer size. */
export function toHistory(img: ResolvedImage, records: ImageRecord[]): ImageHistoryItem[] {
  const layers = img.manifest.layers;
  type H = NonNullable<ResolvedImage['config']['history']>[number];
  const hist: H[] = img.config.history?.length ? img.config.history : layers.map(() => ({ created_by: '', empty_layer: false }));
  let li = 0;
  const rows: ImageHistoryItem[] = hist.map((h) => {
    const size = h.empty_layer ? 0 : (img.layerSizes[li] ?? layers[li]?.size ?? 0);
    if (!h.empty_layer) li++;
    const t = h.created ? Date.parse(h.created) : NaN;
    return {
      Id: '<missing>',
      Created: Number.isNaN(t) ? 0 : Math.floor(t / 1000),
      CreatedBy: h.created_by ?? '',
      Tags: null,
      Size: size,
      Comment: h.comment ?? '',
    };
  });
  rows.reverse();
  if (rows.length) {
    rows[0].Id = img.id;
    rows[0].Tags = repoTags(records);
  }
  return rows;
}
