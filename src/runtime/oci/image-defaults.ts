import type { ContainerConfig, PortMapping } from '../../core/containers.ts';
import { berthError } from '../../core/errors.ts';
import { exposedToMapping } from '../../core/ports.ts';
import type { ImageConfig } from './oci-types.ts';
import { cleanPath } from './spec-mounts.ts';
import { byCodeUnit } from '../../core/order.ts';

/**
 * What an image contributes to a container besides its process (which
 * `buildSpec` takes from the image directly), by docker's rules: the image's
 * labels under the container's, its StopSignal unless one was given, its
 * User unless one was given, an anonymous volume for every image VOLUME the
 * container does not mount itself, and its exposed ports for `-P`.
 *
 *   const d = imageDefaults(image, config);
 *   // d.user is what resolveUser gets; d.anonymousVolumes need a volume each
 */
export interface ImageDefaults {
  labels: Record<string, string>;
  stopSignal: string;
  user: string;
  /** Container paths of image VOLUMEs left to anonymous volumes. */
  anonymousVolumes: string[];
  /** Mappings with a free host port for each exposed port not already published; empty without -P. */
  publishAllPorts: PortMapping[];
}

export function imageDefaults(image: ImageConfig, config: ContainerConfig): ImageDefaults {
  const taken = new Set([...(config.mounts ?? []).map((m) => cleanPath(m.target)), ...Object.keys(config.tmpfs ?? {}).map(cleanPath)]);
  for (const v of Object.keys(image.Volumes ?? {})) {
    // VOLUME "" and VOLUME / name the container's root: docker fails them only at start, with a runtime error.
    if (cleanPath(v) === '/') throw berthError('InvalidArgument', `image VOLUME ${JSON.stringify(v)}: invalid mount config for type "volume": invalid specification: destination can't be '/'`);
  }
  const anonymousVolumes = [...new Set(Object.keys(image.Volumes ?? {}).map(cleanPath))].filter((v) => !taken.has(v));
  const published = new Set((config.network?.ports ?? []).map((p) => `${p.containerPort}/${p.protocol}`));
  const publishAllPorts = config.network?.publishAll
    ? Object.keys(image.ExposedPorts ?? {})
        .map((k) => (k.includes('/') ? k : `${k}/tcp`))
        .filter((k) => !published.has(k))
        .map(exposedToMapping)
        .sort((a, b) => a.containerPort - b.containerPort || byCodeUnit(a.protocol, b.protocol))
    : [];
  return {
    labels: { ...(image.Labels ?? {}), ...(config.labels ?? {}) },
    stopSignal: config.stopSignal || image.StopSignal || 'SIGTERM',
    user: config.user || image.User || '',
    anonymousVolumes,
    publishAllPorts,
  };
}
