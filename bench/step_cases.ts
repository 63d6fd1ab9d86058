/**
 * The benchmark cases of issue 15 (CPU speed against current PyTorch) shared by the step, training
 * path and profile benchmarks: ResNet-18 width 16 batch 256 on 28x28x1, width 64 batch 64 on
 * 28x28x1, and the CIFAR-shaped 32x32x3 width 64 batch 64 (plus the older CIFAR batch-256 case,
 * run only when asked for). Plain BatchNorm and no teacher shuffle on both sides.
 *
 * @module
 */

import { mergeConfig, presetConfig, type TrainConfig, validateConfig } from "../src/ressl/mod.ts";

/** One benchmark case. */
export interface StepCase {
  /** Short id for `--only`. */
  id: string;
  /** Table label. */
  label: string;
  /** The preset the configuration starts from. */
  preset: "fashion-mnist" | "cifar10";
  /** Batch size. */
  batch: number;
  /** Base width of the ResNet-18. */
  width: number;
  /** Target of issue 15: ours at least this many times the faster PyTorch 2.x. */
  target: number;
  /** Run by default (false: only with `--only`). */
  byDefault: boolean;
}

/** Every case; see the module doc. */
export const STEP_CASES: readonly StepCase[] = [
  {
    id: "b",
    label: "(b) ResNet-18 width 16, 1x28x28, batch 256",
    preset: "fashion-mnist",
    batch: 256,
    width: 16,
    target: 1.5,
    byDefault: true,
  },
  {
    id: "c",
    label: "(c) ResNet-18 width 64, 1x28x28, batch 64",
    preset: "fashion-mnist",
    batch: 64,
    width: 64,
    target: 1.5,
    byDefault: true,
  },
  {
    id: "a64",
    label: "(a) ResNet-18 CIFAR, 3x32x32, batch 64",
    preset: "cifar10",
    batch: 64,
    width: 64,
    target: 1.5,
    byDefault: true,
  },
  {
    id: "a256",
    label: "(a) ResNet-18 CIFAR, 3x32x32, batch 256",
    preset: "cifar10",
    batch: 256,
    width: 64,
    target: 1.5,
    byDefault: false,
  },
];

/** The cases named by `--only a,b` (or the default ones); throws naming the unknown id. */
export function selectCases(only: string | undefined, flag = "--only"): StepCase[] {
  if (!only) return STEP_CASES.filter((c) => c.byDefault);
  const ids = only.split(",").map((s) => s.trim()).filter((s) => s !== "");
  return ids.map((id) => {
    const c = STEP_CASES.find((x) => x.id === id);
    if (!c) {
      throw new RangeError(
        `Cannot run the benchmark: ${flag} ${only} names '${id}', known cases are ${
          STEP_CASES.map((x) => x.id).join(", ")
        }`,
      );
    }
    return c;
  });
}

/** Plain BatchNorm without teacher shuffle on both sides (SplitBN is a separate question). */
const COMMON = { ressl: { bnSplits: 1, shuffleTeacher: false } };

/** The validated training configuration of a case (`batch` overrides the case's batch size). */
export function caseConfig(c: StepCase, batch = c.batch): TrainConfig {
  return validateConfig(
    mergeConfig(
      presetConfig(c.preset),
      { ...COMMON, batchSize: batch, model: { width: c.width } },
      "bench",
    ),
  );
}

/** The peer configuration `bench/step_torch.py` reads, for a configuration. */
export function torchStepConfig(config: TrainConfig, threads: number): Record<string, unknown> {
  const m = config.model;
  return {
    width: m.width,
    inChannels: m.inChannels,
    size: config.image.size,
    batch: config.batchSize,
    hidden: config.head.hidden,
    out: config.head.out,
    queue: config.ressl.queueSize,
    m: config.ressl.emaMomentum,
    tauS: config.ressl.tauStudent,
    tauT: config.ressl.tauTeacher,
    lr: config.optim.lr,
    momentum: config.optim.momentum,
    weightDecay: config.optim.weightDecay,
    threads,
    seed: 0,
  };
}

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError("Cannot take the median of no measurements");
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
