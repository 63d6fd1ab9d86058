/**
 * Pooling kernels of the cpu backend on oneDNN: max pooling forward/backward and global average
 * pooling forward/backward. Forward pooling keeps the layout of its input (nChw16c after a
 * convolution); backward pooling picks its output layout from its inputs' layouts and shapes only.
 *
 * The Backend contract passes no workspace from max-pool forward to backward, so the backward runs
 * the forward once more in training mode to get oneDNN's argmax workspace (cheap next to a
 * convolution; the stem's max pool is the only one in a ResNet).
 *
 * @module
 */

import {
  AlgKind,
  Arg,
  checkStatus,
  DataType,
  DNNL_SIZEOF,
  FormatTag,
  PropKind,
} from "../../../ffi/dnnl/mod.ts";
import type { Pool2dGeometry } from "../backend.ts";
import { dimsT, type MemDesc } from "./memdesc.ts";
import type { Primitive } from "./primitive.ts";
import type { CpuRuntime } from "./runtime.ts";
import type { CpuStorage } from "./storage.ts";
import { elementwiseThreads } from "./threads.ts";
import { holdsNaN, viaReference } from "./nan.ts";

/** x's own layout when it describes [n, c, h, w], else plain [n, c, h, w]. */
function imageLayout(
  rt: CpuRuntime,
  x: CpuStorage,
  n: number,
  c: number,
  h: number,
  w: number,
): MemDesc {
  const md = x.md;
  if (
    md !== null && md.dims.length === 4 && md.dims[0] === n && md.dims[1] === c &&
    md.dims[2] === h && md.dims[3] === w
  ) {
    return md;
  }
  return rt.mds.plain([n, c, h, w], x.dataType);
}

interface PoolShape {
  alg: number;
  kernel: [number, number];
  strides: [number, number];
  padL: [number, number];
  padR: [number, number];
  out: [number, number];
}

function poolForward(rt: CpuRuntime, md: MemDesc, ps: PoolShape, prop: number): Primitive {
  const key = `pool.fwd:${prop}:${md.id}:${JSON.stringify(ps)}`;
  return rt.primitive(key, "pooling forward", () => {
    const op = new Uint8Array(DNNL_SIZEOF.poolingDesc);
    const dst = rt.mds.any([md.dims[0], md.dims[1], ...ps.out], md.dataType);
    checkStatus(
      rt.sym.dnnl_pooling_forward_desc_init(
        op,
        prop,
        ps.alg,
        md.bytes,
        dst,
        dimsT(ps.strides),
        dimsT(ps.kernel),
        dimsT(ps.padL),
        dimsT(ps.padR),
      ),
      `describe pooling [${md.dims}]`,
    );
    const training = prop === PropKind.forwardTraining && ps.alg === AlgKind.poolingMax;
    return {
      pd: rt.createPd(op, "pooling"),
      args: training ? [Arg.src, Arg.dst, Arg.workspace] : [Arg.src, Arg.dst],
    };
  }, elementwiseThreads(rt, md.size));
}

function poolBackward(rt: CpuRuntime, md: MemDesc, ps: PoolShape, args: number[]): Primitive {
  return rt.primitive(`pool.bwd:${md.id}:${JSON.stringify(ps)}`, "pooling backward", () => {
    const hint = poolForward(rt, md, ps, PropKind.forwardTraining).pd;
    const op = new Uint8Array(DNNL_SIZEOF.poolingDesc);
    checkStatus(
      rt.sym.dnnl_pooling_backward_desc_init(
        op,
        ps.alg,
        md.bytes,
        rt.mds.any([md.dims[0], md.dims[1], ...ps.out], md.dataType),
        dimsT(ps.strides),
        dimsT(ps.kernel),
        dimsT(ps.padL),
        dimsT(ps.padR),
      ),
      `describe pooling backward [${md.dims}]`,
    );
    return { pd: rt.createPd(op, "pooling backward", hint), args };
  }, elementwiseThreads(rt, md.size));
}

function maxShape(g: Pool2dGeometry): PoolShape {
  return {
    alg: AlgKind.poolingMax,
    kernel: [g.kernelH, g.kernelW],
    strides: [g.strideH, g.strideW],
    padL: [g.padH, g.padW],
    padR: [
      (g.outH - 1) * g.strideH + g.kernelH - g.h - g.padH,
      (g.outW - 1) * g.strideW + g.kernelW - g.w - g.padW,
    ],
    out: [g.outH, g.outW],
  };
}

/** The elements max pooling reads. */
function poolInput(g: Pool2dGeometry): number {
  return g.n * g.c * g.h * g.w;
}

/**
 * Max pooling forward. oneDNN's max skips NaN; the contract (PyTorch) lets a NaN win its window:
 * an x that may hold NaN runs on the reference path (`nan.ts`).
 */
export function maxPool2dForward(
  rt: CpuRuntime,
  x: CpuStorage,
  y: CpuStorage,
  g: Pool2dGeometry,
): void {
  if (holdsNaN(rt, x, poolInput(g))) return viaReference(rt, "maxPool2dForward", { x, y, geom: g });
  const md = imageLayout(rt, x, g.n, g.c, g.h, g.w);
  rt.run(poolForward(rt, md, maxShape(g), PropKind.forwardInference), [x], [y]);
  if (y.length === g.n * g.c * g.outH * g.outW) y.nanFree = true;
}

/** Max pooling backward: dy routed to each window's maximum (a NaN's, as the forward). */
export function maxPool2dBackward(
  rt: CpuRuntime,
  x: CpuStorage,
  dy: CpuStorage,
  dx: CpuStorage,
  g: Pool2dGeometry,
): void {
  if (holdsNaN(rt, x, poolInput(g))) {
    return viaReference(rt, "maxPool2dBackward", { x, dy, dx, geom: g });
  }
  const md = imageLayout(rt, x, g.n, g.c, g.h, g.w);
  const ps = maxShape(g);
  const fwd = poolForward(rt, md, ps, PropKind.forwardTraining);
  const bwd = poolBackward(rt, md, ps, [Arg.diffDst, Arg.workspace, Arg.diffSrc]);
  rt.withTemps([fwd.md(Arg.dst), fwd.md(Arg.workspace)], ([y, ws]) => {
    rt.run(fwd, [x], [y, ws]);
    rt.run(bwd, [dy, ws], [dx]);
  });
}

function avgShape(md: MemDesc): PoolShape {
  const [h, w] = [md.dims[2], md.dims[3]];
  return {
    alg: AlgKind.poolingAvgExcludePadding,
    kernel: [h, w],
    strides: [h, w],
    padL: [0, 0],
    padR: [0, 0],
    out: [1, 1],
  };
}

/**
 * The layout global pooling's backward writes dx in: a pure function of the shape (no memory of
 * the forward's layout, so results never depend on call order): nChw16c over [n, c, hw, 1] when c
 * is a multiple of 16 (oneDNN's blocked activation layout on AVX-512; the consumer's [n, c, h, w]
 * nChw16c is the same bytes, see `CpuRuntime.layout`), else plain.
 */
export function globalPoolGradLayout(rt: CpuRuntime, n: number, c: number, hw: number): MemDesc {
  const dims = [n, c, hw, 1];
  if (c % 16 !== 0) return rt.mds.plain(dims, DataType.f32);
  return rt.mds.intern(rt.mds.tagged(dims, FormatTag.nChw16c, DataType.f32));
}

/** y[n, c] = mean over the hw pixels of x[n, c]. */
export function globalAvgPool(
  rt: CpuRuntime,
  o: { x: CpuStorage; y: CpuStorage; n: number; c: number; hw: number },
): void {
  const md0 = o.x.md;
  const md = md0 !== null && md0.dims.length === 4 && md0.dims[0] === o.n &&
      md0.dims[1] === o.c && md0.dims[2] * md0.dims[3] === o.hw
    ? md0
    : rt.mds.plain([o.n, o.c, o.hw, 1], DataType.f32);
  rt.run(poolForward(rt, md, avgShape(md), PropKind.forwardInference), [o.x], [o.y]);
}

/** dx[n, c, p] = dy[n, c] / hw, in {@link globalPoolGradLayout}. */
export function globalAvgPoolBackward(
  rt: CpuRuntime,
  o: { dy: CpuStorage; dx: CpuStorage; n: number; c: number; hw: number },
): void {
  const md = globalPoolGradLayout(rt, o.n, o.c, o.hw);
  const bwd = poolBackward(rt, md, avgShape(md), [Arg.diffDst, Arg.diffSrc]);
  rt.run(bwd, [o.dy], [o.dx]);
}
