/**
 * Naive convolution loops (f64) the cuDNN stand-in is checked against, test data helpers, the
 * cuDNN symbols the tests call and a set-up that makes descriptors for a shape.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Emu, LIB_DIR } from "./emu_helpers.ts";

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

/** cuDNN enum values the tests use. */
export const FLOAT = 0, BF16 = 9, NCHW = 0, NHWC = 1, FMA_MATH = 3, TENSOR_OP = 1;
export const BAD_PARAM = 2000, NOT_SUPPORTED = 3000;

/** A cuDNN handle on a new stream of `emu`, and descriptors of a shape for it. */
export function setupCudnn(emu: Emu) {
  const lib = Deno.dlopen(join(LIB_DIR, "libcudnn.so.9"), CUDNN_TEST_SYMBOLS);
  const s = lib.symbols;
  const out = new BigUint64Array(1);
  const make = (f: (o: BigUint64Array) => number) => {
    assert.equal(f(out), 0);
    return Deno.UnsafePointer.create(out[0]);
  };
  const h = make(s.cudnnCreate);
  const stream = emu.stream();
  assert.equal(s.cudnnSetStream(h, stream), 0);
  const descs = (sh: Shape, dt: number, fmt = NCHW, math = FMA_MATH) => {
    const x = make(s.cudnnCreateTensorDescriptor), y = make(s.cudnnCreateTensorDescriptor);
    const w = make(s.cudnnCreateFilterDescriptor), c = make(s.cudnnCreateConvolutionDescriptor);
    assert.equal(s.cudnnSetTensor4dDescriptor(x, fmt, dt, sh.n, sh.c, sh.h, sh.w), 0);
    assert.equal(s.cudnnSetFilter4dDescriptor(w, dt, fmt, sh.k, sh.c, sh.r, sh.s), 0);
    assert.equal(
      s.cudnnSetConvolution2dDescriptor(
        c,
        sh.pad[0],
        sh.pad[1],
        sh.stride[0],
        sh.stride[1],
        1,
        1,
        sh.flip ? 0 : 1,
        FLOAT,
      ),
      0,
    );
    assert.equal(s.cudnnSetConvolutionMathType(c, math), 0);
    const o = [new Int32Array(1), new Int32Array(1), new Int32Array(1), new Int32Array(1)];
    assert.equal(s.cudnnGetConvolution2dForwardOutputDim(c, x, w, o[0], o[1], o[2], o[3]), 0);
    assert.equal(s.cudnnSetTensor4dDescriptor(y, fmt, dt, o[0][0], o[1][0], o[2][0], o[3][0]), 0);
    return { x, w, c, y, p: o[2][0], q: o[3][0] };
  };
  const sync = () => emu.ok(emu.s.cuStreamSynchronize(stream), "sync");
  const close = () => {
    s.cudnnDestroy(h);
    lib.close();
  };
  return { s, h, descs, sync, close };
}

/** Two shapes: same-size 3x3 cross-correlation; strided, padded, non-square convolution. */
export const SHAPES: Shape[] = [
  { n: 2, c: 3, h: 7, w: 6, k: 4, r: 3, s: 3, pad: [1, 1], stride: [1, 1], flip: false },
  { n: 1, c: 2, h: 9, w: 8, k: 3, r: 2, s: 3, pad: [0, 2], stride: [2, 3], flip: true },
];
