/**
 * `augmentViews` in the conformance suite: the views a backend makes from a u8 NHWC batch and the
 * encoded parameter rows (`encodeViewParamRows`) equal the data layer's TypeScript augmentation
 * (`applyView`, the host path) within 1/255 of the [0, 1] pixel range before Normalize (so
 * (1/255) / std after it), for 1- and 3-channel presets, both step orders, f32 and bf16 outputs.
 *
 * @module
 */

import fc from "fast-check";
import type { Backend } from "../../src/backend/backend.ts";
import {
  applyView,
  AugmentWorkspace,
  encodeViewParamRows,
  sampleView,
  type ViewPipeline,
  viewRecipe,
} from "../../src/data/augment.ts";
import { augmentationPreset } from "../../src/data/pipelines.ts";
import { RandomStream, rngKey } from "../../src/random/philox.ts";
import { BF16_HALF_ULP, nanArray, readF32, uploadNew } from "./conformance_harness.ts";
import type { Prop } from "./conformance_spec.ts";

/** Pipelines to test: a preset's weak or strong view at a small size, blur kernel 3 or 5. */
const pipeline: fc.Arbitrary<ViewPipeline> = fc.record({
  preset: fc.constantFrom("cifar10", "fashion-mnist", "imagenet"),
  strong: fc.boolean(),
  size: fc.integer({ min: 4, max: 20 }),
  blur: fc.constantFrom(3, 5),
}).map(({ preset, strong, size, blur }) => {
  const p = augmentationPreset(preset);
  const view = strong ? p.strong : p.weak;
  return {
    ...view,
    size,
    ops: view.ops.map((o) =>
      o.op === "gaussianBlur" ? { ...o, kernelSize: Math.min(blur, 2 * size - 1) } : o
    ),
  };
});

const augmentCase = pipeline.chain((p) =>
  fc.record({
    p: fc.constant(p),
    n: fc.integer({ min: 1, max: 5 }),
    h: fc.integer({ min: 3, max: 24 }),
    w: fc.integer({ min: 3, max: 24 }),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    bf16: fc.boolean(),
  })
);

/** Registers the augmentation property through `d`. */
export function defineAugment(d: (kernel: string, prop: Prop) => void): void {
  d(
    "augmentViews equals the data layer's host augmentation (within 1/255 before Normalize)",
    (s) => {
      fc.assert(
        fc.property(augmentCase, ({ p, n, h, w, seed, bf16 }) => {
          const c = p.mean.length;
          const rng = new RandomStream(rngKey(seed));
          const images = Uint8Array.from({ length: n * h * w * c }, () => rng.int(256));
          const drawn = Array.from({ length: n }, () => sampleView(p, h, w, rng));
          const per = c * p.size * p.size;
          const want = new Float32Array(n * per);
          const ws = new AugmentWorkspace();
          drawn.forEach((params, i) => {
            const image = { data: images, offset: i * h * w * c, height: h, width: w, channels: c };
            applyView(p, params, image, want, i * per, ws);
          });
          const got = runAugment(s, p, images, encodeViewParamRows(p, drawn, h, w), {
            n,
            h,
            w,
            c,
            bf16,
          });
          for (let i = 0; i < want.length; i++) {
            const ch = Math.floor(i / (p.size * p.size)) % c;
            const tol = 1 / 255 / p.std[ch] + 1e-5 * Math.abs(want[i]) +
              (bf16 ? BF16_HALF_ULP * (Math.abs(got[i]) + Math.abs(want[i])) : 0);
            if (!(Math.abs(got[i] - want[i]) <= tol)) {
              throw new Error(
                `${s.name} augmentViews[${i}] = ${got[i]}, expected ${want[i]} (tol ${tol}; ` +
                  `image ${Math.floor(i / per)}, ${c} channels, ${h}x${w} -> ${p.size})`,
              );
            }
          }
        }),
        { numRuns: 12 },
      );
    },
  );
}

/** Runs `augmentViews` on `be` and downloads the views as f32 values. */
function runAugment(
  be: Backend,
  p: ViewPipeline,
  images: Uint8Array,
  rows: Float32Array,
  g: { n: number; h: number; w: number; c: number; bf16: boolean },
): Float32Array {
  const recipe = viewRecipe(p);
  const img = uploadNew(be, images);
  const params = uploadNew(be, rows);
  const out = uploadNew(be, nanArray(g.bf16 ? "bf16" : "f32", g.n * g.c * p.size * p.size));
  try {
    be.augmentViews({
      images: img,
      params,
      out,
      geom: { n: g.n, h: g.h, w: g.w, c: g.c, size: p.size },
      steps: recipe.steps,
      blurKernel: recipe.blurKernel,
      mean: recipe.mean,
      std: recipe.std,
    });
    return readF32(be, out);
  } finally {
    for (const st of [img, params, out]) be.free(st);
  }
}
