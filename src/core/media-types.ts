import type { ImageConfigFields } from './images.ts';
/**
 * Media types and annotation keys of the OCI image spec and Docker's
 * schema2, in one place. Manifests and indexes of either family are
 * accepted everywhere; berth writes OCI.
 */
export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  /** Schema 1 is deprecated; recognised only to refuse it with a clear message. */
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
} as const;

export const Annotations = {
  refName: 'org.opencontainers.image.ref.name',
  created: 'org.opencontainers.image.created',
  /** containerd's annotation on index.json entries: the full image name. */
  containerdImageName: 'io.containerd.image.name',
} as const;

export const isManifestType = (mt: string | undefined): boolean =>
  mt === MediaTypes.ociManifest || mt === MediaTypes.dockerManifest;

/**
 * Layer media types an image may name: the OCI image spec's (plain, gzip,
 * zstd, and the non-distributable ones the spec has deprecated but images
 * still carry) and Docker schema 2's (plain, gzip, zstd, foreign).
 */
export const LAYER_MEDIA_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.diff.tar.zstd',
  'application/vnd.docker.image.rootfs.foreign.diff.tar',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);

export const isLayerType = (mt: string | undefined): boolean => mt !== undefined && LAYER_MEDIA_TYPES.has(mt);

export const isIndexType = (mt: string | undefined): boolean =>
  mt === MediaTypes.ociIndex || mt === MediaTypes.dockerManifestList;

/** The Accept header for manifest requests, preferring indexes so a caller can pick a platform. */
export const MANIFEST_ACCEPT = [
  MediaTypes.ociIndex,
  MediaTypes.dockerManifestList,
  MediaTypes.ociManifest,
  MediaTypes.dockerManifest,
].join(', ');

/** How a layer's bytes are compressed, from its media type. */
export function layerCompression(mt: string): 'gzip' | 'zstd' | 'none' | undefined {
  if (mt.endsWith('+gzip') || mt.endsWith('.tar.gzip')) return 'gzip';
  if (mt.endsWith('+zstd')) return 'zstd';
  if (mt.endsWith('.tar')) return 'none';
  return undefined;
}

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: `${string}:${string}`;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  author?: string;
  config?: ImageConfigFields;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: { created?: string; created_by?: string; comment?: string; empty_layer?: boolean; author?: string }[];
}

export const isConfigType = (mt: string | undefined): boolean => mt === MediaTypes.ociConfig || mt === MediaTypes.dockerConfig;
