import { chainId } from '../../core/chain-id.ts';
import type { ImageSpec, UnaryHandler } from './types.ts';
import { lookupImage, toCriImage } from './image-view.ts';

/**
 * ImageStatus: an image that is not present is an OK answer with no
 * `image`, not NOT_FOUND (kubelet pulls on that answer). Verbose adds
 * containerd's `info` key: JSON of the chain ID and the OCI image config.
 */
export const imageStatus: UnaryHandler<{ image?: ImageSpec; verbose?: boolean }, object> = async (ctx, req, deps) => {
  const img = await lookupImage(ctx, deps.images, req.image?.image ?? '');
  if (!img) return { info: {} };
  const info = req.verbose ? { info: JSON.stringify({ chainID: chainId(img.config.rootfs?.diff_ids ?? []) ?? '', imageSpec: img.config }) } : {};
  return { image: toCriImage(img), info };
};
