/**
 * Building a run's training state and step from a {@link TrainConfig}: the initial student,
 * teacher (a copy of the student), queue and optimiser state, the step configuration, and the
 * mapping between a state and the named trees of a checkpoint.
 *
 * @module
 */

import { foldIn, nameId, rngKey } from "../random/philox.ts";
import { initHead, initResNet, resnetFeatureDim, type ResNetOptions } from "../nn/mod.ts";
import { excludeBnAndBias } from "../optim/params.ts";
import { sgdInit } from "../optim/sgd.ts";
import type { Context, Tensor, TensorTree } from "../tensor/mod.ts";
import { cloneTree } from "../tensor/mod.ts";
import type { TrainConfig } from "./config.ts";
import { effectiveLr } from "./config.ts";
import { initQueue } from "./queue.ts";
import type { NetParams, TrainState, TrainStepConfig } from "./step.ts";

/** The ResNet options of a configuration. */
export function backboneOptions(config: TrainConfig): ResNetOptions {
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
      warmupEpochs: config.optim.warmupEpochs,
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

/** The named trees a checkpoint stores for a state (names are checkpoint tensor prefixes). */
export function stateTrees(state: TrainState): Record<string, TensorTree> {
  return {
    "student": state.student.params as unknown as TensorTree,
    "student_buffers": state.student.buffers as unknown as TensorTree,
    "teacher": state.teacher.params as unknown as TensorTree,
    "teacher_buffers": state.teacher.buffers as unknown as TensorTree,
    "queue": state.queue.data,
    "momentum": state.optimizer.momentum as unknown as TensorTree,
  };
}

/** Rebuilds a state from checkpoint trees (shaped by {@link stateTrees}) and the queue pointer. */
export function stateFromTrees(
  trees: Record<string, TensorTree>,
  queuePtr: number,
  step: number,
): TrainState {
  return {
    student: {
      params: trees.student as unknown as NetParams,
      buffers: trees.student_buffers as unknown as TrainState["student"]["buffers"],
    },
    teacher: {
      params: trees.teacher as unknown as NetParams,
      buffers: trees.teacher_buffers as unknown as TrainState["teacher"]["buffers"],
    },
    queue: { data: trees.queue as Tensor, ptr: queuePtr },
    optimizer: { momentum: trees.momentum as unknown as NetParams },
    step,
  };
}

/** Metadata stored in every checkpoint. */
export interface CheckpointMeta {
  step: number;
  epoch: number;
  seed: number;
  queuePtr: number;
  dataset: string;
  images: number;
  config: TrainConfig;
}
