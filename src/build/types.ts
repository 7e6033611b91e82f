import type { Readable } from 'node:stream';
import type { ContainerConfig } from '../core/containers.ts';
import type { Ctx } from '../core/context.ts';
import type { BuildEvent } from '../core/build.ts';
import type { ImageConfigFields, ProgressEvent } from '../core/images.ts';
import type { BuildCacheEntry } from '../metadata/build-cache.ts';
import type { Lease, LeaseResource } from '../metadata/leases.ts';
import type { Descriptor, ImageConfig, Manifest } from '../images/types.ts';
import type { HistoryEntry } from '../runtime/containers/types.ts';

// The builder's types, below the builder and its parts: what a build is
// asked (BuildRequest), what it reports (BuildEvent), and the narrow roles
// of the services it runs on (BuilderDeps), which daemon/ fills in.

export interface BuildRequest {
  /** Names to tag the result with (`-t`, several). */
  tags?: string[];
  /** The Dockerfile's path inside the context (default `Dockerfile`). */
  dockerfile?: string;
  buildArgs?: Record<string, string>;
  labels?: Record<string, string>;
  /** The stage to build (`--target`); the last one when absent. */
  target?: string;
  noCache?: boolean;
  /** Pull every base image even when it is present (`--pull`). */
  pull?: boolean;
  /** Images whose steps may be reused (`--cache-from`): their history is matched step by step. */
  cacheFrom?: string[];
  /** `linux/amd64`-style; only the host's platform is supported. */
  platform?: string;
  /** The network of RUN steps without `--network`: `default` (the bridge) or `none`. */
  network?: string;
}

export type { BuildEvent };

export interface BuildResult {
  id: string;
  tags: string[];
}

/** An image as the builder needs it. */
export interface BuildImage {
  id: string;
  target: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
}

/** The image service, narrowed. */
export interface BuildImages {
  find(ctx: Ctx, ref: string): Promise<BuildImage>;
  pull(ctx: Ctx, ref: string, onProgress: (ev: ProgressEvent) => void): Promise<string>;
  /** Store an image made of `layers` (already stored, with `topSnapshot` their chain) and `config`; untagged. */
  record(ctx: Ctx, image: { config: ImageConfig; layers: Descriptor[]; topSnapshot?: string }): Promise<string>;
  /** Make sure an untagged record names image `id` (a cache hit whose record was removed); true when it made one. */
  ensureRecord(ctx: Ctx, id: string, target: BuildCacheEntry['target']): Promise<boolean>;
  /** Remove the untagged record named `id`, if no other name points at the image it is harmless. */
  dropRecord(ctx: Ctx, id: string): Promise<void>;
  tag(ctx: Ctx, id: string, name: string): Promise<void>;
  /** Keep image `id` from a concurrent prune until the returned function is called. */
  hold(ctx: Ctx, id: string): () => void;
  gc(ctx: Ctx): Promise<{ bytes: number }>;
  platform: { os: string; architecture: string; variant?: string };
}

/** The container service, narrowed to what RUN and COPY need. */
export interface BuildContainers {
  create(ctx: Ctx, config: ContainerConfig): Promise<{ id: string }>;
  start(ctx: Ctx, id: string): Promise<void>;
  attach(ctx: Ctx, id: string): Promise<{ stream: NodeJS.ReadableStream & { destroy(): void } }>;
  wait(ctx: Ctx, id: string, condition: 'next-exit'): Promise<{ exitCode: number; error?: string }>;
  rootfsOf(ctx: Ctx, id: string): Promise<{ rootfs: string; release: () => Promise<void> }>;
  commit(ctx: Ctx, id: string, opts: { config: ImageConfigFields; createdBy: string; history: HistoryEntry[]; created?: string; clampMtime?: number; compression?: 'gzip' | 'zstd'; compressionLevel?: number; pause: false; consumeLayer?: boolean }): Promise<string>;
  remove(ctx: Ctx, id: string): Promise<void>;
}

export interface BuildCache {
  get(ctx: Ctx, key: string): Promise<BuildCacheEntry | undefined>;
  put(ctx: Ctx, e: Omit<BuildCacheEntry, 'createdAt' | 'lastUsedAt'>): Promise<void>;
  list(ctx: Ctx): Promise<BuildCacheEntry[]>;
  delete(ctx: Ctx, key: string): Promise<void>;
}

export interface BuildLeases {
  create(ctx: Ctx, opts: { id: string; labels: Record<string, string> }): Promise<Lease>;
  delete(ctx: Ctx, id: string): Promise<void>;
  addResource(ctx: Ctx, leaseId: string, res: LeaseResource): Promise<void>;
}

export interface BuilderConfig {
  /** Largest context accepted, in bytes. */
  maxContextBytes: number;
  /** How new layers are compressed. */
  compression: 'gzip' | 'zstd';
  compressionLevel: number;
  /** Where contexts are unpacked while a build runs (`<root>/builds`), emptied at start. */
  workDir: string;
  /** Where `RUN --mount=type=cache` directories persist (`<root>/build-cache-mounts`), emptied by prune. */
  cacheMountDir: string;
  /** How many files of contexts read in place keep their content hash between builds. */
  hashCacheEntries?: number;
}

export interface BuilderDeps {
  images: BuildImages;
  containers: BuildContainers;
  cache: BuildCache;
  leases: BuildLeases;
  config: BuilderConfig;
}

export interface BuildInput {
  request: BuildRequest;
  /**
   * The context: a tar (plain, gzip or zstd) sent by the client, or a
   * directory on berthd's host read where it is (`dir`, absolute), for a
   * caller the front door has checked sees this file system as root.
   */
  context: Readable | { dir: string };
  onEvent?: (ev: BuildEvent) => void;
}

export type { HistoryEntry };
