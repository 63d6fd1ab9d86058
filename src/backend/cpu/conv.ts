/**
 * Convolution kernels of the cpu backend on oneDNN: forward, backward-data, backward-weights, in f32
 * or bf16 (all tensors of one call share the dtype; bf16 accumulates in f32 and rounds the result
 * to nearest even: `jit_bf16:avx512_core_bf16` where the CPU has AVX512_BF16). Every tensor is
 * described with `format_tag_any`, so oneDNN picks its fastest layouts (nChw16c activations,
 * blocked weights, AVX-512 JIT kernels); inputs are reordered to them in place and outputs keep
 * them, so consecutive layers pass blocked data without conversion.
 *
 * @module
 */

import {
  AlgKind,
  Arg,
  checkStatus,
  DataType,
  DNNL_SIZEOF,
  PropKind,
} from "../../../ffi/dnnl/mod.ts";
import type { Conv2dGeometry } from "../backend.ts";
import { dimsT } from "./memdesc.ts";
import type { Primitive } from "./primitive.ts";
import type { CpuRuntime, PrimitiveSpec } from "./runtime.ts";
import { CpuStorage } from "./storage.ts";
import { cast } from "./cast.ts";

function geomKey(g: Conv2dGeometry, dataType: number): string {
  return `${g.n},${g.c},${g.h},${g.w},${g.k},${g.r},${g.s},${g.strideH},${g.strideW},${g.padH},${g.padW}:${dataType}`;
}

interface ConvDescs {
  src: Uint8Array;
  weights: Uint8Array;
  dst: Uint8Array;
  strides: BigInt64Array;
  padL: BigInt64Array;
  padR: BigInt64Array;
}

function descs(rt: CpuRuntime, g: Conv2dGeometry, dt: number): ConvDescs {
  // Right padding so that oneDNN's output size equals the contract's floor formula.
  const padRH = (g.outH - 1) * g.strideH + g.r - g.h - g.padH;
  const padRW = (g.outW - 1) * g.strideW + g.s - g.w - g.padW;
  return {
    src: rt.mds.any([g.n, g.c, g.h, g.w], dt),
    weights: rt.mds.any([g.k, g.c, g.r, g.s], dt),
    dst: rt.mds.any([g.n, g.k, g.outH, g.outW], dt),
    strides: dimsT([g.strideH, g.strideW]),
    padL: dimsT([g.padH, g.padW]),
    padR: dimsT([padRH, padRW]),
  };
}

/** Which pass of a convolution a primitive computes. */
type Pass = "fwd" | "bwd_data" | "bwd_weights";

/** Channels (in and out) from which Winograd beats the direct kernels, per pass (1 core, 2.6.3). */
const WINOGRAD_MIN_CHANNELS: Readonly<Record<Pass, number>> = {
  // Forward and backward-data: faster from 16 channels (1.1x at 16x28x28, 2x at 64x28x28); the
  // 1- and 3-channel stems are 4-10x slower in Winograd.
  fwd: 16,
  bwd_data: 16,
  // Backward-weights: 8 % slower at 16 and 32 channels, 1.3-3.5x faster from 64.
  bwd_weights: 64,
};

/**
 * The algorithm of one pass of a convolution: Winograd for f32 3x3 stride-1 convolutions with
 * enough channels when the backend's tuning allows it, else direct. A pure function of the
 * geometry and dtype (measurements behind the thresholds: docs/benchmarks.md, "Convolutions
 * alone").
 */
export function convAlgorithm(rt: CpuRuntime, g: Conv2dGeometry, dt: number, pass: Pass): number {
  const wino = rt.tuning.winograd && dt === DataType.f32 && g.r === 3 && g.s === 3 &&
    g.strideH === 1 && g.strideW === 1 && g.padH <= 1 && g.padW <= 1 &&
    Math.min(g.c, g.k) >= WINOGRAD_MIN_CHANNELS[pass];
  return wino ? AlgKind.convolutionWinograd : AlgKind.convolutionDirect;
}

/**
 * A primitive built by `make(alg)`; where oneDNN has no Winograd implementation for the shape
 * (`dnnl_unimplemented`), the direct algorithm instead.
 */
function withFallback(
  alg: number,
  make: (alg: number) => PrimitiveSpec,
): PrimitiveSpec {
  if (alg === AlgKind.convolutionDirect) return make(alg);
  try {
    return make(alg);
  } catch (e) {
    if (!(e instanceof Error) || !e.message.includes("dnnl_unimplemented")) throw e;
    return make(AlgKind.convolutionDirect);
  }
}

function algName(alg: number): string {
  return alg === AlgKind.convolutionWinograd ? "winograd" : "direct";
}

function forwardPrimitive(rt: CpuRuntime, g: Conv2dGeometry, dt: number, alg: number): Primitive {
  const key = `conv.fwd:${algName(alg)}:${geomKey(g, dt)}`;
  return rt.primitive(key, "convolution forward", () =>
    withFallback(alg, (a) => {
      const d = descs(rt, g, dt);
      const op = new Uint8Array(DNNL_SIZEOF.convolutionDesc);
      checkStatus(
        rt.sym.dnnl_convolution_forward_desc_init(
          op,
          PropKind.forwardTraining,
          a,
          d.src,
          d.weights,
          null,
          d.dst,
          d.strides,
          d.padL,
          d.padR,
        ),
        `describe convolution [${geomKey(g, dt)}]`,
      );
      return { pd: rt.createPd(op, "convolution"), args: [Arg.src, Arg.weights, Arg.dst] };
    }));
}

/** y = conv(x, w). */
export function conv2dForward(
  rt: CpuRuntime,
  x: CpuStorage,
  w: CpuStorage,
  y: CpuStorage,
  g: Conv2dGeometry,
): void {
  const dt = x.dataType;
  const p = forwardPrimitive(rt, g, dt, convAlgorithm(rt, g, dt, "fwd"));
  rt.run(p, [x, w], [y]);
}

/**
 * The primitive of a backward pass (`bwd_data` or `bwd_weights`), hinted by the forward primitive
 * of the same algorithm; `describe` fills the pass's oneDNN operation descriptor.
 */
function backwardPrimitive(
  rt: CpuRuntime,
  g: Conv2dGeometry,
  dt: number,
  pass: "bwd_data" | "bwd_weights",
  describe: (op: Uint8Array, alg: number, d: ConvDescs) => number,
  args: number[],
): Primitive {
  const key = geomKey(g, dt);
  const alg = convAlgorithm(rt, g, dt, pass);
  const what = pass === "bwd_data" ? "convolution backward-data" : "convolution backward-weights";
  return rt.primitive(`conv.${pass}:${algName(alg)}:${key}`, what, () =>
    withFallback(alg, (a) => {
      const hint = forwardPrimitive(rt, g, dt, a).pd;
      const op = new Uint8Array(DNNL_SIZEOF.convolutionDesc);
      checkStatus(describe(op, a, descs(rt, g, dt)), `describe ${what} [${key}]`);
      return { pd: rt.createPd(op, what, hint), args };
    }));
}

/** dx = gradient of the convolution with respect to its input. */
export function conv2dBackwardData(
  rt: CpuRuntime,
  dy: CpuStorage,
  w: CpuStorage,
  dx: CpuStorage,
  g: Conv2dGeometry,
): void {
  const p = backwardPrimitive(
    rt,
    g,
    dy.dataType,
    "bwd_data",
    (op, a, d) =>
      rt.sym.dnnl_convolution_backward_data_desc_init(
        op,
        a,
        d.src,
        d.weights,
        d.dst,
        d.strides,
        d.padL,
        d.padR,
      ),
    [Arg.diffDst, Arg.weights, Arg.diffSrc],
  );
  rt.run(p, [dy, w], [dx]);
}

/** dw = gradient of the convolution with respect to its weights. */
export function conv2dBackwardWeights(
  rt: CpuRuntime,
  x: CpuStorage,
  dy: CpuStorage,
  dw: CpuStorage,
  g: Conv2dGeometry,
): void {
  if (x.dataType === DataType.bf16 && hasPaddingOnlyTaps(g)) {
    bf16ViaF32(rt, x, dy, dw, g);
    return;
  }
  const p = backwardPrimitive(
    rt,
    g,
    x.dataType,
    "bwd_weights",
    (op, a, d) =>
      rt.sym.dnnl_convolution_backward_weights_desc_init(
        op,
        a,
        d.src,
        d.weights,
        null,
        d.dst,
        d.strides,
        d.padL,
        d.padR,
      ),
    [Arg.src, Arg.diffDst, Arg.diffWeights],
  );
  rt.run(p, [x, dy], [dw]);
}

/**
 * Whether some kernel row or column meets only padding at every output position (its weight
 * gradient is exactly 0).
 */
function hasPaddingOnlyTaps(g: Conv2dGeometry): boolean {
  const meetsData = (tap: number, out: number, stride: number, pad: number, size: number) => {
    for (let o = 0; o < out; o++) {
      const at = o * stride - pad + tap;
      if (at >= 0 && at < size) return true;
    }
    return false;
  };
  for (let i = 0; i < g.r; i++) if (!meetsData(i, g.outH, g.strideH, g.padH, g.h)) return true;
  for (let j = 0; j < g.s; j++) if (!meetsData(j, g.outW, g.strideW, g.padW, g.w)) return true;
  return false;
}

/**
 * bf16 backward-weights as the f32 primitive on widened copies, rounded once (the contract's "f32
 * accumulation"), for geometries with taps that meet only padding: there oneDNN 2.6.3's bf16
 * kernel returns garbage for those taps' weights instead of 0 (NaN or 1e-30 from all-zero inputs,
 * in about one run of eight; found by the conformance suite, e.g. n1 c32 h3 w1 k3 r2 s2 stride 2
 * pad 1, whose first kernel column only meets padding).
 */
function bf16ViaF32(
  rt: CpuRuntime,
  x: CpuStorage,
  dy: CpuStorage,
  dw: CpuStorage,
  g: Conv2dGeometry,
): void {
  const counts = [g.n * g.c * g.h * g.w, g.n * g.k * g.outH * g.outW, g.k * g.c * g.r * g.s];
  const [xf, dyf, dwf] = counts.map((n) => new CpuStorage(x.backend, "f32", n));
  try {
    cast(rt, x, xf, counts[0]);
    cast(rt, dy, dyf, counts[1]);
    conv2dBackwardWeights(rt, xf, dyf, dwf, g);
    cast(rt, dwf, dw, counts[2]);
  } finally {
    for (const t of [xf, dyf, dwf]) rt.release(t);
  }
}
