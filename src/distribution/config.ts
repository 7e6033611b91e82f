import type { ConfigSection, SectionValues } from '../core/config.ts';

/**
 * The `[registry]` section of berth.toml: how berth talks to registries.
 * daemon/ includes it and hands `distributionConfig(values)` to the client.
 */
export const registrySection: ConfigSection = {
  name: 'registry',
  doc: 'OCI distribution client: registries, mirrors, credentials, retries',
  fields: {
    config_path: {
      type: 'string',
      default: '/etc/berth/certs.d',
      doc: 'directory of <host[:port]>/hosts.toml files (containerd format) naming mirrors, CAs and plain-HTTP registries; missing is fine',
    },
    auth_files: {
      type: 'string[]',
      default: ['/etc/berth/auth.json', '/root/.docker/config.json'],
      doc: 'docker config.json-style credential files, searched in order; `login` writes the first',
    },
    max_concurrent_downloads: { type: 'number', default: 3, doc: 'layer downloads in flight per pull; more is faster on fast links and harder on the registry' },
    max_concurrent_uploads: { type: 'number', default: 5, doc: 'layer uploads in flight per push' },
    retries: { type: 'number', default: 3, doc: 'retries of a request after a connection error, 5xx or 429, with exponential backoff' },
    retry_backoff_ms: { type: 'number', default: 250, doc: 'first backoff delay; doubled on each retry' },
    progress_timeout_s: { type: 'number', default: 30, doc: 'abort an attempt when no bytes arrived for this long (then resume with Range); 0 disables' },
    connect_timeout_s: { type: 'number', default: 30, doc: 'give up on a connection attempt after this long' },
    upload_chunk_mib: { type: 'number', default: 16, doc: 'blobs up to this size upload in one PUT; larger ones in PATCH chunks of this size' },
  },
};

export interface DistributionConfig {
  configPath: string;
  authFiles: string[];
  maxConcurrentDownloads: number;
  maxConcurrentUploads: number;
  retries: number;
  retryBackoffMs: number;
  progressTimeoutMs: number;
  connectTimeoutMs: number;
  uploadChunkBytes: number;
}

/** Typed config from the resolved section values (see registrySection for defaults). */
export function distributionConfig(v: SectionValues = {}): DistributionConfig {
  const num = (k: string) => Number(v[k] ?? registrySection.fields[k].default);
  return {
    configPath: String(v.config_path ?? registrySection.fields.config_path.default),
    authFiles: [...((v.auth_files ?? registrySection.fields.auth_files.default) as string[])],
    maxConcurrentDownloads: Math.max(1, num('max_concurrent_downloads')),
    maxConcurrentUploads: Math.max(1, num('max_concurrent_uploads')),
    retries: Math.max(0, num('retries')),
    retryBackoffMs: Math.max(0, num('retry_backoff_ms')),
    progressTimeoutMs: Math.max(0, num('progress_timeout_s')) * 1000,
    connectTimeoutMs: Math.max(1, num('connect_timeout_s')) * 1000,
    uploadChunkBytes: Math.max(1, num('upload_chunk_mib')) * 1024 * 1024,
  };
}
