/**
 * Pooling over NCHW images: `maxPool2d` (square windows, PyTorch semantics) and `globalAvgPool`.
 *
 * @module
 */

import { outputSize, type Pool2dGeometry } from "../backend/backend.ts";
import { record } from "../tensor/autodiff.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { checkInt, checkRank } from "./validate.ts";

/** Options of {@link maxPool2d}. */
export interface MaxPool2dOptions {
  /** Window size (default 3). */
  kernel?: number;
  /** Step between windows (default 2). */
  stride?: number;
  /** Implicit -inf padding on every side (default 1); at most half the kernel. */
  padding?: number;
}

/** Validates a max pooling and derives its geometry. */
export function maxPool2dGeometry(x: Tensor, opts: MaxPool2dOptions = {}): Pool2dGeometry {
  const kernel = opts.kernel ?? 3;
  const stride = opts.stride ?? 2;
  const padding = opts.padding ?? 1;
  checkRank("maxPool2d", "input x", x, 4);
  checkInt("maxPool2d", "kernel", kernel, 1);
  checkInt("maxPool2d", "stride", stride, 1);
  checkInt("maxPool2d", "padding", padding, 0);
  if (2 * padding > kernel) {
    throw new RangeError(
      `Cannot run maxPool2d: padding ${padding} is more than half the kernel ${kernel} ` +
        `(some windows would hold only padding)`,
    );
  }
  const [n, c, h, w] = x.shape;
  if (h + 2 * padding < kernel || w + 2 * padding < kernel) {
    throw new RangeError(
      `Cannot run maxPool2d: the ${kernel}x${kernel} window does not fit the ${h}x${w} input ` +
        `with padding ${padding}`,
    );
  }
  return {
    n,
    c,
    h,
    w,
    kernelH: kernel,
    kernelW: kernel,
    strideH: stride,
    strideW: stride,
    padH: padding,
    padW: padding,
    outH: outputSize(h, kernel, stride, padding),
    outW: outputSize(w, kernel, stride, padding),
  };
}

/**
 * Max pooling of `x` [N, C, H, W] with square windows; padded positions never win. The gradient
 * goes to the first maximum of each window (PyTorch's rule for ties).
 */
export function maxPool2d(x: Tensor, opts: MaxPool2dOptions = {}): Tensor {
  const geom = maxPool2dGeometry(x, opts);
  const ctx = x.ctx;
  const y = ctx.empty([geom.n, geom.c, geom.outH, geom.outW]);
  x.backend.maxPool2dForward({ x: x.storage, y: y.storage, geom });
  return record(y, [x], (dy) => {
    const dx = ctx.empty(x.shape);
    x.backend.maxPool2dBackward({ x: x.storage, dy: dy.storage, dx: dx.storage, geom });
    return [dx];
  });
}

/** Mean over the pixels of each channel: `x` [N, C, H, W] gives [N, C]. */
export function globalAvgPool(x: Tensor): Tensor {
  checkRank("globalAvgPool", "input x", x, 4);
  const [n, c, h, w] = x.shape;
  const hw = h * w;
  if (hw === 0) {
    throw new RangeError(`Cannot run globalAvgPool: the input has no pixels (${h}x${w})`);
  }
  const ctx = x.ctx;
  const y = ctx.empty([n, c]);
  x.backend.globalAvgPool({ x: x.storage, y: y.storage, n, c, hw });
  return record(y, [x], (dy) => {
    const dx = ctx.empty(x.shape);
    x.backend.globalAvgPoolBackward({ dy: dy.storage, dx: dx.storage, n, c, hw });
    return [dx];
  });
}
