/**
 * augment.cu on the emulated device against the host augmentation (augment_oracle.ts): random u8
 * images (RGB and grayscale), random parameter rows (crop boxes shrinking and enlarging, flips,
 * every jitter order with skipped sub-ops, grayscale, blur sigmas), step orders of the CIFAR strong
 * view, the ImageNet strong view and a blur-before-jitter order; f32 and bf16 outputs. The
 * contract allows 1/255 before normalisation; the kernel is held to 1e-4.
 */

import assert from "node:assert/strict";
import { augmentWorkFloats, encodeAugmentSteps } from "../../ffi/cuda/kernels/signatures.ts";
import { type Recipe, referenceView, ROW } from "./augment_oracle.ts";
import { assertBf16Close, BLOCK, fromBf16, rand } from "./helpers.ts";
import { type KernelRig, rigUnavailable, withRig } from "./rig.ts";

const skip = rigUnavailable();
const test = (name: string, fn: () => void) =>
  Deno.test({ name: name + (skip ? ` (${skip})` : ""), ignore: skip !== undefined, fn });

/** n random parameter rows for h x w images (seeded). */
function randomRows(seed: number, n: number, h: number, w: number): Float32Array {
  const u = rand(seed, n * 32, 0, 1);
  let k = 0;
  const next = () => u[k++];
  const rows = new Float32Array(n * ROW);
  for (let i = 0; i < n; i++) {
    const r = rows.subarray(i * ROW, (i + 1) * ROW);
    const bh = 1 + Math.floor(next() * h), bw = 1 + Math.floor(next() * w);
    r.set([Math.floor(next() * (h - bh + 1)), Math.floor(next() * (w - bw + 1)), bh, bw], 0);
    r[4] = next() < 0.5 ? 1 : 0;
    r[5] = next() < 0.8 ? 1 : 0;
    const order = [0, 1, 2, 3];
    for (let j = 3; j > 0; j--) {
      const s = Math.floor(next() * (j + 1));
      [order[j], order[s]] = [order[s], order[j]];
    }
    r.set(order, 6);
    r[10] = next() < 0.15 ? NaN : 0.6 + 0.8 * next();
    r[11] = next() < 0.15 ? NaN : 0.6 + 0.8 * next();
    r[12] = next() < 0.15 ? NaN : 0.6 + 0.8 * next();
    r[13] = next() < 0.15 ? NaN : next() - 0.5;
    r[14] = next() < 0.3 ? 1 : 0;
    r[15] = next() < 0.4 ? 0 : 0.1 + 1.9 * next();
  }
  return rows;
}

/** Runs augment_views_* and returns the denormalised output values (f32 or bf16 read back). */
function runKernel(
  rig: KernelRig,
  dtype: "f32" | "bf16",
  recipe: Recipe,
  images: Uint8Array,
  rows: Float32Array,
  g: { n: number; h: number; w: number; c: number },
): Float32Array | Uint16Array {
  const { n, h, w, c } = g;
  const count = n * c * recipe.size * recipe.size;
  const out = rig.alloc((dtype === "f32" ? 4 : 2) * count);
  const work = rig.alloc(4 * augmentWorkFloats(n, c, recipe.size));
  const mean = [...recipe.mean, 0, 0].slice(0, 3), std = [...recipe.std, 1, 1].slice(0, 3);
  rig.launch(dtype === "f32" ? "augment_views_f32" : "augment_views_bf16", Math.min(n, 3), BLOCK, [
    rig.upload(images),
    rig.upload(rows),
    out,
    work,
    n,
    h,
    w,
    c,
    recipe.size,
    encodeAugmentSteps(recipe.steps),
    recipe.blurKernel,
    ...mean,
    ...std,
  ]);
  return dtype === "f32"
    ? rig.download(out, new Float32Array(count))
    : rig.download(out, new Uint16Array(count));
}

const CASES: { label: string; c: number; recipe: Recipe }[] = [
  {
    label: "CIFAR strong order, RGB, shrinking",
    c: 3,
    recipe: {
      size: 12,
      steps: ["flip", "jitter", "grayscale", "blur"],
      blurKernel: 5,
      mean: [0.4914, 0.4822, 0.4465],
      std: [0.2023, 0.1994, 0.201],
    },
  },
  {
    label: "ImageNet strong order, RGB, enlarging",
    c: 3,
    recipe: {
      size: 26,
      steps: ["jitter", "grayscale", "blur", "flip"],
      blurKernel: 7,
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    },
  },
  {
    label: "blur before jitter, one channel",
    c: 1,
    recipe: {
      size: 16,
      steps: ["blur", "jitter", "flip"],
      blurKernel: 3,
      mean: [0.286],
      std: [0.353],
    },
  },
  {
    label: "weak view (crop + flip only)",
    c: 3,
    recipe: {
      size: 10,
      steps: ["flip"],
      blurKernel: 1,
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.5, 1],
    },
  },
];

for (const [k, { label, c, recipe }] of CASES.entries()) {
  test(`augment_views ${label}: f32 within 1e-4 of the host view, bf16 within one rounding`, () => {
    const g = { n: 7, h: 21, w: 18, c };
    const images = Uint8Array.from(rand(900 + k, g.n * g.h * g.w * c, 0, 256), Math.floor);
    const rows = randomRows(950 + k, g.n, g.h, g.w);
    const plane = recipe.size * recipe.size;
    const want = new Float32Array(g.n * c * plane);
    for (let i = 0; i < g.n; i++) {
      want.set(referenceView(recipe, rows, images, i, g), i * c * plane);
    }
    withRig((rig) => {
      const got = runKernel(rig, "f32", recipe, images, rows, g) as Float32Array;
      let worst = 0;
      for (let i = 0; i < got.length; i++) {
        const std = recipe.std[Math.floor(i / plane) % c];
        const err = Math.abs(got[i] - want[i]) * std; // before normalisation
        if (!(err <= 1e-4)) {
          assert.fail(
            `${label}: element ${i} is ${got[i]}, expected ${want[i]} (pixel error ` +
              `${err} > 1e-4)`,
          );
        }
        worst = Math.max(worst, err);
      }
      assert.ok(worst > 0 || recipe.steps.length === 1, "the check compares real values");
      const bf = runKernel(rig, "bf16", recipe, images, rows, g) as Uint16Array;
      assertBf16Close(bf, got, 1, `${label} bf16`);
      assert.ok(fromBf16(bf).every(Number.isFinite));
    });
  });
}

test("augment_views: an unsupported blur kernel gives NaN views, not garbage", () => {
  const g = { n: 2, h: 6, w: 6, c: 3 };
  const recipe: Recipe = {
    size: 4,
    steps: ["blur"],
    blurKernel: 513,
    mean: [0, 0, 0],
    std: [1, 1, 1],
  };
  const images = new Uint8Array(g.n * 6 * 6 * 3).fill(100);
  withRig((rig) => {
    const got = runKernel(rig, "f32", recipe, images, randomRows(1, g.n, 6, 6), g);
    assert.ok(got.every(Number.isNaN));
  });
});
