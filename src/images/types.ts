import type { Readable } from 'node:stream';
import type { Ctx } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import type { ImageConfigFields } from '../core/images.ts';
import type { ContentStore } from '../content/types.ts';
import type { Snapshotter } from '../snapshots/types.ts';

/**
 * What the image service needs from the parts below it, each as the
 * narrowest role it uses. daemon/wire.ts adapts the metadata stores, the
 * distribution client and the layer applier to these roles.
 */

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

/**
 * An image record: a name pointing at a manifest or index (containerd's
 * model). `name` is the normalized reference (`docker.io/library/busybox:latest`);
 * an image without a name (import without a tag, a load of an untagged
 * archive, an image whose tag moved) is kept under `sha256:<config hex>`, which
 * is how docker's dangling `<none>:<none>` images appear.
 */
export interface ImageRecord {
  name: string;
  target: Descriptor;
  labels: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

/** Image records of one namespace (ctx.namespace). NotFound, AlreadyExists. */
export interface ImageRecordStore {
  get(ctx: Ctx, name: string): Promise<ImageRecord>;
  list(ctx: Ctx): Promise<ImageRecord[]>;
  /** Create or replace the record of `rec.name`. */
  put(ctx: Ctx, rec: { name: string; target: Descriptor; labels?: Record<string, string> }): Promise<ImageRecord>;
  delete(ctx: Ctx, name: string): Promise<void>;
}

/** The write-behind as pulls and loads use it (images/write-behind.ts). */
export interface WriteBehindRole {
  /** Name what the operation holding `ctx.lease` is about to commit before its bytes are durable; resolves once that is on disk. */
  mark(ctx: Ctx, objects: { snapshots: string[]; blobs: Digest[] }): Promise<void>;
  /** The operation holding `lease` ended: a sync may clear its marks now; one is started. */
  settle(lease: string | undefined): void;
}

/** Leases protect content and snapshots made during an operation from GC. */
export interface LeaseRole {
  /** A new lease that expires after `ttlMs` should its holder die. */
  create(ctx: Ctx, opts: { ttlMs: number }): Promise<string>;
  delete(ctx: Ctx, id: string): Promise<void>;
  /** Add a resource to ctx.lease (no-op without one). */
  attach(ctx: Ctx, res: { kind: 'content' | 'snapshot' | 'ingest'; id: string; snapshotter?: string }): Promise<void>;
}

/** Garbage collection of unreferenced content and snapshots. */
export interface GcRole {
  collect(ctx: Ctx): Promise<{ contentBytes: number; removed: number }>;
}

/** The names of the images that containers of ctx.namespace use (by image ID or name). */
export interface ContainerUsageRole {
  imagesInUse(ctx: Ctx): Promise<{ imageId: string; image: string; containerId: string }[]>;
}

/** A resolved reference: the normalized name and the descriptor the registry answers. */
export interface Resolved {
  name: string;
  descriptor: Descriptor;
}

/**
 * The registry, through the distribution client. `fetch` streams a manifest
 * or blob (retrying and resuming inside); `push` uploads one blob or
 * manifest unless the registry already has it or can mount it from one of
 * `mountFrom` (repository paths of the same registry), and says which.
 */
export interface RegistryRole {
  resolve(ctx: Ctx, ref: string): Promise<Resolved>;
  /** From byte `offset` of a blob (0 for manifests). */
  fetch(ctx: Ctx, ref: string, desc: Descriptor, offset?: number): Promise<Readable>;
  push(ctx: Ctx, ref: string, desc: Descriptor, body: (offset: number) => Promise<Readable>, onProgress?: (bytes: number) => void, mountFrom?: string[]): Promise<'exists' | 'mounted' | 'uploaded'>;
  /** Check credentials against the registry; Unauthenticated when refused. */
  login(ctx: Ctx, host: string, username: string, password: string): Promise<void>;
}

/** Credentials written by `berth login`, in docker's config.json format. */
export interface CredentialRole {
  store(host: string, username: string, password: string): Promise<void>;
  erase(host: string): Promise<boolean>;
}

/**
 * Unpack a layer (an uncompressed tar stream) into `dir`; `format: 'overlay'`
 * records whiteouts as overlay upper entries. Resolves to the diff ID
 * (sha256 of the uncompressed tar) and its size. With `maxBytes`, a tar
 * that grows past it stops there (ResourceExhausted).
 */
/** `handOver`: the caller neither reads nor reuses the stream's chunks once they are read (see ApplierPool.apply). */
export type ApplyLayer = (ctx: Ctx, dir: string, stream: Readable, opts: { format: 'overlay' | 'plain'; maxBytes?: number; handOver?: boolean }) => Promise<{ diffId: Digest; size: number }>;

/** Mount `mounts` on a temp dir for the duration of `fn` (a bind of one dir is used in place). */
export type WithMounted = <T>(ctx: Ctx, mounts: { type: string; source: string; options: string[] }[], fn: (dir: string) => Promise<T>) => Promise<T>;

/** OCI media types the image service speaks. */
export const MediaTypes = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
} as const;

export const isIndex = (mt: string) => mt === MediaTypes.ociIndex || mt === MediaTypes.dockerManifestList;

/** The labels containerd's GC follows from one blob to what it references. */
export const GcLabels = {
  contentRef: (kind: string) => `containerd.io/gc.ref.content.${kind}`,
  snapshotRef: (snapshotter: string) => `containerd.io/gc.ref.snapshot.${snapshotter}`,
  /** The image's uncompressed layer digest, on a layer blob (containerd's `containerd.io/uncompressed`). */
  uncompressed: 'containerd.io/uncompressed',
  /** On an image record: when the name was (re)tagged, for inspect's LastTagTime. */
  lastTagTime: 'io.berth.image.last-tag-time',
  /** On a layer blob: the size of its uncompressed tar, for docker's image SIZE. */
  layerSize: 'io.berth.layer.uncompressed-size',
  /** On a dangling record: the `repo@digest` it was pulled as, so it still lists as `repo <none>`. */
  repoDigest: 'io.berth.image.repo-digest',
} as const;

export interface Manifest {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
}

/** The OCI image config (docker's is the same shape). */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config?: ImageConfigFields;
  rootfs: { type: string; diff_ids: Digest[] };
  history?: { created?: string; created_by?: string; author?: string; comment?: string; empty_layer?: boolean }[];
  comment?: string;
  docker_version?: string;
}

export interface ResolvedImage {
  /** The record's target: a manifest, or an index. */
  target: Descriptor;
  manifestDesc: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
  /** The image ID: the config digest. */
  id: Digest;
  /** Unpacked size: the layers' uncompressed sizes where recorded, else their blob sizes. */
  size: number;
  /** The same, per layer. */
  layerSizes: number[];
}

export interface ImagesConfig {
  /** Layers downloaded (and unpacked) at once per pull. */
  maxConcurrentDownloads: number;
  /** Lease lifetime should the daemon die mid-operation. */
  leaseTtlMs: number;
  /** Bound on one layer's uncompressed size for pull, load and import (`images.max_layer_unpacked_mib`); none when undefined. */
  maxLayerUnpackedBytes?: number;
}

export interface ImageServiceDeps {
  content: ContentStore;
  records: ImageRecordStore;
  snapshotter: Snapshotter;
  applyLayer: ApplyLayer;
  withMounted: WithMounted;
  leases: LeaseRole;
  gc: GcRole;
  /**
   * Make everything written so far to the content store and the snapshotter
   * durable (a syncfs of their file systems). With it, a pull commits its
   * blobs and snapshots only after one such call, instead of an fsync per
   * blob, and no crash can leave a committed snapshot whose files are lost.
   */
  durable?: (ctx: Ctx) => Promise<void>;
  /**
   * A pull or load commits its blobs and snapshots before their bytes are
   * durable: it marks them here first, answers, and the sync runs behind the
   * answer (images/write-behind.ts).
   */
  writeBehind: WriteBehindRole;
  containers?: ContainerUsageRole;
  registry: RegistryRole;
  credentials: CredentialRole;
  config: ImagesConfig;
  platform?: Platform;
}

/** A located image: its ID, the resolved manifest and the records (names) that point at it. */
export interface FoundImage extends ResolvedImage {
  records: ImageRecord[];
}

/**
 * What the service's operations (pull, push, remove, prune, save, load,
 * import, commit: a file each) use of the service that calls them. They
 * depend on this rather than on the service, which imports them.
 */
export interface ImageServiceCore {
  readonly deps: ImageServiceDeps;
  readonly platform: Platform;
  /** Per-layer work in progress, shared by concurrent pulls of the same layers. */
  readonly inflight: Map<string, Promise<unknown>>;
  resolveRecord(ctx: Ctx, rec: ImageRecord): Promise<ResolvedImage>;
  all(ctx: Ctx): Promise<{ rec: ImageRecord; img: ResolvedImage }[]>;
  find(ctx: Ctx, input: string): Promise<FoundImage>;
  setName(ctx: Ctx, name: string, target: Descriptor, id: Digest, labels?: Record<string, string>): Promise<void>;
  usage(ctx: Ctx): Promise<{ imageId: string; image: string; containerId: string }[]>;
  /** Whether an operation holds image `id` (see ImageService.hold): prune passes it over. */
  isHeld(ctx: Ctx, id: string): boolean;
  withLease<T>(ctx: Ctx, fn: (leased: Ctx) => Promise<T>): Promise<T>;
}
