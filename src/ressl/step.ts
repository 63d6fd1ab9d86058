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
import { add, type BatchNormSync, l2Normalize, permuteRows, scale, sliceRows } from "../ops/mod.ts";
import type { DeviceComm } from "../dist/device_comm.ts";
import { type GradientBucketOptions, GradientBuckets } from "../dist/grad_buckets.ts";
import { type LarsOptions, larsStep } from "../optim/lars.ts";
import type { ParamPredicate } from "../optim/params.ts";
import { warmupCosineLr, type WarmupCosineOptions } from "../optim/schedule.ts";
import { type SgdState, sgdStep } from "../optim/sgd.ts";
import { record, valueAndGrad } from "../tensor/autodiff.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { disposeTree, flattenTree, mapTree, treeSize } from "../tensor/tree.ts";
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
 * Data-parallel training (one process per rank, W ranks): each rank's batch is the strided slice
 * r, r + W, r + 2W, ... of the global batch (`--batch-size` stays global), and a step on W ranks
 * computes what the same step computes on one process (see `runParallelTeacher` and
 * `ops/batch_norm_sync.ts`): BN groups over the global batch, the teacher's shuffle over the
 * global batch (weak views gathered, the same permutation from the step key on every rank, k
 * gathered and unshuffled), every rank enqueues all B keys (identical queues), gradients and the
 * loss averaged over the ranks (buckets overlapping backward).
 */
export interface StepParallel extends GradientBucketOptions {
  /** Collectives on the backend's storages (MPI through the host on CPUs, NCCL on GPUs). */
  comm: DeviceComm;
}

/**
 * The teacher's batch shuffle of a step: `x_shuffled[i] = x[perm[i]]` (official
 * `_batch_shuffle_single_gpu`, drawn here from the step key instead of `torch.randperm`).
 */
export function teacherShuffle(key: RngKey, n: number): Int32Array {
  return permutation(foldIn(key, nameId("shuffle")), n);
}

/** The ranks of a parallel step, or null for one process. */
interface Ranks {
  rank: number;
  size: number;
  comm: DeviceComm;
  bnSync: BatchNormSync;
}

function ranksOf(parallel: StepParallel | undefined): Ranks | null {
  if (parallel === undefined || parallel.comm.comm.size === 1) return null;
  const dc = parallel.comm;
  const { rank, size } = dc.comm;
  return { rank, size, comm: dc, bnSync: { rank, size, allgather: (s, r) => dc.allgather(s, r) } };
}

/** Every rank's `x` (same shape) stacked in rank order along the first dimension. */
function gatherAll(x: Tensor, p: Ranks): Tensor {
  const out = x.ctx.empty([p.size * x.shape[0], ...x.shape.slice(1)]);
  p.comm.allgather(x.storage, out.storage);
  return out;
}

/** Rows `rows` (distinct) of `x`, in that order (no gradient). */
function takeRows(x: Tensor, rows: Int32Array): Tensor {
  const n = x.shape[0];
  const perm = new Int32Array(n);
  const used = new Uint8Array(n);
  rows.forEach((r, i) => {
    perm[i] = r;
    used[r] = 1;
  });
  let j = rows.length;
  for (let r = 0; r < n; r++) if (!used[r]) perm[j++] = r;
  const all = permuteRows(x, perm);
  if (rows.length === n) return all;
  const part = sliceRows(all, 0, rows.length);
  all.dispose();
  return part;
}

/**
 * The teacher of a parallel step. Global image g (position g of the global batch) is row
 * `(g % W) b + floor(g / W)` of a gather of the ranks' b rows each. With the shuffle, rank r runs
 * the shuffled positions r, r + W, ... (so BN groups, counted over positions, are those of one
 * process), then the keys are gathered and unshuffled. Returns the B keys in global order and this
 * rank's b.
 */
function parallelTeacherKeys(
  teacher: { params: NetParams; buffers: ResNetBuffers },
  x: Tensor,
  key: RngKey,
  config: TrainStepConfig,
  p: Ranks,
): { kGlobal: Tensor; kLocal: Tensor; buffers: ResNetBuffers } {
  const ctx = x.ctx;
  const { rank, size } = p;
  const b = x.shape[0];
  const total = b * size;
  const rowOf = (g: number) => (g % size) * b + Math.floor(g / size);
  const mine = Int32Array.from({ length: b }, (_, i) => i * size + rank);
  return ctx.noGrad(() =>
    ctx.scope(() => {
      const perm = config.shuffleTeacher ? teacherShuffle(key, total) : null;
      let input = x;
      if (perm) {
        const all = gatherAll(x, p);
        input = takeRows(all, mine.map((pos) => rowOf(perm[pos])));
        all.dispose();
      }
      const out = resnetForward(teacher.params.backbone, teacher.buffers, input, {
        training: true,
        bnSplits: config.bnSplits,
        maxPool: config.maxPool,
        bnSync: p.bnSync,
      });
      const z = l2Normalize(headForward(teacher.params.head, out.features));
      const gathered = gatherAll(z, p);
      const order = new Int32Array(total);
      if (perm) perm.forEach((g, pos) => (order[g] = rowOf(pos)));
      else order.forEach((_, g) => (order[g] = rowOf(g)));
      const kGlobal = permuteRows(gathered, order);
      const kLocal = perm ? takeRows(kGlobal, mine) : z;
      return { kGlobal, kLocal, buffers: out.buffers };
    })
  );
}

/**
 * `params` with an identity node on every tensor whose backward hands the tensor's complete
 * gradient to `buckets` (leaf i of `flattenTree` order) the moment backward has produced it.
 */
function watchGradients(params: NetParams, buckets: GradientBuckets): NetParams {
  const index = new Map(flattenTree(params).map(([path], i) => [path, i]));
  return mapTree(params, (t, path) => {
    const i = index.get(path)!;
    const out = t.ctx.view(t, t.shape);
    return record(out, [t], (dy) => {
      buckets.ready(i, dy.storage);
      return [dy];
    });
  });
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

/**
 * Builds the step function of a configuration; with `parallel` (a job of several ranks), the
 * data-parallel step (see {@link StepParallel}).
 */
export function createTrainStep(config: TrainStepConfig, parallel?: StepParallel): TrainStep {
  const ranks = ranksOf(parallel);
  if (ranks && config.maskedBatchKeys) {
    throw new RangeError(
      "Cannot train the masked current-batch-keys variant (ressl.maskedBatchKeys) on several " +
        "processes yet: run it in one process",
    );
  }
  const lrAt = typeof config.lr === "function"
    ? config.lr
    : (step: number) => warmupCosineLr(step, config.lr as WarmupCosineOptions);
  const timing = emaTiming(config.ema);
  const lossOf = valueAndGrad(
    (
      net: NetParams,
      buffers: ResNetBuffers,
      xs: Tensor[],
      k: Tensor,
      queue: Tensor,
      buckets: GradientBuckets | null,
    ) => {
      const params = buckets ? watchGradients(net, buckets) : net;
      // The crops go through the student one after the other; BN running statistics are updated
      // by each forward in turn, as a PyTorch module called once per crop.
      let bufs = buffers;
      let total: Tensor | undefined;
      for (const x of xs) {
        const out = resnetForward(params.backbone, bufs, x, {
          training: true,
          bnSplits: config.bnSplits,
          maxPool: config.maxPool,
          bnSync: ranks?.bnSync,
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
    if (!ranks) checkQueueBatch(state.queue.data.shape[0], n);
    const m = emaMomentum(config.ema, state.step);
    const lr = lrAt(state.step);
    const teacherParams = timing === "start"
      ? emaUpdate(state.teacher.params, state.student.params, m)
      : state.teacher.params;
    const teacher = { params: teacherParams, buffers: state.teacher.buffers };
    const t = ranks
      ? parallelTeacherKeys(teacher, batch.weak, key, config, ranks)
      : (({ k, buffers }) => ({ kGlobal: k, kLocal: k, buffers }))(
        teacherKeys(teacher, batch.weak, key, config),
      );
    if (ranks) checkQueueBatch(state.queue.data.shape[0], t.kGlobal.shape[0]);
    // BN groups on whole ranks: each rank's running statistics are its own groups', and their
    // average over the ranks (taken with the gradients) is one process's (ops/batch_norm_sync).
    const averageBuffers = ranks !== null && config.bnSplits % ranks.size === 0;
    const bufferSize = treeSize(state.student.buffers as never);
    const buckets = ranks
      ? new GradientBuckets(
        ranks.comm,
        flattenTree(state.student.params).map(([, p]) => p.size),
        { ...parallel, extra: 1 + (averageBuffers ? 2 * bufferSize : 0) },
      )
      : null;
    let r;
    try {
      r = lossOf(
        state.student.params,
        state.student.buffers,
        [batch.strong, ...(batch.extraStrong ?? [])],
        t.kLocal,
        state.queue.data,
        buckets,
      );
    } catch (e) {
      buckets?.dispose();
      throw e;
    }
    // The ranks' average gradient and loss (and BN buffers), written into the tensors in place.
    const extras = [r.value, ...(averageBuffers ? [r.aux, t.buffers] : [])];
    buckets?.finish(
      flattenTree(r.grads).map(([, g]) => g.storage),
      flattenTree(extras as never).map(([, e]) => e.storage),
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
    const queue = enqueue(state.queue, t.kGlobal);
    if (t.kLocal !== t.kGlobal) t.kLocal.dispose();
    t.kGlobal.dispose();
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
