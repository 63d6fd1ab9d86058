import assert from "node:assert/strict";
import fc from "fast-check";
import { applyView, type OpParams, sampleView, type ViewPipeline } from "../../src/data/augment.ts";
import { roundHalfEven, sampleResizedCropBox } from "../../src/data/augment_params.ts";
import {
  augmentationPreset,
  blurKernelSize,
  evalView,
  PRESET_NAMES,
} from "../../src/data/pipelines.ts";
import { RandomStream, rngKey } from "../../src/random/philox.ts";

Deno.test("presets: the spec's sizes, normalisation, blur kernels and op order", () => {
  const cifar = augmentationPreset("cifar10");
  assert.deepEqual([cifar.size, cifar.channels, cifar.blurKernel], [32, 3, 3]);
  assert.deepEqual(cifar.mean, [0.4914, 0.4822, 0.4465]);
  assert.deepEqual(cifar.std, [0.2023, 0.1994, 0.2010]);
  assert.deepEqual(cifar.strong.ops.map((o) => o.op), [
    "randomResizedCrop",
    "horizontalFlip",
    "colorJitter",
    "randomGrayscale",
    "gaussianBlur",
  ]);
  assert.deepEqual(cifar.weak.ops.map((o) => o.op), ["randomResizedCrop", "horizontalFlip"]);
  assert.deepEqual(cifar.strong.ops[0], {
    op: "randomResizedCrop",
    scale: [0.2, 1],
    ratio: [3 / 4, 4 / 3],
  });
  assert.deepEqual(cifar.strong.ops[2], {
    op: "colorJitter",
    p: 0.8,
    brightness: 0.4,
    contrast: 0.4,
    saturation: 0.4,
    hue: 0.1,
  });
  assert.deepEqual(cifar.strong.ops[4], {
    op: "gaussianBlur",
    p: 0.5,
    kernelSize: 3,
    sigma: [0.1, 2],
  });
  const stl = augmentationPreset("stl10");
  assert.deepEqual([stl.size, stl.imageSize, stl.blurKernel], [64, 96, 7]);
  assert.deepEqual(augmentationPreset("cifar100").std, [0.2675, 0.2565, 0.2761]);
  assert.deepEqual(augmentationPreset("tiny-imagenet").mean, [0.4802, 0.4481, 0.3975]);
  const imagenet = augmentationPreset("imagenet");
  assert.equal(imagenet.blurKernel, 23);
  assert.deepEqual(imagenet.strong.ops.map((o) => o.op), [
    "randomResizedCrop",
    "colorJitter",
    "randomGrayscale",
    "gaussianBlur",
    "horizontalFlip",
  ]);
  const fm = augmentationPreset("fashion-mnist");
  assert.deepEqual([fm.size, fm.channels, fm.blurKernel, fm.mean, fm.std], [28, 1, 3, [0.2860], [
    0.3530,
  ]]);
  assert.deepEqual(fm.strong.ops.map((o) => o.op), [
    "randomResizedCrop",
    "horizontalFlip",
    "colorJitter",
    "gaussianBlur",
  ]);
  assert.deepEqual(fm.strong.ops[2], {
    op: "colorJitter",
    p: 0.8,
    brightness: 0.4,
    contrast: 0.4,
    saturation: 0,
    hue: 0,
  });
  assert.deepEqual([28, 32, 64, 96, 224].map(blurKernelSize), [3, 3, 7, 9, 23]);
  assert.equal(PRESET_NAMES.length, 6);
  assert.throws(
    () => augmentationPreset("svhn"),
    /Unknown augmentation preset 'svhn' \(expected one of cifar10/,
  );
  augmentationPreset("cifar10").mean[0] = 9;
  assert.equal(augmentationPreset("cifar10").mean[0], 0.4914, "presets are fresh copies");
});

Deno.test("roundHalfEven is Python's round", () => {
  assert.deepEqual([0.5, 1.5, 2.5, 3.49, -0.5, -1.5, 7].map(roundHalfEven), [
    0,
    2,
    2,
    3,
    -0,
    -2,
    7,
  ]);
});

Deno.test("property: RandomResizedCrop boxes lie inside the image and respect scale and ratio", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 80 }),
      fc.integer({ min: 1, max: 80 }),
      fc.nat(),
      (h, w, seed) => {
        const rng = new RandomStream(rngKey(seed));
        const b = sampleResizedCropBox(rng, h, w, [0.2, 1], [3 / 4, 4 / 3]);
        assert.ok(b.height >= 1 && b.width >= 1 && b.top >= 0 && b.left >= 0);
        assert.ok(b.top + b.height <= h && b.left + b.width <= w);
      },
    ),
  );
  const rng = new RandomStream(rngKey(1));
  for (let i = 0; i < 500; i++) {
    const b = sampleResizedCropBox(rng, 200, 200, [0.2, 1], [3 / 4, 4 / 3]);
    const area = b.height * b.width / 40000;
    assert.ok(area > 0.19 && area < 1.01, `area ${area}`);
    assert.ok(
      b.width / b.height > 0.74 && b.width / b.height < 1.35,
      `ratio ${b.width / b.height}`,
    );
  }
});

const unit = (channels: number, ops: ViewPipeline["ops"], size: number): ViewPipeline => ({
  size,
  ops,
  mean: new Array(channels).fill(0),
  std: new Array(channels).fill(1),
});

Deno.test("property: strong views stay in [0, 1] before normalisation; sampling is a pure function of the key", () => {
  const strong = augmentationPreset("cifar10").strong;
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 16 * 16 * 3, maxLength: 16 * 16 * 3 }),
      fc.nat(),
      (data, seed) => {
        const view = { ...strong, size: 16, mean: [0, 0, 0], std: [1, 1, 1] };
        const params = sampleView(view, 16, 16, new RandomStream(rngKey(seed)));
        assert.deepEqual(sampleView(view, 16, 16, new RandomStream(rngKey(seed))), params);
        const out = new Float32Array(768);
        applyView(view, params, { data, offset: 0, height: 16, width: 16, channels: 3 }, out, 0);
        for (const v of out) assert.ok(v >= 0 && v <= 1 + 1e-6, `value ${v}`);
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("ops: identities, flip twice, blur of a constant, and 1-channel images skip colour-only ops", () => {
  const rng = new RandomStream(rngKey(3));
  const data = Uint8Array.from({ length: 12 * 12 * 3 }, () => rng.int(256));
  const image = { data, offset: 0, height: 12, width: 12, channels: 3 };
  const run = (ops: ViewPipeline["ops"], params: OpParams[], img = image) => {
    const out = new Float32Array(img.channels * 144);
    applyView(unit(img.channels, ops, 12), params, img, out, 0);
    return out;
  };
  const plain = run([], []);
  for (let k = 0; k < plain.length; k++) {
    const c = k % 3, p = Math.floor(k / 3);
    assert.equal(plain[c * 144 + p], Math.fround(data[k] / 255));
  }
  const jitter = {
    op: "colorJitter" as const,
    p: 1,
    brightness: 0.4,
    contrast: 0.4,
    saturation: 0.4,
    hue: 0.1,
  };
  const identity = run([jitter], [{
    op: "colorJitter",
    jitter: { order: [3, 2, 1, 0], brightness: 1, contrast: 1, saturation: 1, hue: 0 },
  }]);
  for (let k = 0; k < plain.length; k++) assert.ok(Math.abs(identity[k] - plain[k]) < 1e-6);
  const flip = { op: "horizontalFlip" as const, p: 1 };
  assert.deepEqual(
    run([flip, flip], [{ op: "horizontalFlip", flip: true }, { op: "horizontalFlip", flip: true }]),
    plain,
  );
  assert.notDeepEqual(run([flip], [{ op: "horizontalFlip", flip: true }]), plain);
  const flat = { ...image, data: new Uint8Array(432).fill(77) };
  const blurred = run([{ op: "gaussianBlur", p: 1, kernelSize: 9, sigma: [0.1, 2] }], [{
    op: "gaussianBlur",
    sigma: 1.7,
  }], flat);
  for (const v of blurred) assert.ok(Math.abs(v - 77 / 255) < 1e-6);
  // One channel: grayscale, saturation and hue are skipped; brightness and contrast still apply.
  const gray = { data: data.subarray(0, 144), offset: 0, height: 12, width: 12, channels: 1 };
  const ops = [jitter, { op: "randomGrayscale" as const, p: 1 }];
  const full = run(ops, [
    {
      op: "colorJitter",
      jitter: { order: [2, 0, 3, 1], brightness: 1.2, contrast: 0.8, saturation: 0.1, hue: 0.3 },
    },
    { op: "randomGrayscale", gray: true },
  ], gray);
  const bc = run([jitter], [{
    op: "colorJitter",
    jitter: { order: [0, 1, 2, 3], brightness: 1.2, contrast: 0.8 },
  }], gray);
  assert.deepEqual(full, bc);
  assert.notDeepEqual(bc, run([], [], gray));
});

Deno.test("evalView resizes the whole image (STL-10 96 -> 64) and only normalises", () => {
  const stl = augmentationPreset("stl10");
  const v = evalView(stl);
  const data = new Uint8Array(96 * 96 * 3).fill(128);
  const out = new Float32Array(3 * 64 * 64);
  applyView(v, [], { data, offset: 0, height: 96, width: 96, channels: 3 }, out, 0);
  assert.ok(Math.abs(out[0] - (128 / 255 - 0.4408) / 0.2682) < 1e-5);
  assert.ok(Math.abs(out[2 * 4096 + 100] - (128 / 255 - 0.3867) / 0.2686) < 1e-5);
});
