/**
 * Batch norm of the cpu backend on its own kernels (`libressl_cpu.so`, `ffi/cpu/kernels/
 * batch_norm_{forward,backward}.c`): f32 training forward and backward with the contract's fusions
 * in two passes over the activations each way, where oneDNN 2.6.3 needs its batch norm (three
 * passes) plus a binary add or an eltwise ReLU-mask primitive. Measured in docs/benchmarks.md
 * ("Issue 15, phase 3").
 *
 * The kernels follow the reference backend's semantics, NaN included: ReLU keeps a NaN, the
 * backward mask selects (0 where y <= 0 whatever dy holds), sums are accumulated in f64 per image
 * and then over the images in order (so results do not depend on the thread count). What they do
 * not reproduce exactly is an infinite input (their statistics come out NaN where the reference's
 * are infinite): a call whose statistics or gradient sums are not finite is rerun on the reference
 * path by the caller (`norm.ts`), as the oneDNN path does.
 *
 * Used where the library loaded (see `runtime.ts`), the data are f32, every activation holds
 * exactly n * c * hw elements and x is plain NCHW or nChw16c; anything else returns false and runs
 * on oneDNN.
 *
 * @module
 */

import { CPU_KERNEL_ERRORS, type CpuKernels } from "../../../ffi/cpu/mod.ts";
import { DataType, FormatTag } from "../../../ffi/dnnl/mod.ts";
import type { BatchNormGeometry, Opts } from "../backend.ts";
import type { MemDesc } from "./memdesc.ts";
import type { CpuRuntime } from "./runtime.ts";
import type { CpuStorage } from "./storage.ts";
import { elementwiseThreads } from "./threads.ts";
import { cpu } from "./validate.ts";

/** Per descriptor: the kernels' `lanes` argument (16: nChw16c, 1: plain), or 0 (unsupported). */
const lanesOf = new WeakMap<MemDesc, number>();

/** How the kernels read `md`: 16 (nChw16c), 1 (plain), 0 (another layout: not supported). */
function lanes(rt: CpuRuntime, md: MemDesc): number {
  let l = lanesOf.get(md);
  if (l === undefined) {
    if (md.plain) l = 1;
    else if (md.dims.length !== 4) l = 0;
    else {
      const blocked = rt.mds.intern(rt.mds.tagged(md.dims, FormatTag.nChw16c, DataType.f32));
      l = blocked === md ? 16 : 0;
    }
    lanesOf.set(md, l);
  }
  return l;
}

/**
 * The kernels and their `lanes` argument, when they can run this call: loaded, f32, whole
 * storages, a supported layout; else null.
 */
function usable(
  rt: CpuRuntime,
  g: BatchNormGeometry,
  md: MemDesc,
  activations: readonly (CpuStorage | null)[],
): { k: CpuKernels; l: number } | null {
  const k = rt.kernels;
  if (k === null || md.dataType !== DataType.f32) return null;
  const n = g.n * g.c * g.hw;
  if (n === 0) return null; // nothing to normalise: the oneDNN path handles the empty call
  for (const s of activations) if (s !== null && (s.dtype !== "f32" || s.length !== n)) return null;
  const l = lanes(rt, md);
  return l === 0 ? null : { k, l };
}

/** The storage's bytes in layout `md` for reading, keeping what is known about its values. */
function input(rt: CpuRuntime, s: CpuStorage, md: MemDesc): Deno.PointerObject {
  const nanFree = s.nanFree;
  const ptr = rt.layout(s, md).ptr;
  s.nanFree = nanFree;
  return ptr;
}

/** A per-channel f32 vector's address (plain; an input keeps what is known about its values). */
function vector(rt: CpuRuntime, s: CpuStorage, write: boolean): Deno.PointerObject {
  const nanFree = s.nanFree;
  const ptr = rt.plain(s).ptr;
  if (!write) s.nanFree = nanFree;
  return ptr;
}

/** Runs `f` with a pooled scratch buffer of the size the kernels ask for this geometry. */
function withScratch(
  rt: CpuRuntime,
  k: CpuKernels,
  g: BatchNormGeometry,
  lanes: number,
  f: (ptr: Deno.PointerObject, bytes: bigint) => number,
): number {
  const bytes = Number(
    k.symbols.ressl_bn_scratch_bytes(BigInt(g.n), BigInt(g.c), BigInt(g.hw), BigInt(lanes)),
  );
  const buf = rt.pool.take(Math.max(bytes, 64));
  try {
    return f(buf.ptr, BigInt(buf.bytes));
  } finally {
    rt.pool.give(buf);
  }
}

function check(status: number, what: string, g: BatchNormGeometry): void {
  if (status !== 0) {
    throw new Error(
      `Cannot run ${what} [n ${g.n}, c ${g.c}, hw ${g.hw}] on libressl_cpu.so: ` +
        `${CPU_KERNEL_ERRORS[status] ?? `error ${status}`}`,
    );
  }
}

/**
 * `batchNormForwardTraining` (f32) on the own kernels, with x in layout `md`: true when it ran,
 * false when this call is not one they take (then nothing was written).
 */
export function nativeForwardTraining(
  rt: CpuRuntime,
  o: Opts<"batchNormForwardTraining">,
  md: MemDesc,
): boolean {
  const x = cpu(o.x), y = cpu(o.y), residual = o.residual ? cpu(o.residual) : null;
  const u = usable(rt, o.geom, md, [x, y, residual]);
  if (u === null) return false;
  const { k, l } = u;
  const g = o.geom;
  const xp = input(rt, x, md);
  const rp = residual === null ? null : input(rt, residual, md);
  const gamma = vector(rt, cpu(o.gamma), false), beta = vector(rt, cpu(o.beta), false);
  const mean = vector(rt, cpu(o.mean), true), variance = vector(rt, cpu(o.variance), true);
  const yp = rt.output(y, md.plain ? null : md).ptr;
  const status = withScratch(rt, k, g, l, (scratch, bytes) =>
    k.symbols.ressl_bn_forward_training(
      xp,
      rp,
      yp,
      gamma,
      beta,
      mean,
      variance,
      BigInt(g.n),
      BigInt(g.c),
      BigInt(g.hw),
      BigInt(l),
      o.eps,
      o.relu === true ? 1 : 0,
      elementwiseThreads(rt, md.size),
      scratch,
      bytes,
    ));
  check(status, "batch norm forward", g);
  return true;
}

/**
 * `batchNormBackward` (f32) on the own kernels, with x in layout `md`: true when it ran, false
 * when this call is not one they take (then nothing was written).
 */
export function nativeBackward(
  rt: CpuRuntime,
  o: Opts<"batchNormBackward">,
  md: MemDesc,
): boolean {
  const relu = o.relu === true;
  const x = cpu(o.x), dy = cpu(o.dy), dx = cpu(o.dx);
  const y = relu ? cpu(o.y!) : null, dres = o.dresidual ? cpu(o.dresidual) : null;
  const u = usable(rt, o.geom, md, [x, dy, dx, y, dres]);
  if (u === null) return false;
  const { k, l } = u;
  const g = o.geom;
  const xp = input(rt, x, md), dyp = input(rt, dy, md);
  const yp = y === null ? null : input(rt, y, md);
  const gamma = vector(rt, cpu(o.gamma), false);
  const mean = vector(rt, cpu(o.mean), false), variance = vector(rt, cpu(o.variance), false);
  const dgamma = vector(rt, cpu(o.dgamma), true), dbeta = vector(rt, cpu(o.dbeta), true);
  const layout = md.plain ? null : md;
  const dxp = rt.output(dx, layout).ptr;
  const drp = dres === null ? null : rt.output(dres, layout).ptr;
  const status = withScratch(rt, k, g, l, (scratch, bytes) =>
    k.symbols.ressl_bn_backward(
      xp,
      dyp,
      yp,
      gamma,
      mean,
      variance,
      dxp,
      dgamma,
      dbeta,
      drp,
      BigInt(g.n),
      BigInt(g.c),
      BigInt(g.hw),
      BigInt(l),
      o.eps,
      relu ? 1 : 0,
      elementwiseThreads(rt, md.size),
      scratch,
      bytes,
    ));
  check(status, "batch norm backward", g);
  return true;
}
