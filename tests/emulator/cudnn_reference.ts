/**
 * Naive convolution loops (f64) the cuDNN stand-in is checked against, test data helpers, and the
 * cuDNN symbols the tests call.
 *
 * @module
 */

/** A 2-D convolution: x (n, c, h, w), filter (k, c, r, s), padding and strides (height, width). */
export interface Shape {
  n: number;
  c: number;
  h: number;
  w: number;
  k: number;
  r: number;
  s: number;
  pad: [number, number];
  stride: [number, number];
  /** CUDNN_CONVOLUTION (the filter flipped) instead of cross-correlation. */
  flip: boolean;
}

/** Small multiples of 1/4 in [-2, 2] (exact in f32 and bf16, products and short sums too). */
export function quarters(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => (((i * 7 + seed * 13) % 17) - 8) / 4);
}

/** f32 -> bf16 bits, round to nearest even. */
export function toBf16Bits(xs: ArrayLike<number>): Uint16Array {
  return Uint16Array.from(Array.from(xs), (x) => {
    const u = new Uint32Array(new Float32Array([x]).buffer)[0];
    return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
  });
}

/** The three directions of one convolution, NCHW / KCRS, in f64. */
export function naiveConv(sh: Shape, p: number, q: number) {
  const { n, c, h, w, k, r, s } = sh;
  const xi = (b: number, ci: number, y: number, x: number) => ((b * c + ci) * h + y) * w + x;
  const wi = (ki: number, ci: number, ry: number, sx: number) =>
    ((ki * c + ci) * r + (sh.flip ? r - 1 - ry : ry)) * s + (sh.flip ? s - 1 - sx : sx);
  const yi = (b: number, ki: number, py: number, qx: number) => ((b * k + ki) * p + py) * q + qx;
  /** Calls f for every (input, filter, output) index triple the convolution multiplies. */
  const each = (f: (x: number, wt: number, y: number) => void) => {
    for (let b = 0; b < n; b++) {
      for (let ki = 0; ki < k; ki++) {
        for (let py = 0; py < p; py++) {
          for (let qx = 0; qx < q; qx++) {
            for (let ci = 0; ci < c; ci++) {
              for (let ry = 0; ry < r; ry++) {
                const iy = py * sh.stride[0] - sh.pad[0] + ry;
                if (iy < 0 || iy >= h) continue;
                for (let sx = 0; sx < s; sx++) {
                  const ix = qx * sh.stride[1] - sh.pad[1] + sx;
                  if (ix < 0 || ix >= w) continue;
                  f(xi(b, ci, iy, ix), wi(ki, ci, ry, sx), yi(b, ki, py, qx));
                }
              }
            }
          }
        }
      }
    }
  };
  return {
    forward(x: ArrayLike<number>, wt: ArrayLike<number>): Float64Array {
      const y = new Float64Array(n * k * p * q);
      each((a, b, o) => (y[o] += x[a] * wt[b]));
      return y;
    },
    backwardData(wt: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
      const dx = new Float64Array(n * c * h * w);
      each((a, b, o) => (dx[a] += dy[o] * wt[b]));
      return dx;
    },
    backwardFilter(x: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
      const dw = new Float64Array(k * c * r * s);
      each((a, b, o) => (dw[b] += dy[o] * x[a]));
      return dw;
    },
  };
}

const P = "pointer", I = "i32", B = "buffer", U = "u64", Z = "usize";
/** The cuDNN functions the stand-in tests call. */
export const CUDNN_TEST_SYMBOLS = {
  cudnnCreate: { parameters: [B], result: I },
  cudnnDestroy: { parameters: [P], result: I },
  cudnnSetStream: { parameters: [P, P], result: I },
  cudnnGetLastErrorString: { parameters: [B, Z], result: "void" },
  cudnnCreateTensorDescriptor: { parameters: [B], result: I },
  cudnnSetTensor4dDescriptor: { parameters: [P, I, I, I, I, I, I], result: I },
  cudnnCreateFilterDescriptor: { parameters: [B], result: I },
  cudnnSetFilter4dDescriptor: { parameters: [P, I, I, I, I, I, I], result: I },
  cudnnCreateConvolutionDescriptor: { parameters: [B], result: I },
  cudnnSetConvolution2dDescriptor: { parameters: [P, I, I, I, I, I, I, I, I], result: I },
  cudnnSetConvolutionMathType: { parameters: [P, I], result: I },
  cudnnSetConvolutionGroupCount: { parameters: [P, I], result: I },
  cudnnGetConvolution2dForwardOutputDim: { parameters: [P, P, P, B, B, B, B], result: I },
  cudnnGetConvolutionForwardAlgorithm_v7: { parameters: [P, P, P, P, P, I, B, B], result: I },
  cudnnFindConvolutionForwardAlgorithmEx: {
    parameters: [P, P, U, P, U, P, P, U, I, B, B, U, Z],
    result: I,
  },
  cudnnGetConvolutionForwardWorkspaceSize: { parameters: [P, P, P, P, P, I, B], result: I },
  cudnnGetConvolutionBackwardDataWorkspaceSize: { parameters: [P, P, P, P, P, I, B], result: I },
  cudnnGetConvolutionBackwardFilterWorkspaceSize: { parameters: [P, P, P, P, P, I, B], result: I },
  cudnnConvolutionForward: { parameters: [P, B, P, U, P, U, P, I, U, Z, B, P, U], result: I },
  cudnnConvolutionBackwardData: { parameters: [P, B, P, U, P, U, P, I, U, Z, B, P, U], result: I },
  cudnnConvolutionBackwardFilter: {
    parameters: [P, B, P, U, P, U, P, I, U, Z, B, P, U],
    result: I,
  },
} as const satisfies Deno.ForeignLibraryInterface;
