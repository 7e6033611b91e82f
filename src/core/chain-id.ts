import { createHash } from 'node:crypto';
import type { Digest } from './digest.ts';

/**
 * Chain IDs of a layer stack, from its uncompressed diff IDs (OCI image
 * spec, "Layer ChainID"): chainID(L0) = diffID(L0),
 * chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)).
 * They name committed snapshots, so images sharing a base share snapshots.
 */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const diffId of diffIds) {
    const prev = out.at(-1);
    out.push(prev === undefined ? diffId : `sha256:${createHash('sha256').update(`${prev} ${diffId}`).digest('hex')}`);
  }
  return out;
}

/** The chain ID of the whole stack (the top layer's), or undefined for no layers. */
export function chainId(diffIds: readonly Digest[]): Digest | undefined {
  return chainIds(diffIds).at(-1);
}
