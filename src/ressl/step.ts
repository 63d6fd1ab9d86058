/**
 * One ReSSL training step (DESIGN.md "the pipeline", RESSL_SPEC §2-§4, §6) as a pure function:
 * `trainStep(state, batch, key) -> { state, metrics }`.
 *
 * Order, as the official small-dataset code:
 * 1. EMA of the teacher parameters with constant m (schedule `constant`: at the start);
 * 2. teacher forward on the weak view without gradient: training-mode BN (its own running
 *    statistics), optionally with the batch shuffled before and unshuffled after (shuffle-BN),
 *    SplitBatchNorm when `bnSplits > 1`; `k = normalize(head(backbone(x_weak)))`;
 * 3. student forward + backward on the strong view: `q = normalize(head(backbone(x_strong)))`,
 *    relation loss of q and k over the queue;
 * 4. SGD (or LARS) step with this step's learning rate;
 * 5. EMA with the cosine schedule (solo-learn: after the optimiser step);
 * 6. enqueue k.
 *
 * The returned state shares no tensor with the input state; the caller disposes the old state
 * ({@link disposeTrainState}) when it no longer needs it.
 *
 * @module
 */

import { foldIn, nameId, permutation, type RngKey } from "../random/philox.ts";
import {
  headForward,
  type HeadParams,
  type ResNetBuffers,
  resnetForward,
  type ResNetParams,
} from "../nn/mod.ts";
import { add, l2Normalize, permuteRows, scale } from "../ops/mod.ts";
import { type LarsOptions, larsStep } from "../optim/lars.ts";
import type { ParamPredicate } from "../optim/params.ts";
import { warmupCosineLr, type WarmupCosineOptions } from "../optim/schedule.ts";
import { type SgdState, sgdStep } from "../optim/sgd.ts";
import { valueAndGrad } from "../tensor/autodiff.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { disposeTree } from "../tensor/tree.ts";
import { emaMomentum, type EmaSchedule, emaTiming, emaUpdate } from "./ema.ts";
import { relationLoss } from "./loss.ts";
import { checkQueueBatch, enqueue, type Queue } from "./queue.ts";

/** Parameters of one network (student or teacher): backbone and projection head. */
export type NetParams = {
  backbone: ResNetParams;
  head: HeadParams;
};

/** A network's parameters and BatchNorm running statistics. */
export interface NetState {
  /** Backbone and head parameters. */
  params: NetParams;
  /** Backbone BN running statistics. */
  buffers: ResNetBuffers;
}

/** Everything a step reads and writes. */
export interface TrainState {
  /** The network trained by gradient descent (strong views). */
  student: NetState;
  /** The EMA of the student (weak views, no gradient). */
  teacher: NetState;
  /** The queue of past teacher embeddings the relations are computed against. */
  queue: Queue;
  /** Momentum buffers of the student parameters (SGD and LARS share this state). */
  optimizer: SgdState<NetParams>;
  /** Steps done so far (the next step's index for the schedules). */
  step: number;
}

/** The two views of a batch, f32 NCHW, same shape. */
export interface TrainBatch {
  /** Weak view (teacher). */
  weak: Tensor;
  /** Strong view (student). */
  strong: Tensor;
  /**
   * Extra strong crops (multi-crop, RESSL_SPEC §5): each is encoded separately by the student and
   * matched to the same teacher relation; the loss averages over all crops' rows.
   */
  extraStrong?: Tensor[];
}

/** What a step reports. Values stay on the device until read (one sync per logging interval). */
export interface StepMetrics {
  /** The relation loss (a scalar tensor the caller owns and disposes). */
  loss: Tensor;
  /** Learning rate used. */
  lr: number;
  /** EMA momentum used. */
  emaMomentum: number;
}

/** The configuration a step is built from. */
export interface TrainStepConfig {
  /** Student temperature (0.1). */
  tauS: number;
  /** Teacher temperature (0.04). */
  tauT: number;
  /** Teacher momentum schedule (official: constant 0.99). */
  ema: EmaSchedule;
  /** SplitBatchNorm splits of both networks in training (official small datasets: 8). */
  bnSplits: number;
  /** Shuffle the teacher's batch before its forward and unshuffle after (official: on). */
  shuffleTeacher: boolean;
  /** Max-pool after the stem (STL-10 / Tiny-ImageNet with the cifar stem). */
  maxPool?: boolean;
  /** §9 variant: masked current-batch keys in the relation basis. */
  maskedBatchKeys?: boolean;
  /** Learning rate per step: a warm-up + cosine schedule, or any function of the step index. */
  lr: WarmupCosineOptions | ((step: number) => number);
  /** Optimiser: SGD (the paper) or LARS, with momentum, weight decay and exclusions. */
  optimizer: {
    name: "sgd" | "lars";
    momentum: number;
    weightDecay: number;
    nesterov?: boolean;
    exclude?: ParamPredicate;
    lars?: Pick<LarsOptions, "eta" | "eps" | "clipLr" | "excludeFromAdaptation">;
  };
}

/** A train step bound to its configuration. */
export type TrainStep = (
  state: TrainState,
  batch: TrainBatch,
  key: RngKey,
) => { state: TrainState; metrics: StepMetrics };

/**
 * The teacher's batch shuffle of a step: `x_shuffled[i] = x[perm[i]]` (official
 * `_batch_shuffle_single_gpu`, drawn here from the step key instead of `torch.randperm`).
 */
export function teacherShuffle(key: RngKey, n: number): Int32Array {
  return permutation(foldIn(key, nameId("shuffle")), n);
}

/** `k` [B, D] of the teacher on the weak view, and its new BN buffers (no gradient). */
function teacherKeys(
  teacher: { params: NetParams; buffers: ResNetBuffers },
  x: Tensor,
  key: RngKey,
  config: TrainStepConfig,
): { k: Tensor; buffers: ResNetBuffers } {
  const ctx = x.ctx;
  return ctx.noGrad(() =>
    ctx.scope(() => {
      const n = x.shape[0];
      const perm = config.shuffleTeacher ? teacherShuffle(key, n) : null;
      const input = perm ? permuteRows(x, perm) : x;
      const out = resnetForward(teacher.params.backbone, teacher.buffers, input, {
        training: true,
        bnSplits: config.bnSplits,
        maxPool: config.maxPool,
      });
      const z = l2Normalize(headForward(teacher.params.head, out.features));
      if (!perm) return { k: z, buffers: out.buffers };
      const inverse = new Int32Array(n);
      perm.forEach((p, i) => (inverse[p] = i));
      return { k: permuteRows(z, inverse), buffers: out.buffers };
    })
  );
}

/** Builds the step function of a configuration. */
export function createTrainStep(config: TrainStepConfig): TrainStep {
  const lrAt = typeof config.lr === "function"
    ? config.lr
    : (step: number) => warmupCosineLr(step, config.lr as WarmupCosineOptions);
  const timing = emaTiming(config.ema);
  const lossOf = valueAndGrad(
    (params: NetParams, buffers: ResNetBuffers, xs: Tensor[], k: Tensor, queue: Tensor) => {
      // The crops go through the student one after the other; BN running statistics are updated
      // by each forward in turn, as a PyTorch module called once per crop.
      let bufs = buffers;
      let total: Tensor | undefined;
      for (const x of xs) {
        const out = resnetForward(params.backbone, bufs, x, {
          training: true,
          bnSplits: config.bnSplits,
          maxPool: config.maxPool,
        });
        bufs = out.buffers;
        const q = l2Normalize(headForward(params.head, out.features));
        const loss = relationLoss(q, k, queue, {
          tauS: config.tauS,
          tauT: config.tauT,
          currentBatchKeys: config.maskedBatchKeys ?? false,
        });
        total = total ? add(total, loss) : loss;
      }
      const value = xs.length === 1 ? total! : scale(total!, 1 / xs.length);
      return { value, aux: bufs };
    },
  );

  return (state, batch, key) => {
    const n = batch.weak.shape[0];
    for (const v of [batch.strong, ...(batch.extraStrong ?? [])]) {
      if (v.shape[0] !== n) {
        throw new RangeError(
          `Cannot run the train step: the weak view has ${n} images but a strong view ` +
            `has ${v.shape[0]}`,
        );
      }
    }
    checkQueueBatch(state.queue.data.shape[0], n);
    const m = emaMomentum(config.ema, state.step);
    const lr = lrAt(state.step);
    const teacherParams = timing === "start"
      ? emaUpdate(state.teacher.params, state.student.params, m)
      : state.teacher.params;
    const t = teacherKeys(
      { params: teacherParams, buffers: state.teacher.buffers },
      batch.weak,
      key,
      config,
    );
    const r = lossOf(
      state.student.params,
      state.student.buffers,
      [batch.strong, ...(batch.extraStrong ?? [])],
      t.k,
      state.queue.data,
    );
    const o = config.optimizer;
    const opts = {
      lr,
      momentum: o.momentum,
      weightDecay: o.weightDecay,
      nesterov: o.nesterov,
      exclude: o.exclude,
    };
    const next = o.name === "lars"
      ? larsStep(state.student.params, r.grads, state.optimizer, { ...opts, ...o.lars })
      : sgdStep(state.student.params, r.grads, state.optimizer, opts);
    disposeTree(r.grads);
    let newTeacherParams = teacherParams;
    if (timing === "end") newTeacherParams = emaUpdate(teacherParams, next.params, m);
    const queue = enqueue(state.queue, t.k);
    t.k.dispose();
    return {
      state: {
        student: { params: next.params, buffers: r.aux },
        teacher: { params: newTeacherParams, buffers: t.buffers },
        queue,
        optimizer: next.state,
        step: state.step + 1,
      },
      metrics: { loss: r.value, lr, emaMomentum: m },
    };
  };
}

/** Disposes every tensor of a train state. */
export function disposeTrainState(state: TrainState): void {
  disposeTree([
    state.student.params,
    state.student.buffers,
    state.teacher.params,
    state.teacher.buffers,
    state.optimizer.momentum,
    state.queue.data,
  ] as never);
}
