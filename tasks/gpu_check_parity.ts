/**
 * Training-step parity between two backends: the same configuration, the same initial state
 * (initialisation is drawn on the host from the seed, then uploaded), the same views and step keys,
 * N steps on each, and the loss of every step compared. Used by `deno task gpu-check` (cuda vs cpu
 * on a GPU) and by `tests/cuda_backend/train_parity_test.ts` (cuda on the emulated device vs cpu).
 *
 * @module
 */

import type { Backend } from "../src/backend/backend.ts";
import { foldIn, nameId, normalArray, rngKey } from "../src/random/philox.ts";
import {
  createTrainStep,
  disposeTrainState,
  initTrainState,
  mergeConfig,
  presetConfig,
  type TrainConfig,
  trainStepConfig,
  validateConfig,
} from "../src/ressl/mod.ts";
import { createContext } from "../src/tensor/mod.ts";

/** A small CIFAR-shaped configuration for parity runs (ResNet-18 cifar stem, narrow). */
export function parityConfig(
  o: { width?: number; batch?: number; size?: number; queue?: number } = {},
): TrainConfig {
  const batch = o.batch ?? 8;
  return validateConfig(mergeConfig(
    presetConfig("cifar10"),
    {
      batchSize: batch,
      model: { width: o.width ?? 4 },
      head: { hidden: 32, out: 16 },
      image: { size: o.size ?? 16 },
      ressl: { queueSize: o.queue ?? 4 * batch, bnSplits: 2, shuffleTeacher: true },
      optim: { warmupEpochs: 0, minWarmupSteps: 0 },
    },
    "parity",
  ));
}

/** Losses of the steps on each side and their largest relative difference. */
export interface ParityResult {
  /** The loss of each step on backend `a`, then on `b`. */
  a: number[];
  b: number[];
  /** max over steps of |a - b| / |b|. */
  maxRelDiff: number;
  /** Live storages left on each backend after the run (0: no leak). */
  leftA: number;
  leftB: number;
}

/** The loss of `steps` training steps on one backend (disposes everything it made). */
export function stepLosses(backend: Backend, config: TrainConfig, steps: number): number[] {
  const ctx = createContext(backend);
  const step = createTrainStep(trainStepConfig(config, 1000));
  const [n, c, s] = [config.batchSize, config.model.inChannels, config.image.size];
  const root = rngKey(config.seed);
  let state = initTrainState(ctx, config);
  const losses: number[] = [];
  try {
    for (let i = 0; i < steps; i++) {
      const view = (k: number) => normalArray(foldIn(root, nameId("view"), i, k), n * c * s * s);
      const r = ctx.scope(() => {
        const batch = {
          weak: ctx.fromArray(view(0), [n, c, s, s]),
          strong: ctx.fromArray(view(1), [n, c, s, s]),
        };
        return step(state, batch, foldIn(root, nameId("step"), i));
      });
      disposeTrainState(state);
      state = r.state;
      losses.push(r.metrics.loss.item());
      r.metrics.loss.dispose();
    }
  } finally {
    disposeTrainState(state);
  }
  return losses;
}

/** Runs the same `steps` on `a` and `b` (fresh backends, disposed after) and compares losses. */
export function stepParity(
  makeA: () => Backend,
  makeB: () => Backend,
  config: TrainConfig,
  steps: number,
): ParityResult {
  const run = (make: () => Backend) => {
    const be = make();
    try {
      const losses = stepLosses(be, config, steps);
      return { losses, left: be.liveAllocations() };
    } finally {
      be.dispose();
    }
  };
  const ra = run(makeA);
  const rb = run(makeB);
  let maxRelDiff = 0;
  ra.losses.forEach((l, i) => {
    const d = Math.abs(l - rb.losses[i]) / Math.abs(rb.losses[i]);
    maxRelDiff = Math.max(maxRelDiff, Number.isNaN(d) ? Infinity : d);
  });
  return { a: ra.losses, b: rb.losses, maxRelDiff, leftA: ra.left, leftB: rb.left };
}
