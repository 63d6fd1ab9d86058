/**
 * The SyncBN kernels of the cuda backend (`batch_norm.cu`): this process's statistics and
 * backward sums through the same split reductions as the fused batch norm (`norm.ts`), written as
 * one [first half | second half] block that a communicator gathers; the merge of gathered
 * statistics and the backward apply from gathered sums are their own kernels. Everything stays on
 * the stream: no host synchronisation.
 *
 * @module
 */

import type { Opts } from "../backend.ts";
import { BLOCK } from "./kernel_image.ts";
import { bnApplyBlocks, bnSplits } from "./norm.ts";
import type { CudaRuntime } from "./runtime.ts";
import { cu, ptrOrNull } from "./storage.ts";

/** Largest grid y (channels of one launch). */
const MAX_GRID_Y = 65535;

function checkChannels(kernel: string, c: number): void {
  if (c > MAX_GRID_Y) {
    throw new RangeError(
      `Cannot run ${kernel} on CUDA: ${c} channels exceed one launch's ${MAX_GRID_Y}`,
    );
  }
}

function channelGrid(c: number): number {
  return Math.min(Math.ceil(c / BLOCK), 4096);
}

/** `batchNormStats`: split partials, then the finish into [mean | variance]. */
export function batchNormStats(rt: CudaRuntime, o: Opts<"batchNormStats">): void {
  const g = o.geom;
  checkChannels("batchNormStats", g.c);
  const x = cu(o.x), stats = cu(o.stats);
  const s = bnSplits(g);
  const part = rt.scratch(g.c * s * 2 * 4);
  try {
    const t = x.dtype === "bf16" ? "bf16" : "f32";
    rt.kernels.launch(`batch_norm_stats_partial_${t}`, [s, g.c], BLOCK, [
      x.ptr,
      part,
      g.n,
      g.c,
      g.hw,
    ]);
    rt.kernels.launch("batch_norm_stats_finish", channelGrid(g.c), BLOCK, [
      part,
      stats.ptr,
      stats.at(g.c),
      g.n,
      g.c,
      g.hw,
      s,
    ]);
  } finally {
    rt.release(part);
  }
}

/** `batchNormMergeStats`: one thread per channel. */
export function batchNormMergeStats(rt: CudaRuntime, o: Opts<"batchNormMergeStats">): void {
  rt.kernels.launch("batch_norm_merge_stats", channelGrid(o.c), BLOCK, [
    cu(o.parts).ptr,
    cu(o.mean).ptr,
    cu(o.variance).ptr,
    o.c,
    o.first,
    o.stride,
    o.take,
  ]);
}

/** `batchNormBackwardReduce`: split partials, then the finish into [sum g | sum g xhat]. */
export function batchNormBackwardReduce(rt: CudaRuntime, o: Opts<"batchNormBackwardReduce">): void {
  const g = o.geom;
  checkChannels("batchNormBackwardReduce", g.c);
  const x = cu(o.x), sums = cu(o.sums);
  const s = bnSplits(g);
  const t = x.dtype === "bf16" ? "bf16" : "f32";
  const part = rt.scratch(g.c * s * 2 * 4);
  try {
    rt.kernels.launch(`batch_norm_backward_partial_${t}`, [s, g.c], BLOCK, [
      x.ptr,
      cu(o.dy).ptr,
      o.relu ? ptrOrNull(o.y) : 0n,
      cu(o.mean).ptr,
      cu(o.variance).ptr,
      o.eps,
      part,
      g.n,
      g.c,
      g.hw,
    ]);
    // The finish writes dgamma (sum g xhat) and dbeta (sum g): the block's second and first half.
    rt.kernels.launch("batch_norm_backward_finish", channelGrid(g.c), BLOCK, [
      part,
      sums.at(g.c),
      sums.ptr,
      g.c,
      s,
    ]);
  } finally {
    rt.release(part);
  }
}

/** `batchNormBackwardApply`: dx (and dresidual) from the gathered sums. */
export function batchNormBackwardApply(rt: CudaRuntime, o: Opts<"batchNormBackwardApply">): void {
  const g = o.geom;
  checkChannels("batchNormBackwardApply", g.c);
  const x = cu(o.x);
  const t = x.dtype === "bf16" ? "bf16" : "f32";
  rt.kernels.launch(`batch_norm_backward_apply_sync_${t}`, [bnApplyBlocks(g), g.c], BLOCK, [
    x.ptr,
    cu(o.dy).ptr,
    o.relu ? ptrOrNull(o.y) : 0n,
    cu(o.gamma).ptr,
    cu(o.mean).ptr,
    cu(o.variance).ptr,
    cu(o.sums).ptr,
    o.first,
    o.stride,
    o.take,
    o.count,
    o.eps,
    cu(o.dx).ptr,
    ptrOrNull(o.dresidual),
    g.n,
    g.c,
    g.hw,
  ]);
}
