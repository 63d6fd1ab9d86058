/**
 * Building a run's training state and step from a {@link TrainConfig}: the initial student,
 * teacher (a copy of the student), queue and optimiser state, and the step configuration. How a
 * state is stored in a checkpoint is the schema of `checkpoint.ts`.
 *
 * @module
 */

import { foldIn, nameId, rngKey } from "../random/philox.ts";
import { initHead, initResNet, resnetFeatureDim, type ResNetOptions } from "../nn/mod.ts";
import { excludeBnAndBias } from "../optim/params.ts";
import { sgdInit } from "../optim/sgd.ts";
import type { Context } from "../tensor/mod.ts";
import { cloneTree } from "../tensor/mod.ts";
import type { TrainConfig } from "./config.ts";
import { effectiveLr, warmupScheduleOf } from "./config.ts";
import { initQueue } from "./queue.ts";
import type { NetParams, TrainState, TrainStepConfig } from "./step.ts";

/** The ResNet options of a configuration, every field set. */
export function backboneOptions(config: TrainConfig): Required<ResNetOptions> {
  return {
    depth: config.model.depth,
    stem: config.model.stem,
    maxPool: config.model.maxPool,
    inChannels: config.model.inChannels,
    width: config.model.width,
  };
}

/**
 * The state of step 0: student initialised as torchvision from the run's seed, teacher = student,
 * queue of random unit rows, zero momentum buffers.
 */
export function initTrainState(ctx: Context, config: TrainConfig): TrainState {
  const root = rngKey(config.seed);
  return ctx.scope(() => {
    const initKey = foldIn(root, nameId("init"));
    const backbone = initResNet(ctx, { ...backboneOptions(config), key: initKey });
    const head = initHead(ctx, {
      inDim: resnetFeatureDim(backboneOptions(config)),
      hiddenDim: config.head.hidden,
      outDim: config.head.out,
      key: initKey,
    });
    const params: NetParams = { backbone: backbone.params, head };
    const student = { params, buffers: backbone.buffers };
    const teacher = { params: cloneTree(params), buffers: cloneTree(backbone.buffers) };
    const queue = initQueue(ctx, {
      size: config.ressl.queueSize,
      dim: config.head.out,
      key: foldIn(root, nameId("queue")),
      batchSize: config.batchSize,
    });
    return { student, teacher, queue, optimizer: sgdInit(params), step: 0 };
  });
}

/** The step configuration of a run with `stepsPerEpoch` steps per epoch. */
export function trainStepConfig(config: TrainConfig, stepsPerEpoch: number): TrainStepConfig {
  const totalSteps = config.epochs * stepsPerEpoch;
  const r = config.ressl;
  return {
    tauS: r.tauStudent,
    tauT: r.tauTeacher,
    ema: r.emaSchedule === "constant"
      ? { kind: "constant", momentum: r.emaMomentum }
      : { kind: "cosine", base: r.emaMomentum, totalSteps },
    bnSplits: r.bnSplits,
    shuffleTeacher: r.shuffleTeacher,
    maxPool: config.model.maxPool,
    maskedBatchKeys: r.maskedBatchKeys,
    lr: {
      baseLr: effectiveLr(config),
      stepsPerEpoch,
      totalSteps,
      ...warmupScheduleOf(config, stepsPerEpoch),
    },
    optimizer: {
      name: config.optim.name,
      momentum: config.optim.momentum,
      weightDecay: config.optim.weightDecay,
      nesterov: config.optim.nesterov,
      exclude: config.optim.excludeBnBias ? excludeBnAndBias : undefined,
    },
  };
}
