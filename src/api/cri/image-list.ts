import type { ImageSpec, UnaryHandler } from './types.ts';
import { lookupImage, toCriImage } from './image-view.ts';

/**
 * ListImages: every image, one entry per image ID with all its names. A
 * filter's image spec is looked up as one image (CRI-O's reading of the
 * filter; containerd ignores it), so the answer holds that image or nothing.
 */
export const listImages: UnaryHandler<{ filter?: { image?: ImageSpec } }, object> = async (ctx, req, deps) => {
  const wanted = req.filter?.image?.image;
  if (wanted) {
    const img = await lookupImage(ctx, deps.images, wanted);
    return { images: img ? [toCriImage(img)] : [] };
  }
  const all = await deps.images.all(ctx);
  const ids = [...new Set(all.map((x) => x.img.id))];
  return {
    images: ids.map((id) => {
      const recs = all.filter((x) => x.img.id === id);
      return toCriImage({ ...recs[0].img, records: recs.map((x) => x.rec) });
    }),
  };
};
