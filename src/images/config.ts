import type { ConfigSection, SectionValues } from '../core/config.ts';
import { berthError } from '../core/errors.ts';

/** The `[images]` section of berth.toml. */
export const imagesSection: ConfigSection = {
  name: 'images',
  doc: 'image service: pull, unpack, push',
  fields: {
    snapshotter: {
      type: 'string',
      default: 'overlayfs',
      doc: 'overlayfs (layers shared, parallel unpack) or native (copies every layer; for file systems overlayfs cannot sit on)',
    },
    max_layer_unpacked_mib: {
      type: 'number',
      default: 0,
      doc: 'largest uncompressed size, in MiB, of one layer that pull, load and import unpack; 0 means no bound, as in docker. A bound stops a decompression bomb (a few MB that inflate to fill the disk) where it is reached, naming the layer and leaving nothing behind, at the cost of refusing images with a genuinely larger layer',
    },
    lease_ttl_s: {
      type: 'number',
      default: 3600,
      doc: 'how long what a pull, load or import has made stays protected from GC while it runs; a longer operation may lose it to a concurrent prune. Leases of an earlier daemon life are dropped at start (partial downloads stay for a resume within GC\'s grace period)',
    },
  },
};

export interface ImagesSettings {
  snapshotter: 'overlayfs' | 'native';
  leaseTtlMs: number;
  /** Bound on one layer's uncompressed tar, in bytes; undefined = none. */
  maxLayerUnpackedBytes?: number;
}

export function imagesSettings(v: SectionValues = {}): ImagesSettings {
  const sn = String(v.snapshotter ?? 'overlayfs');
  if (sn !== 'overlayfs' && sn !== 'native') throw berthError('InvalidArgument', `config: images.snapshotter must be overlayfs or native, not "${sn}"`);
  const mib = Number(v.max_layer_unpacked_mib ?? 0);
  if (!Number.isFinite(mib) || mib < 0) throw berthError('InvalidArgument', `config: images.max_layer_unpacked_mib must be a number of MiB, 0 or more, not ${v.max_layer_unpacked_mib}`);
  return {
    maxLayerUnpackedBytes: mib > 0 ? Math.floor(mib * 1024 * 1024) : undefined,
    snapshotter: sn,
    leaseTtlMs: Math.max(60, Number(v.lease_ttl_s ?? 3600)) * 1000,
  };
}
