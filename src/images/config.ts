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
    lease_ttl_s: {
      type: 'number',
      default: 3600,
      doc: 'how long the content of an interrupted pull stays protected from GC if berthd dies mid-pull',
    },
  },
};

export interface ImagesSettings {
  snapshotter: 'overlayfs' | 'native';
  leaseTtlMs: number;
}

export function imagesSettings(v: SectionValues = {}): ImagesSettings {
  const sn = String(v.snapshotter ?? 'overlayfs');
  if (sn !== 'overlayfs' && sn !== 'native') throw berthError('InvalidArgument', `config: images.snapshotter must be overlayfs or native, not "${sn}"`);
  return {
    snapshotter: sn,
    leaseTtlMs: Math.max(60, Number(v.lease_ttl_s ?? 3600)) * 1000,
  };
}
