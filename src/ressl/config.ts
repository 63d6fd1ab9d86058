/**
 * Training configuration: the typed shape, the presets of `configs/*.json` (values from
 * RESSL_SPEC.md; `fashion-mnist-quick` and `image-folder` are this project's own), validated
 * merging of a config file and command-line overrides onto a preset, and the project's warm-up
 * rule ({@link warmupStepsOf}). Unknown keys, wrong types and impossible combinations are rejected
 * with a message naming the key.
 *
 * @module
 */

import cifar10 from "../../configs/cifar10.json" with { type: "json" };
import cifar100 from "../../configs/cifar100.json" with { type: "json" };
import stl10 from "../../configs/stl10.json" with { type: "json" };
import tinyImagenet from "../../configs/tiny-imagenet.json" with { type: "json" };
import imagenet from "../../configs/imagenet.json" with { type: "json" };
import imagenetMulticrop from "../../configs/imagenet-multicrop.json" with { type: "json" };
import fashionMnist from "../../configs/fashion-mnist.json" with { type: "json" };
import fashionMnistQuick from "../../configs/fashion-mnist-quick.json" with { type: "json" };
import imageFolder from "../../configs/image-folder.json" with { type: "json" };

/** Everything that defines a training run (runtime choices such as device live elsewhere). */
export interface TrainConfig {
  /**
   * The dataset (`fashion-mnist`, `cifar10`, `cifar100`, `stl10`, `tiny-imagenet`, `imagenet`), or
   * `image-folder` for one's own images (their folder is a runtime choice, not part of the config).
   */
  dataset: string;
  /** The backbone: ResNet depth, stem, max-pool after the stem, input channels, base width. */
  model: {
    depth: 18 | 34 | 50;
    stem: "cifar" | "imagenet";
    maxPool: boolean;
    inChannels: number;
    width: number;
  };
  /** Projection head: hidden units and embedding dimension. */
  head: { hidden: number; out: number };
  /** Network input side and the per-channel Normalize mean and std. */
  image: { size: number; mean: number[]; std: number[] };
  /** Augmentation: the smallest RandomResizedCrop scale. */
  augment: { minScale: number };
  /** The method: queue size K, temperatures, EMA momentum and schedule, SplitBatchNorm, shuffle-BN, masking. */
  ressl: {
    queueSize: number;
    tauStudent: number;
    tauTeacher: number;
    emaMomentum: number;
    /** `constant`: m before the teacher forward (official); `cosine`: m -> 1 after the step (solo-learn). */
    emaSchedule: "constant" | "cosine";
    bnSplits: number;
    shuffleTeacher: boolean;
    maskedBatchKeys: boolean;
  };
  /** The optimiser (SGD or LARS), its learning rate, momentum, weight decay and warm-up. */
  optim: {
    name: "sgd" | "lars";
    /** Learning rate at batch 256 (scaled linearly with the batch size when `scaleLr`). */
    lr: number;
    scaleLr: boolean;
    momentum: number;
    weightDecay: number;
    nesterov: boolean;
    excludeBnBias: boolean;
    warmupEpochs: number;
    /**
     * Floor of the warm-up in steps (see {@link warmupStepsOf}); absent in configurations written
     * before it existed, which means 0 (their warm-up is unchanged).
     */
    minWarmupSteps?: number;
  };
  /** Multi-crop student views: one size and scale range per crop (the first is the strong view). */
  multiCrop?: { sizes: number[]; minScales: number[]; maxScales: number[] };
  /** Training epochs. */
  epochs: number;
  /** Images per step. */
  batchSize: number;
  /** Seed of initialisation, shuffling and augmentation. */
  seed: number;
  /** Run the kNN monitor every this many epochs (0: never). */
  knnEvery: number;
  /** kNN monitor: neighbours and vote temperature. */
  knn: { k: number; temperature: number };
  /** Checkpoint every this many epochs (and at the end), keeping the newest `keep`. */
  checkpoint: { every: number; keep: number };
  /** Log (and read the loss) every this many steps. */
  logEvery: number;
}

const PRESETS: Record<string, unknown> = {
  "cifar10": cifar10,
  "cifar100": cifar100,
  "stl10": stl10,
  "tiny-imagenet": tinyImagenet,
  "imagenet": imagenet,
  "imagenet-multicrop": imagenetMulticrop,
  "fashion-mnist": fashionMnist,
  "fashion-mnist-quick": fashionMnistQuick,
  "image-folder": imageFolder,
};

/** Names of the built-in presets. */
export const TRAIN_PRESET_NAMES: readonly string[] = Object.keys(PRESETS);

/** Old spellings of preset and dataset names, accepted with a note: old name -> name. */
export const DEPRECATED_NAMES: Readonly<Record<string, string>> = { tinyimagenet: "tiny-imagenet" };

/**
 * The current name of a preset or dataset, and a deprecation note when `name` is an old spelling
 * (`tinyimagenet` -> `tiny-imagenet`).
 */
export function canonicalName(name: string): { name: string; note?: string } {
  const now = DEPRECATED_NAMES[name];
  return now === undefined ? { name } : {
    name: now,
    note: `note: '${name}' is the old name of '${now}' (accepted for now; use '${now}')`,
  };
}

/**
 * The augmentation preset (`src/data/pipelines.ts`) of a configuration: its dataset's, with
 * `image-folder` taking the CIFAR views for RGB images and the Fashion-MNIST ones for 1 channel.
 */
export function augmentationPresetOf(c: TrainConfig): string {
  const name = canonicalName(c.dataset).name;
  if (name === "image-folder") return c.model.inChannels === 1 ? "fashion-mnist" : "cifar10";
  return name;
}

/** Values a string-valued key may take. */
const ENUMS: Record<string, readonly (string | number)[]> = {
  "model.depth": [18, 34, 50],
  "model.stem": ["cifar", "imagenet"],
  "ressl.emaSchedule": ["constant", "cosine"],
  "optim.name": ["sgd", "lars"],
};

/** Keys that may be absent from a preset but set by a config (with their template). */
const OPTIONAL_TEMPLATES: Record<string, unknown> = {
  multiCrop: { sizes: [0], minScales: [0], maxScales: [0] },
  "optim.minWarmupSteps": 0,
};

/** A deep copy of a preset's configuration (old spellings of its name accepted). */
export function presetConfig(name: string): TrainConfig {
  const p = PRESETS[canonicalName(name).name];
  if (!p) {
    throw new RangeError(
      `Cannot use preset '${name}': known presets are ${
        TRAIN_PRESET_NAMES.map((n) => `'${n}'`).join(", ")
      }`,
    );
  }
  return structuredClone(p) as TrainConfig;
}

/**
 * Returns `base` with `override` merged in (deep for objects), checking every key of `override`
 * exists in `base` and has the same type. `source` names where the override came from in errors.
 */
export function mergeConfig(base: TrainConfig, override: unknown, source: string): TrainConfig {
  const out = structuredClone(base) as unknown as Record<string, unknown>;
  mergeInto(out, override, "", source);
  return out as unknown as TrainConfig;
}

function typeName(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (v === null) return "null";
  return typeof v;
}

function mergeInto(
  target: Record<string, unknown>,
  override: unknown,
  prefix: string,
  source: string,
): void {
  if (typeName(override) !== "object") {
    throw new TypeError(
      `Cannot apply ${source}: '${prefix || "<root>"}' must be an object, got ${
        typeName(override)
      }`,
    );
  }
  for (const [key, value] of Object.entries(override as Record<string, unknown>)) {
    const path = prefix ? `${prefix}.${key}` : key;
    let current = target[key];
    if (current === undefined && path in OPTIONAL_TEMPLATES) {
      current = structuredClone(OPTIONAL_TEMPLATES[path]);
      target[key] = current;
    }
    if (current === undefined) {
      const known = Object.keys(target).map((k) => `'${k}'`).join(", ");
      throw new RangeError(`Cannot apply ${source}: unknown key '${path}' (known here: ${known})`);
    }
    if (typeName(current) === "object") {
      mergeInto(current as Record<string, unknown>, value, path, source);
      continue;
    }
    if (typeName(value) !== typeName(current)) {
      throw new TypeError(
        `Cannot apply ${source}: '${path}' must be ${typeName(current)}, got ${typeName(value)} (${
          JSON.stringify(value)
        })`,
      );
    }
    if (Array.isArray(value) && !value.every((v) => typeof v === "number" && Number.isFinite(v))) {
      throw new TypeError(`Cannot apply ${source}: '${path}' must be an array of finite numbers`);
    }
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new RangeError(`Cannot apply ${source}: '${path}' must be finite, got ${value}`);
    }
    const allowed = ENUMS[path];
    if (allowed && !allowed.includes(value as string | number)) {
      throw new RangeError(
        `Cannot apply ${source}: '${path}' must be one of ${allowed.join(", ")}, got ${
          JSON.stringify(value)
        }`,
      );
    }
    target[key] = value;
  }
}

function ensure(ok: boolean, key: string, detail: string): void {
  if (!ok) throw new RangeError(`Invalid configuration: '${key}' ${detail}`);
}

function isPositiveInt(v: number): boolean {
  return Number.isInteger(v) && v > 0;
}

/** Checks value ranges and combinations; throws a RangeError naming the key. */
export function validateConfig(c: TrainConfig): TrainConfig {
  ensure(
    isPositiveInt(c.batchSize),
    "batchSize",
    `must be a positive integer, got ${c.batchSize}`,
  );
  ensure(isPositiveInt(c.epochs), "epochs", `must be a positive integer, got ${c.epochs}`);
  ensure(Number.isSafeInteger(c.seed), "seed", `must be an integer, got ${c.seed}`);
  ensure(isPositiveInt(c.model.width), "model.width", `must be a positive integer`);
  ensure(isPositiveInt(c.model.inChannels), "model.inChannels", `must be a positive integer`);
  ensure(isPositiveInt(c.head.hidden) && isPositiveInt(c.head.out), "head", "sizes must be > 0");
  ensure(isPositiveInt(c.image.size), "image.size", "must be a positive integer");
  ensure(
    c.image.mean.length === c.model.inChannels && c.image.std.length === c.model.inChannels,
    "image.mean",
    `and 'image.std' need one value per input channel (${c.model.inChannels})`,
  );
  ensure(c.image.std.every((s) => s > 0), "image.std", "values must be > 0");
  ensure(
    c.augment.minScale > 0 && c.augment.minScale <= 1,
    "augment.minScale",
    "must be in (0, 1]",
  );
  const r = c.ressl;
  ensure(isPositiveInt(r.queueSize), "ressl.queueSize", "must be a positive integer");
  ensure(
    r.queueSize % c.batchSize === 0,
    "ressl.queueSize",
    `(${r.queueSize}) must be a multiple of batchSize (${c.batchSize})`,
  );
  ensure(r.tauStudent > 0 && r.tauTeacher > 0, "ressl.tauStudent", "and tauTeacher must be > 0");
  ensure(r.emaMomentum >= 0 && r.emaMomentum <= 1, "ressl.emaMomentum", "must be in [0, 1]");
  ensure(isPositiveInt(r.bnSplits), "ressl.bnSplits", "must be a positive integer");
  ensure(
    c.batchSize % r.bnSplits === 0,
    "ressl.bnSplits",
    `(${r.bnSplits}) must divide batchSize (${c.batchSize})`,
  );
  ensure(
    c.batchSize / r.bnSplits > 1,
    "ressl.bnSplits",
    "leaves one image per split: batch norm needs at least 2",
  );
  const o = c.optim;
  ensure(o.lr > 0, "optim.lr", `must be > 0, got ${o.lr}`);
  ensure(o.momentum >= 0 && o.momentum < 1, "optim.momentum", "must be in [0, 1)");
  ensure(o.weightDecay >= 0, "optim.weightDecay", "must be >= 0");
  ensure(!o.nesterov || o.momentum > 0, "optim.nesterov", "needs optim.momentum > 0");
  ensure(o.warmupEpochs >= 0, "optim.warmupEpochs", "must be >= 0");
  ensure(
    o.minWarmupSteps === undefined || (Number.isInteger(o.minWarmupSteps) && o.minWarmupSteps >= 0),
    "optim.minWarmupSteps",
    "must be an integer >= 0",
  );
  ensure(Number.isInteger(c.knnEvery) && c.knnEvery >= 0, "knnEvery", "must be an integer >= 0");
  ensure(isPositiveInt(c.knn.k), "knn.k", "must be a positive integer");
  ensure(c.knn.temperature > 0, "knn.temperature", "must be > 0");
  ensure(isPositiveInt(c.checkpoint.every), "checkpoint.every", "must be a positive integer");
  ensure(isPositiveInt(c.checkpoint.keep), "checkpoint.keep", "must be a positive integer");
  ensure(isPositiveInt(c.logEvery), "logEvery", "must be a positive integer");
  if (c.model.depth === 50) {
    ensure(c.model.stem === "imagenet" || c.model.stem === "cifar", "model.stem", "is invalid");
  }
  if (c.multiCrop) {
    const m = c.multiCrop;
    ensure(
      m.sizes.length > 0 && m.sizes.length === m.minScales.length &&
        m.sizes.length === m.maxScales.length,
      "multiCrop",
      "needs sizes, minScales and maxScales of the same non-zero length",
    );
    ensure(
      m.minScales.every((s, i) => s > 0 && s <= m.maxScales[i] && m.maxScales[i] <= 1),
      "multiCrop.minScales",
      "must satisfy 0 < min <= max <= 1 for every crop",
    );
  }
  return c;
}

/** The learning rate actually used: `lr * batch / 256` when scaling is on. */
export function effectiveLr(c: TrainConfig): number {
  return c.optim.scaleLr ? c.optim.lr * c.batchSize / 256 : c.optim.lr;
}

/** Upper bound on the warm-up as a fraction of all steps (5 of 200 epochs). */
export const MAX_WARMUP_FRACTION = 0.025;

/**
 * Warm-up steps of a run with `stepsPerEpoch` steps per epoch (this project's rule for short runs,
 * RESSL_SPEC §6): `optim.warmupEpochs` epochs, capped at 2.5 % of all steps; the cap never goes
 * below `optim.minWarmupSteps` steps or half the run, whichever is less (a warm-up of a handful of
 * steps lets the default lr collapse a short run: docs/results.md), and the warm-up is never longer
 * than its `warmupEpochs` epochs. `warmupEpochs` 0 means none.
 *
 * For the full recipes the floor changes nothing (200 epochs of 234 steps: 5 epochs = 1170 steps).
 */
export function warmupStepsOf(c: TrainConfig, stepsPerEpoch: number): number {
  const total = c.epochs * stepsPerEpoch;
  const byEpochs = Math.floor(c.optim.warmupEpochs * stepsPerEpoch);
  // The epsilon absorbs binary rounding: 2.5 % of 78000 steps is 1950, not 1949.
  const byFraction = Math.floor(total * MAX_WARMUP_FRACTION + 1e-9);
  const floor = Math.min(c.optim.minWarmupSteps ?? 0, Math.floor(total / 2));
  return Math.min(byEpochs, Math.max(byFraction, floor), total);
}

/**
 * The `warmupEpochs` / `maxWarmupFraction` pair that makes `src/optim/schedule.ts` (min of the two)
 * give exactly {@link warmupStepsOf} steps.
 */
export function warmupScheduleOf(
  c: TrainConfig,
  stepsPerEpoch: number,
): { warmupEpochs: number; maxWarmupFraction: number } {
  const steps = warmupStepsOf(c, stepsPerEpoch);
  const total = c.epochs * stepsPerEpoch;
  // Half a step above the target on both sides: floor() lands on `steps` whatever the rounding.
  return {
    warmupEpochs: (steps + 0.5) / stepsPerEpoch,
    maxWarmupFraction: Math.min(1, (steps + 0.5) / total),
  };
}

/** Backbone feature dimension of the configured ResNet. */
export function featureDim(c: TrainConfig): number {
  return 8 * c.model.width * (c.model.depth === 50 ? 4 : 1);
}
