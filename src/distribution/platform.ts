import { berthError } from '../core/errors.ts';
import type { Descriptor, ImageIndex, Platform } from '../core/media-types.ts';

/**
 * Platform matching for image indexes, as containerd's platforms package
 * does it: architectures are normalized (x86_64 -> amd64, aarch64 -> arm64),
 * arm64 defaults to variant v8 and arm to v7, and a wanted arm variant also
 * accepts lower ones (v7 runs v6 and v5 images), preferring the closest.
 *
 * Example:
 *   const desc = selectPlatform(index, parsePlatform('linux/arm/v7'));
 */
export const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

export function normalizePlatform(p: Platform): Platform {
  let arch = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  const os = p.os.toLowerCase();
  switch (arch) {
    case 'x86_64':
    case 'x86-64':
      arch = 'amd64';
      if (variant === 'v1') variant = undefined;
      break;
    case 'amd64':
      if (variant === 'v1') variant = undefined;
      break;
    case 'aarch64':
    case 'arm64':
      arch = 'arm64';
      if (variant === '8' || variant === 'v8' || variant === undefined) variant = 'v8';
      break;
    case 'armhf':
      arch = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      arch = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === undefined || variant === '7') variant = 'v7';
      else if (/^[5-8]$/.test(variant)) variant = `v${variant}`;
      break;
    case 'i386':
    case 'i686':
      arch = '386';
      break;
  }
  return { ...p, os, architecture: arch, ...(variant !== undefined ? { variant } : { variant: undefined }) };
}

/** `linux/arm64/v8` -> Platform. InvalidArgument for other shapes. */
export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => x === '')) {
    throw berthError('InvalidArgument', `invalid platform "${s}": want os/arch[/variant]`);
  }
  return normalizePlatform({ os: parts[0], architecture: parts[1], ...(parts[2] ? { variant: parts[2] } : {}) });
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/**
 * How well `have` serves `want`: -1 when it cannot run, higher is better.
 * An arm image of a lower variant scores lower than an exact one.
 */
export function platformScore(want: Platform, have: Platform): number {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture) return -1;
  if (w.variant === h.variant) return 100;
  if (w.architecture === 'arm' && w.variant && h.variant) {
    const wv = Number(w.variant.slice(1));
    const hv = Number(h.variant.slice(1));
    if (hv < wv) return 100 - (wv - hv);
    return -1;
  }
  if (w.variant === undefined && w.architecture === 'amd64') return 50;
  return -1;
}

/**
 * The manifest of `index` for `platform` (default linux/amd64); entries
 * without a platform are skipped (attestations and the like). NotFound names
 * the platform and what the index offers.
 */
export function selectPlatform(index: ImageIndex, platform: Platform = DEFAULT_PLATFORM, what = 'image'): Descriptor {
  let best: Descriptor | undefined;
  let bestScore = -1;
  for (const m of index.manifests ?? []) {
    if (!m.platform) continue;
    const s = platformScore(platform, m.platform);
    if (s > bestScore) {
      best = m;
      bestScore = s;
    }
  }
  if (!best) {
    const offered = (index.manifests ?? []).filter((m) => m.platform).map((m) => formatPlatform(m.platform!));
    throw berthError('NotFound', `${what}: no manifest for platform ${formatPlatform(platform)} (offered: ${offered.join(', ') || 'none'})`);
  }
  return best;
}
