/**
 * 2-D convolution without bias (groups 1, no dilation), PyTorch's `F.conv2d` on NCHW tensors.
 *
 * @module
 */

import { type Conv2dGeometry, outputSize } from "../backend/backend.ts";
import { record } from "../tensor/autodiff.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { checkInt, checkRank, checkSameContext, fmtShape } from "./validate.ts";

/** Options of {@link conv2d}. */
export interface Conv2dOptions {
  /** Step between windows along both axes (default 1). */
  stride?: number;
  /** Zero padding added on every side (default 0). */
  padding?: number;
}

/** Validates the shapes and options of a convolution and derives its geometry. */
export function conv2dGeometry(
  x: Tensor,
  w: Tensor,
  opts: Conv2dOptions = {},
): Conv2dGeometry {
  const stride = opts.stride ?? 1;
  const padding = opts.padding ?? 0;
  checkRank("conv2d", "input x", x, 4);
  checkRank("conv2d", "weight w", w, 4);
  checkSameContext("conv2d", [x, w]);
  checkInt("conv2d", "stride", stride, 1);
  checkInt("conv2d", "padding", padding, 0);
  const [n, c, h, wd] = x.shape;
  const [k, wc, r, s] = w.shape;
  if (wc !== c) {
    throw new RangeError(
      `Cannot run conv2d: input has ${c} channels but the weight ${
        fmtShape(w.shape)
      } expects ${wc}`,
    );
  }
  if (r < 1 || s < 1 || k < 1) {
    throw new RangeError(
      `Cannot run conv2d: the weight ${fmtShape(w.shape)} has an empty dimension`,
    );
  }
  if (h + 2 * padding < r || wd + 2 * padding < s) {
    throw new RangeError(
      `Cannot run conv2d: the ${r}x${s} kernel does not fit the ${h}x${wd} input with padding ` +
        `${padding}`,
    );
  }
  return {
    n,
    c,
    h,
    w: wd,
    k,
    r,
    s,
    strideH: stride,
    strideW: stride,
    padH: padding,
    padW: padding,
    outH: outputSize(h, r, stride, padding),
    outW: outputSize(wd, s, stride, padding),
  };
}

/**
 * Convolves `x` [N, C, H, W] with `w` [K, C, R, S] (cross-correlation, as PyTorch), giving
 * [N, K, outH, outW]. Differentiable in both `x` and `w`.
 */
export function conv2d(x: Tensor, w: Tensor, opts: Conv2dOptions = {}): Tensor {
  const geom = conv2dGeometry(x, w, opts);
  const ctx = x.ctx;
  const y = ctx.empty([geom.n, geom.k, geom.outH, geom.outW]);
  x.backend.conv2dForward({ x: x.storage, w: w.storage, y: y.storage, geom });
  return record(y, [x, w], (dy) => {
    let dx: Tensor | null = null;
    let dw: Tensor | null = null;
    if (x.requiresGrad) {
      dx = ctx.empty(x.shape);
      x.backend.conv2dBackwardData({ dy: dy.storage, w: w.storage, dx: dx.storage, geom });
    }
    if (w.requiresGrad) {
      dw = ctx.empty(w.shape);
      x.backend.conv2dBackwardWeights({ x: x.storage, dy: dy.storage, dw: dw.storage, geom });
    }
    return [dx, dw];
  });
}
