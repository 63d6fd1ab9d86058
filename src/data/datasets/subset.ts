/**
 * A dataset restricted to its first `n` images (smoke runs, tests, quick experiments).
 *
 * @module
 */

import { checkReadArgs, imageBytes, type ImageDataset } from "./dataset.ts";

/** The first `n` images of `ds` (all of them when `n >= ds.length`), sharing its storage. */
export function firstImages(ds: ImageDataset, n: number): ImageDataset {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`Cannot take the first ${n} images of ${ds.name}: n must be >= 1`);
  }
  if (n >= ds.length) return ds;
  const bytes = imageBytes(ds);
  const sub: ImageDataset = {
    name: `${ds.name}[:${n}]`,
    height: ds.height,
    width: ds.width,
    channels: ds.channels,
    length: n,
    images: ds.images?.subarray(0, n * bytes),
    labels: ds.labels?.subarray(0, n),
    classes: ds.classes,
    readInto(indices, out) {
      checkReadArgs(sub, indices, out);
      ds.readInto(indices, out);
    },
    close: () => ds.close(),
  };
  return sub;
}
