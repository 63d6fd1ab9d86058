/**
 * Naive f64 oracles of the linear kernels, written from the definitions and independently of the
 * reference backend: convolution (forward as the sum over channels and taps of a zero-padded
 * input; backward data gathered per input pixel from the output positions that read it; backward
 * weights summed per tap), gemm with explicit op() indexing, max pooling over explicit windows and
 * global average pooling. Every function returns a new Float64Array.
 *
 * @module
 */

import type { Conv2dGeometry, Pool2dGeometry } from "../../src/backend/backend.ts";

type Vals = ArrayLike<number>;

/** x[n, c, i, j] of an NCHW array, 0 outside the image (zero padding). */
function padded(
  x: Vals,
  g: { c: number; h: number; w: number },
  n: number,
  c: number,
  i: number,
  j: number,
) {
  if (i < 0 || i >= g.h || j < 0 || j >= g.w) return 0;
  return x[((n * g.c + c) * g.h + i) * g.w + j];
}

/** y[n, k, oh, ow] = sum over c, r, s of xpad[n, c, oh sh - ph + r, ow sw - pw + s] w[k, c, r, s]. */
export function naiveConvForward(x: Vals, w: Vals, g: Conv2dGeometry): Float64Array {
  const y = new Float64Array(g.n * g.k * g.outH * g.outW);
  let at = 0;
  for (let n = 0; n < g.n; n++) {
    for (let k = 0; k < g.k; k++) {
      for (let oh = 0; oh < g.outH; oh++) {
        for (let ow = 0; ow < g.outW; ow++) {
          let acc = 0;
          for (let c = 0; c < g.c; c++) {
            for (let r = 0; r < g.r; r++) {
              for (let s = 0; s < g.s; s++) {
                const xv = padded(
                  x,
                  g,
                  n,
                  c,
                  oh * g.strideH - g.padH + r,
                  ow * g.strideW - g.padW + s,
                );
                acc += xv * w[((k * g.c + c) * g.r + r) * g.s + s];
              }
            }
          }
          y[at++] = acc;
        }
      }
    }
  }
  return y;
}

/**
 * dx[n, c, i, j] = sum over k, r, s of dy[n, k, oh, ow] w[k, c, r, s] for the output positions
 * with oh sh - ph + r = i and ow sw - pw + s = j (gathered per input pixel).
 */
export function naiveConvBackwardData(dy: Vals, w: Vals, g: Conv2dGeometry): Float64Array {
  const dx = new Float64Array(g.n * g.c * g.h * g.w);
  let at = 0;
  for (let n = 0; n < g.n; n++) {
    for (let c = 0; c < g.c; c++) {
      for (let i = 0; i < g.h; i++) {
        for (let j = 0; j < g.w; j++) {
          let acc = 0;
          for (let k = 0; k < g.k; k++) {
            for (let r = 0; r < g.r; r++) {
              for (let s = 0; s < g.s; s++) {
                const ohs = i + g.padH - r, ows = j + g.padW - s;
                if (ohs % g.strideH !== 0 || ows % g.strideW !== 0) continue;
                const oh = ohs / g.strideH, ow = ows / g.strideW;
                if (oh < 0 || oh >= g.outH || ow < 0 || ow >= g.outW) continue;
                acc += dy[((n * g.k + k) * g.outH + oh) * g.outW + ow] *
                  w[((k * g.c + c) * g.r + r) * g.s + s];
              }
            }
          }
          dx[at++] = acc;
        }
      }
    }
  }
  return dx;
}

/** dw[k, c, r, s] = sum over n, oh, ow of xpad[n, c, oh sh - ph + r, ow sw - pw + s] dy[n, k, oh, ow]. */
export function naiveConvBackwardWeights(x: Vals, dy: Vals, g: Conv2dGeometry): Float64Array {
  const dw = new Float64Array(g.k * g.c * g.r * g.s);
  let at = 0;
  for (let k = 0; k < g.k; k++) {
    for (let c = 0; c < g.c; c++) {
      for (let r = 0; r < g.r; r++) {
        for (let s = 0; s < g.s; s++) {
          let acc = 0;
          for (let n = 0; n < g.n; n++) {
            for (let oh = 0; oh < g.outH; oh++) {
              for (let ow = 0; ow < g.outW; ow++) {
                const xv = padded(
                  x,
                  g,
                  n,
                  c,
                  oh * g.strideH - g.padH + r,
                  ow * g.strideW - g.padW + s,
                );
                acc += xv * dy[((n * g.k + k) * g.outH + oh) * g.outW + ow];
              }
            }
          }
          dw[at++] = acc;
        }
      }
    }
  }
  return dw;
}

/** Options of {@link naiveGemm}. */
export interface GemmDims {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
}

/** c = alpha op(a) op(b) + beta c, with op(a)[i, p] = transA ? a[p, i] : a[i, p] (row-major). */
export function naiveGemm(a: Vals, b: Vals, c: Vals, d: GemmDims): Float64Array {
  const opA = (i: number, p: number) => (d.transA ? a[p * d.m + i] : a[i * d.k + p]);
  const opB = (p: number, j: number) => (d.transB ? b[j * d.k + p] : b[p * d.n + j]);
  const out = new Float64Array(d.m * d.n);
  for (let i = 0; i < d.m; i++) {
    for (let j = 0; j < d.n; j++) {
      let acc = 0;
      for (let p = 0; p < d.k; p++) acc += opA(i, p) * opB(p, j);
      out[i * d.n + j] = d.alpha * acc + (d.beta === 0 ? 0 : d.beta * c[i * d.n + j]);
    }
  }
  return out;
}

/**
 * Max pooling by its definition: for each window the first (row-major) position holding its
 * maximum, padding excluded, any NaN taking over (PyTorch's CPU rule: `val > max || isnan(val)`);
 * y and, for `dy`, dx (dy summed into each window's argmax).
 */
export function naiveMaxPool(
  x: Vals,
  dy: Vals,
  g: Pool2dGeometry,
): { y: Float64Array; dx: Float64Array } {
  const y = new Float64Array(g.n * g.c * g.outH * g.outW);
  const dx = new Float64Array(g.n * g.c * g.h * g.w);
  for (let plane = 0; plane < g.n * g.c; plane++) {
    for (let oh = 0; oh < g.outH; oh++) {
      for (let ow = 0; ow < g.outW; ow++) {
        let best = -Infinity, arg = -1;
        for (let i = oh * g.strideH - g.padH; i < oh * g.strideH - g.padH + g.kernelH; i++) {
          for (let j = ow * g.strideW - g.padW; j < ow * g.strideW - g.padW + g.kernelW; j++) {
            if (i < 0 || i >= g.h || j < 0 || j >= g.w) continue;
            const at = (plane * g.h + i) * g.w + j;
            if (arg === -1 || Number.isNaN(x[at]) || x[at] > best) [best, arg] = [x[at], at];
          }
        }
        const o = (plane * g.outH + oh) * g.outW + ow;
        y[o] = best;
        if (arg >= 0) dx[arg] += dy[o];
      }
    }
  }
  return { y, dx };
}

/** Global average pooling y[p] = mean of plane p, and its backward dx = dy[p] / hw. */
export function naiveGlobalAvgPool(
  x: Vals,
  dy: Vals,
  planes: number,
  hw: number,
): { y: Float64Array; dx: Float64Array } {
  const y = new Float64Array(planes), dx = new Float64Array(planes * hw);
  for (let p = 0; p < planes; p++) {
    let acc = 0;
    for (let i = 0; i < hw; i++) acc += x[p * hw + i];
    y[p] = acc / hw;
    for (let i = 0; i < hw; i++) dx[p * hw + i] = dy[p] / hw;
  }
  return { y, dx };
}
