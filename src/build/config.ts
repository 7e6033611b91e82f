import type { ConfigSection, SectionValues } from '../core/config.ts';
import { berthError } from '../core/errors.ts';

/** The `[build]` section of berth.toml. */
export const buildSection: ConfigSection = {
  name: 'build',
  doc: 'image builds from Dockerfiles (berth build, the Docker API /build)',
  fields: {
    max_context_bytes: {
      type: 'number',
      default: 4 * 1024 * 1024 * 1024,
      doc: 'largest build context accepted (bytes as sent, a tar): a bigger one is refused before it fills the disk; contexts are unpacked under the state dir while the build runs',
    },
    compression: {
      type: 'string',
      default: 'gzip',
      doc: 'gzip (every client reads it) or zstd (smaller and faster to unpack; needs a client that reads zstd layers, as containerd 1.5+, podman and docker 23+ do)',
    },
    compression_level: {
      type: 'number',
      default: 1,
      doc: 'compression level of new layers (gzip 1-9, zstd 1-19): a build compresses every layer it makes, most of them never pushed, so the default is the fastest (gzip 1 wrote a layer of small text files ~12% larger than 6, in a quarter of the CPU); raise it for smaller pushes',
    },
  },
};

export interface BuildSettings {
  maxContextBytes: number;
  compression: 'gzip' | 'zstd';
  compressionLevel: number;
}

export function buildSettings(v: SectionValues = {}): BuildSettings {
  const max = Number(v.max_context_bytes ?? buildSection.fields.max_context_bytes.default);
  if (!Number.isFinite(max) || max < 1024) throw berthError('InvalidArgument', `config: build.max_context_bytes must be a number of bytes of at least 1024, not ${v.max_context_bytes}`);
  const compression = String(v.compression ?? 'gzip');
  if (compression !== 'gzip' && compression !== 'zstd') throw berthError('InvalidArgument', `config: build.compression must be gzip or zstd, not "${compression}"`);
  const level = Number(v.compression_level ?? buildSection.fields.compression_level.default);
  const top = compression === 'gzip' ? 9 : 19;
  if (!Number.isInteger(level) || level < 1 || level > top) throw berthError('InvalidArgument', `config: build.compression_level must be a whole number from 1 to ${top} for ${compression}, not ${v.compression_level}`);
  return { maxContextBytes: max, compression, compressionLevel: level };
}
