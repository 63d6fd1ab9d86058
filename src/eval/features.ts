/**
 * Backbone features of a dataset: the images go through the evaluation view (resize + Normalize,
 * no augmentation), the backbone runs in eval mode (running BN statistics) in batches, and the
 * pooled features are optionally L2-normalised. The result stays on the device.
 *
 * @module
 */

import type { ImageDataset } from "../data/datasets/mod.ts";
import { augmentBatch, type ViewPipeline } from "../data/augment.ts";
import { rngKey } from "../random/philox.ts";
import { type ResNetBuffers, resnetForward, type ResNetParams } from "../nn/mod.ts";
import { concatRows, l2Normalize } from "../ops/mod.ts";
import type { Context, Tensor } from "../tensor/mod.ts";

/** Options of {@link extractFeatures}. */
export interface ExtractFeaturesOptions {
  /** Backbone parameters. */
  params: ResNetParams;
  /** Backbone BN running statistics (eval mode). */
  buffers: ResNetBuffers;
  /** The images to encode. */
  dataset: ImageDataset;
  /** The evaluation view (no random ops). */
  view: ViewPipeline;
  /** Max-pool after the stem (as the backbone was trained). */
  maxPool?: boolean;
  /** Images per forward (default 256). */
  batchSize?: number;
  /** L2-normalise each feature row (default true). */
  normalize?: boolean;
  /** Use only the first `limit` images. */
  limit?: number;
}

/** Features [N, D] of the dataset's images, in dataset order. */
export function extractFeatures(ctx: Context, opts: ExtractFeaturesOptions): Tensor {
  const ds = opts.dataset;
  const n = Math.min(opts.limit ?? ds.length, ds.length);
  const batch = opts.batchSize ?? 256;
  const c = ds.channels, s = opts.view.size;
  const bytes = ds.height * ds.width * c;
  if (n === 0) throw new RangeError(`Cannot extract features of '${ds.name}': it has no images`);
  const key = rngKey(0); // the evaluation view has no random op; the key is unused
  return ctx.noGrad(() => {
    const chunks: Tensor[] = [];
    try {
      for (let start = 0; start < n; start += batch) {
        const count = Math.min(batch, n - start);
        const indices = Int32Array.from({ length: count }, (_, i) => start + i);
        const images = new Uint8Array(count * bytes);
        ds.readInto(indices, images);
        const [host] = augmentBatch({
          images,
          height: ds.height,
          width: ds.width,
          channels: c,
          indices,
          epoch: 0,
          key,
          views: [opts.view],
        });
        chunks.push(ctx.scope(() => {
          const x = ctx.fromArray(host, [count, c, s, s]);
          const r = resnetForward(opts.params, opts.buffers, x, {
            training: false,
            maxPool: opts.maxPool,
          });
          return opts.normalize === false ? r.features : l2Normalize(r.features);
        }));
      }
      return concatRows(chunks);
    } finally {
      for (const f of chunks) f.dispose();
    }
  });
}
