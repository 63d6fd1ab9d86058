/**
 * Direct 2-D convolution kernels of the reference backend (NCHW, weights [k, c, r, s], no bias,
 * no dilation, groups = 1), with f64 accumulation. For each kernel tap the range of output
 * positions that reads a real (non-padding) input is computed once, so the inner loops carry no
 * bounds checks. f32 or bf16 storages (one dtype per call): bf16 values are read exactly and each
 * f64 result is rounded once on store.
 *
 * @module
 */

import type { Conv2dGeometry, Opts } from "../backend.ts";
import type { OutArray } from "./matrix.ts";
import { readFloat, writeFloat } from "./storage.ts";

/** `conv2dForward` on the storages of a validated call. */
export function conv2dForward(o: Opts<"conv2dForward">): void {
  const x = readFloat(o.x), w = readFloat(o.w);
  writeFloat(o.y, (y) => conv2dForwardKernel(x, w, y, o.geom));
}

/** `conv2dBackwardData` on the storages of a validated call. */
export function conv2dBackwardData(o: Opts<"conv2dBackwardData">): void {
  const dy = readFloat(o.dy), w = readFloat(o.w);
  writeFloat(o.dx, (dx) => conv2dBackwardDataKernel(dy, w, dx, o.geom));
}

/** `conv2dBackwardWeights` on the storages of a validated call. */
export function conv2dBackwardWeights(o: Opts<"conv2dBackwardWeights">): void {
  const x = readFloat(o.x), dy = readFloat(o.dy);
  writeFloat(o.dw, (dw) => conv2dBackwardWeightsKernel(x, dy, dw, o.geom));
}

/**
 * Output positions t in [0, outSize) whose input position t * stride + offset lies in [0, inSize):
 * returns [first, end) (empty when first >= end).
 */
export function validRange(
  offset: number,
  inSize: number,
  stride: number,
  outSize: number,
): [number, number] {
  const first = Math.max(0, Math.ceil(-offset / stride));
  const end = Math.min(outSize, Math.floor((inSize - 1 - offset) / stride) + 1);
  return [first, Math.max(first, end)];
}

/** y[n, k, oh, ow] = sum over c, r, s of x[n, c, oh*sh - ph + r, ow*sw - pw + s] * w[k, c, r, s]. */
export function conv2dForwardKernel(
  x: Float32Array,
  w: Float32Array,
  y: OutArray,
  g: Conv2dGeometry,
): void {
  const { n, c, h, w: width, k, r, s, strideH, strideW, padH, padW, outH, outW } = g;
  const plane = outH * outW;
  const acc = new Float64Array(plane);
  for (let ni = 0; ni < n; ni++) {
    for (let ki = 0; ki < k; ki++) {
      acc.fill(0);
      for (let ci = 0; ci < c; ci++) {
        const xBase = (ni * c + ci) * h * width;
        const wBase = ((ki * c + ci) * r) * s;
        for (let ri = 0; ri < r; ri++) {
          const [oh0, oh1] = validRange(ri - padH, h, strideH, outH);
          for (let si = 0; si < s; si++) {
            const [ow0, ow1] = validRange(si - padW, width, strideW, outW);
            const wv = w[wBase + ri * s + si];
            for (let oh = oh0; oh < oh1; oh++) {
              const xRow = xBase + (oh * strideH - padH + ri) * width - padW + si;
              const aRow = oh * outW;
              for (let ow = ow0; ow < ow1; ow++) acc[aRow + ow] += wv * x[xRow + ow * strideW];
            }
          }
        }
      }
      y.set(acc, (ni * k + ki) * plane);
    }
  }
}

/** dx[n, c, ih, iw] = sum of w[k, c, r, s] * dy[n, k, oh, ow] over taps that read (ih, iw). */
export function conv2dBackwardDataKernel(
  dy: Float32Array,
  w: Float32Array,
  dx: OutArray,
  g: Conv2dGeometry,
): void {
  const { n, c, h, w: width, k, r, s, strideH, strideW, padH, padW, outH, outW } = g;
  const plane = h * width;
  const acc = new Float64Array(plane);
  for (let ni = 0; ni < n; ni++) {
    for (let ci = 0; ci < c; ci++) {
      acc.fill(0);
      for (let ki = 0; ki < k; ki++) {
        const dyBase = (ni * k + ki) * outH * outW;
        const wBase = ((ki * c + ci) * r) * s;
        for (let ri = 0; ri < r; ri++) {
          const [oh0, oh1] = validRange(ri - padH, h, strideH, outH);
          for (let si = 0; si < s; si++) {
            const [ow0, ow1] = validRange(si - padW, width, strideW, outW);
            const wv = w[wBase + ri * s + si];
            for (let oh = oh0; oh < oh1; oh++) {
              const aRow = (oh * strideH - padH + ri) * width - padW + si;
              const dyRow = dyBase + oh * outW;
              for (let ow = ow0; ow < ow1; ow++) acc[aRow + ow * strideW] += wv * dy[dyRow + ow];
            }
          }
        }
      }
      dx.set(acc, (ni * c + ci) * plane);
    }
  }
}

/** dw[k, c, r, s] = sum over n, oh, ow of x[n, c, oh*sh - ph + r, ow*sw - pw + s] * dy[n, k, oh, ow]. */
export function conv2dBackwardWeightsKernel(
  x: Float32Array,
  dy: Float32Array,
  dw: OutArray,
  g: Conv2dGeometry,
): void {
  const { n, c, h, w: width, k, r, s, strideH, strideW, padH, padW, outH, outW } = g;
  for (let ri = 0; ri < r; ri++) {
    const [oh0, oh1] = validRange(ri - padH, h, strideH, outH);
    for (let si = 0; si < s; si++) {
      const [ow0, ow1] = validRange(si - padW, width, strideW, outW);
      for (let ki = 0; ki < k; ki++) {
        for (let ci = 0; ci < c; ci++) {
          let acc = 0;
          for (let ni = 0; ni < n; ni++) {
            const xBase = (ni * c + ci) * h * width;
            const dyBase = (ni * k + ki) * outH * outW;
            for (let oh = oh0; oh < oh1; oh++) {
              const xRow = xBase + (oh * strideH - padH + ri) * width - padW + si;
              const dyRow = dyBase + oh * outW;
              for (let ow = ow0; ow < ow1; ow++) acc += x[xRow + ow * strideW] * dy[dyRow + ow];
            }
          }
          dw[((ki * c + ci) * r + ri) * s + si] = acc;
        }
      }
    }
  }
}
