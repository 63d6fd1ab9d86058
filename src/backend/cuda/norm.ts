/**
 * Batch norm of the cuda backend (`batch_norm.cu`): training forward (batch statistics in S
 * splits per channel, combined in order, then the fused apply with the optional residual add and
 * ReLU), inference forward (the apply alone, with the given statistics) and the fused backward
 * (partial sums, their combination into dgamma/dbeta, then dx and dresidual). Activations are f32
 * or bf16; gamma, beta and the statistics f32. The split counts depend only on the shape, so
 * results are the same bits for the same inputs.
 *
 * @module
 */

import type { BatchNormGeometry } from "../backend.ts";
import { BLOCK } from "./kernel_image.ts";
import type { CudaRuntime } from "./runtime.ts";
import { type CudaStorage, ptrOrNull } from "./storage.ts";

/** Largest grid y (channels of one launch). */
const MAX_GRID_Y = 65535;

/** Statistic splits per channel of M = n hw elements (README: clamp(ceil(M / 4096), 1, 64)). */
export function bnSplits(g: BatchNormGeometry): number {
  return Math.max(1, Math.min(64, Math.ceil((g.n * g.hw) / 4096)));
}

/** Apply blocks per channel (README: clamp(ceil(M / 1024), 1, 64)). */
export function bnApplyBlocks(g: BatchNormGeometry): number {
  return Math.max(1, Math.min(64, Math.ceil((g.n * g.hw) / 1024)));
}

function suffix(x: CudaStorage): "f32" | "bf16" {
  return x.dtype === "bf16" ? "bf16" : "f32";
}

function checkChannels(kernel: string, g: BatchNormGeometry): void {
  if (g.c > MAX_GRID_Y) {
    throw new RangeError(
      `Cannot run ${kernel} on CUDA: ${g.c} channels exceed one launch's ${MAX_GRID_Y}`,
    );
  }
}

/** Options of the batch-norm forwards with this backend's storages. */
export interface ApplyArgs {
  x: CudaStorage;
  residual?: CudaStorage | null;
  y: CudaStorage;
  gamma: CudaStorage;
  beta: CudaStorage;
  mean: CudaStorage;
  variance: CudaStorage;
  eps: number;
  relu?: boolean;
  geom: BatchNormGeometry;
}

function apply(rt: CudaRuntime, o: ApplyArgs): void {
  const g = o.geom;
  rt.kernels.launch(`batch_norm_apply_${suffix(o.x)}`, [bnApplyBlocks(g), g.c], BLOCK, [
    o.x.ptr,
    ptrOrNull(o.residual),
    o.y.ptr,
    o.gamma.ptr,
    o.beta.ptr,
    o.mean.ptr,
    o.variance.ptr,
    o.eps,
    o.relu ? 1 : 0,
    g.n,
    g.c,
    g.hw,
  ]);
}

/** Training-mode forward: batch mean and biased variance out, then the fused apply. */
export function batchNormForwardTraining(rt: CudaRuntime, o: ApplyArgs): void {
  const g = o.geom;
  checkChannels("batchNormForwardTraining", g);
  const s = bnSplits(g);
  const part = rt.scratch(g.c * s * 2 * 4);
  try {
    rt.kernels.launch(`batch_norm_stats_partial_${suffix(o.x)}`, [s, g.c], BLOCK, [
      o.x.ptr,
      part,
      g.n,
      g.c,
      g.hw,
    ]);
    rt.kernels.launch("batch_norm_stats_finish", Math.min(Math.ceil(g.c / BLOCK), 4096), BLOCK, [
      part,
      o.mean.ptr,
      o.variance.ptr,
      g.n,
      g.c,
      g.hw,
      s,
    ]);
  } finally {
    rt.release(part);
  }
  apply(rt, o);
}

/** Inference-mode forward with the given statistics. */
export function batchNormForwardInference(rt: CudaRuntime, o: ApplyArgs): void {
  checkChannels("batchNormForwardInference", o.geom);
  apply(rt, o);
}

/** Options of {@link batchNormBackward}. */
export interface BackwardArgs {
  x: CudaStorage;
  dy: CudaStorage;
  gamma: CudaStorage;
  mean: CudaStorage;
  variance: CudaStorage;
  dx: CudaStorage;
  dgamma: CudaStorage;
  dbeta: CudaStorage;
  geom: BatchNormGeometry;
  eps: number;
  relu?: boolean;
  y?: CudaStorage | null;
  dresidual?: CudaStorage | null;
}

/** The fused backward: dy masked by the forward's ReLU (when `relu`), then BN's gradients. */
export function batchNormBackward(rt: CudaRuntime, o: BackwardArgs): void {
  const g = o.geom;
  checkChannels("batchNormBackward", g);
  const s = bnSplits(g);
  const t = suffix(o.x);
  const y = o.relu ? ptrOrNull(o.y) : 0n;
  const part = rt.scratch(g.c * s * 2 * 4);
  try {
    rt.kernels.launch(`batch_norm_backward_partial_${t}`, [s, g.c], BLOCK, [
      o.x.ptr,
      o.dy.ptr,
      y,
      o.mean.ptr,
      o.variance.ptr,
      o.eps,
      part,
      g.n,
      g.c,
      g.hw,
    ]);
    rt.kernels.launch("batch_norm_backward_finish", Math.min(Math.ceil(g.c / BLOCK), 4096), BLOCK, [
      part,
      o.dgamma.ptr,
      o.dbeta.ptr,
      g.c,
      s,
    ]);
  } finally {
    rt.release(part);
  }
  rt.kernels.launch(`batch_norm_backward_apply_${t}`, [bnApplyBlocks(g), g.c], BLOCK, [
    o.x.ptr,
    o.dy.ptr,
    y,
    o.gamma.ptr,
    o.mean.ptr,
    o.variance.ptr,
    o.dgamma.ptr,
    o.dbeta.ptr,
    o.eps,
    o.dx.ptr,
    ptrOrNull(o.dresidual),
    g.n,
    g.c,
    g.hw,
  ]);
}
