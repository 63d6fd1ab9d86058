/**
 * The channel bookkeeping of the official ReSSL `SplitBatchNorm` (s splits):
 * `x.view(-1, C*s, H, W)` puts image `n = q*s + j` into row q, channels j*C..j*C+C-1, so a plain
 * batch norm over C*s channels computes statistics per split j (the images with n % s == j).
 * The affine parameters are repeated s times along the channels, and per-split statistics are
 * averaged back to C channels.
 *
 * @module
 */

import { record } from "../tensor/autodiff.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** `v` [C] repeated `s` times: [s*C] (torch `v.repeat(s)`); differentiable (gradient: sum). */
export function repeatChannels(v: Tensor, s: number): Tensor {
  const c = v.shape[0];
  const ctx = v.ctx;
  const be = v.backend;
  const out = ctx.empty([s * c]);
  for (let j = 0; j < s; j++) {
    be.copy({ src: v.storage, dst: out.storage, srcOffset: 0, dstOffset: j * c, length: c });
  }
  return record(out, [v], (dy) => {
    const dv = ctx.empty([c]);
    be.sumRows({ x: dy.storage, out: dv.storage, rows: s, cols: c });
    return [dv];
  });
}

/**
 * alpha * (sum over the s splits of `stats` [s*C]) + beta * `prev` [C] as a new [C] tensor
 * (no autodiff node): the running-stat update averaged over splits.
 */
export function blendSplitStats(
  stats: Tensor,
  prev: Tensor,
  s: number,
  alpha: number,
  beta: number,
): Tensor {
  const c = prev.shape[0];
  const ctx = prev.ctx;
  const be = prev.backend;
  let summed = stats;
  if (s > 1) {
    summed = ctx.empty([c]);
    be.sumRows({ x: stats.storage, out: summed.storage, rows: s, cols: c });
  }
  const out = ctx.empty([c]);
  be.axpby({ x: summed.storage, y: prev.storage, out: out.storage, alpha, beta, n: c });
  if (summed !== stats) summed.dispose();
  return out;
}
