import type { ImageSpec, UnaryHandler } from './types.ts';
import { lookupImage } from './image-view.ts';

/**
 * RemoveImage: the image and every name it has, as containerd deletes all
 * of an image's references. Removing an image that is not there succeeds:
 * the CRI makes this call idempotent. An image a container still uses loses
 * its names but stays, as the image service keeps it for the container.
 */
export const removeImage: UnaryHandler<{ image?: ImageSpec }, object> = async (ctx, req, deps) => {
  const img = await lookupImage(ctx, deps.images, req.image?.image ?? '');
  if (img) await deps.images.remove(ctx, img.id, { force: true });
  return {};
};
