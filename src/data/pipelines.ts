/**
 * The weak and strong views of each dataset preset (RESSL_SPEC.md §5), as plain data the training
 * code, the loader and its workers share.
 *
 * Strong, small datasets: RandomResizedCrop(size, scale 0.2-1) -> flip -> ColorJitter(0.4, 0.4, 0.4,
 * 0.1) with p 0.8 -> RandomGrayscale(0.2) -> GaussianBlur(sigma 0.1-2) with p 0.5 -> Normalize.
 * ImageNet strong: crop -> jitter -> grayscale -> blur -> flip. Weak, all: crop -> flip -> Normalize.
 *
 * Blur kernel size: SimCLR's rule, which MoCo-style small-dataset code derives from the image size:
 * `int(0.1 * size)` made odd (`2 * floor(int(0.1 * size) / 2) + 1`): 3 at 28 and 32, 7 at 64, 23 at 224.
 * The fashion-mnist preset (1 channel, 28x28) keeps brightness and contrast only and a 3x3 blur.
 *
 * @module
 */

import type { AugmentOp, ViewPipeline } from "./augment.ts";

/** Preset names of {@link augmentationPreset}. */
export const PRESET_NAMES = [
  "cifar10",
  "cifar100",
  "stl10",
  "tiny-imagenet",
  "imagenet",
  "fashion-mnist",
] as const;

/** A preset name. */
export type PresetName = typeof PRESET_NAMES[number];

/** Sizes, normalisation and the two views of a dataset preset. */
export interface AugmentationPreset {
  /** The preset's name. */
  name: PresetName;
  /** Side of the augmented views (the network input). */
  size: number;
  /** Side of the dataset's images (STL-10: 96, cropped to 64). */
  imageSize: number;
  /** Image channels. */
  channels: 1 | 3;
  /** Per-channel mean of Normalize. */
  mean: number[];
  /** Per-channel std of Normalize. */
  std: number[];
  /** Gaussian blur kernel size of the strong view. */
  blurKernel: number;
  /** Teacher view. */
  weak: ViewPipeline;
  /** Student view. */
  strong: ViewPipeline;
}

/** The blur kernel for views of `size`: `int(0.1 * size)` rounded down to odd (at least 3). */
export function blurKernelSize(size: number): number {
  return Math.max(3, 2 * Math.floor(Math.floor(0.1 * size) / 2) + 1);
}

const TABLE: Record<
  PresetName,
  { size: number; imageSize: number; mean: number[]; std: number[] }
> = {
  "cifar10": {
    size: 32,
    imageSize: 32,
    mean: [0.4914, 0.4822, 0.4465],
    std: [0.2023, 0.1994, 0.2010],
  },
  "cifar100": {
    size: 32,
    imageSize: 32,
    mean: [0.5071, 0.4867, 0.4408],
    std: [0.2675, 0.2565, 0.2761],
  },
  "stl10": {
    size: 64,
    imageSize: 96,
    mean: [0.4408, 0.4279, 0.3867],
    std: [0.2682, 0.2610, 0.2686],
  },
  "tiny-imagenet": {
    size: 64,
    imageSize: 64,
    mean: [0.4802, 0.4481, 0.3975],
    std: [0.2302, 0.2265, 0.2262],
  },
  "imagenet": {
    size: 224,
    imageSize: 224,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
  },
  "fashion-mnist": { size: 28, imageSize: 28, mean: [0.2860], std: [0.3530] },
};

const CROP: AugmentOp = { op: "randomResizedCrop", scale: [0.2, 1], ratio: [3 / 4, 4 / 3] };
const FLIP: AugmentOp = { op: "horizontalFlip", p: 0.5 };

/** The preset of a dataset name (see {@link PRESET_NAMES}); throws on an unknown name. */
export function augmentationPreset(name: string): AugmentationPreset {
  if (!(PRESET_NAMES as readonly string[]).includes(name)) {
    throw new RangeError(
      `Unknown augmentation preset '${name}' (expected one of ${PRESET_NAMES.join(", ")})`,
    );
  }
  const preset = name as PresetName;
  const t = TABLE[preset];
  const gray = preset === "fashion-mnist";
  const blurKernel = blurKernelSize(t.size);
  const jitter: AugmentOp = {
    op: "colorJitter",
    p: 0.8,
    brightness: 0.4,
    contrast: 0.4,
    saturation: gray ? 0 : 0.4,
    hue: gray ? 0 : 0.1,
  };
  const blur: AugmentOp = { op: "gaussianBlur", p: 0.5, kernelSize: blurKernel, sigma: [0.1, 2] };
  const colour: AugmentOp[] = gray
    ? [jitter, blur]
    : [jitter, { op: "randomGrayscale", p: 0.2 }, blur];
  const strongOps = preset === "imagenet" ? [CROP, ...colour, FLIP] : [CROP, FLIP, ...colour];
  const view = (ops: AugmentOp[]): ViewPipeline => ({
    size: t.size,
    ops,
    mean: [...t.mean],
    std: [...t.std],
  });
  return structuredClone({
    name: preset,
    size: t.size,
    imageSize: t.imageSize,
    channels: gray ? 1 : 3,
    mean: [...t.mean],
    std: [...t.std],
    blurKernel,
    weak: view([CROP, FLIP]),
    strong: view(strongOps),
  });
}

/** The evaluation view of a preset: no augmentation, the whole image resized to the preset size. */
export function evalView(preset: AugmentationPreset): ViewPipeline {
  return { size: preset.size, ops: [], mean: [...preset.mean], std: [...preset.std] };
}

/** The linear-probe training view: RandomResizedCrop + flip (RESSL_SPEC §7). */
export function probeTrainView(preset: AugmentationPreset): ViewPipeline {
  return { size: preset.size, ops: [CROP, FLIP], mean: [...preset.mean], std: [...preset.std] };
}
