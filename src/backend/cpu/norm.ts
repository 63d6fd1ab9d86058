/**
 * Batch-normalisation kernels of the cpu backend on oneDNN, with the contract's fusions
 * (y = act(bn(x) + residual)), in f32 or bf16 data (the per-channel vectors are f32). The data
 * keep the layout of `x` (nChw16c after a convolution) through every primitive of a call, so no
 * reorder happens between layers.
 *
 * f32 training forward and backward run on the backend's own kernels where they are built
 * (`native_norm.ts`: two passes each way, the reference's NaN semantics); what follows is the oneDNN
 * path, for bf16, inference, other layouts, and where `libressl_cpu.so` is missing.
 *
 * How each variant runs on oneDNN (all primitives cached by layout and eps):
 * - no residual, ReLU: one batch-norm primitive with `dnnl_fuse_norm_relu` (training also writes
 *   oneDNN's ReLU workspace, a temporary dropped after the call: the contract's backward gets `y`);
 * - residual: batch norm into `y`, then a binary add `y = y + residual` in place with a ReLU
 *   post-op (`dnnl_post_ops_append_eltwise`) when `relu` (the ReLU must follow the add, which the
 *   fuse flag cannot express); in bf16 through an f32 intermediate (see `forwardViaF32`);
 * - backward: the ReLU mask is recomputed from `y` by an eltwise backward (relu, dst > 0) into
 *   `dresidual` (or a temporary), whose masked gradient then feeds the batch-norm backward; without
 *   ReLU, `dresidual` receives a copy of dy. Nothing is kept between calls.
 *
 * @module
 */

import {
  AlgKind,
  Arg,
  checkStatus,
  DataType,
  DNNL_SIZEOF,
  NormFlags,
  PropKind,
} from "../../../ffi/dnnl/mod.ts";
import type { BatchNormGeometry, Opts } from "../backend.ts";
import { withAttr } from "./attr.ts";
import { reluBackwardFast, reluFast } from "./eltwise.ts";
import { viaReference } from "./nan.ts";
import {
  affineFinite,
  gradientSumsFinite,
  inferenceInputsSafe,
  statisticsFinite,
  trainingInputsSafe,
} from "./norm_nan.ts";
import { batchNormThreads, elementwiseThreads } from "./threads.ts";
import { nativeBackward, nativeForwardTraining } from "./native_norm.ts";
import type { MemDesc } from "./memdesc.ts";
import type { Primitive } from "./primitive.ts";
import type { CpuRuntime } from "./runtime.ts";
import type { CpuStorage } from "./storage.ts";
import { cpu } from "./validate.ts";

const SCALE_SHIFT = NormFlags.useScale | NormFlags.useShift;

/** The layout batch norm runs in: x's own layout when it describes [n, c, h, w], else plain. */
function dataLayout(rt: CpuRuntime, x: CpuStorage, g: BatchNormGeometry): MemDesc {
  const md = x.md;
  if (
    md !== null && md.dims.length === 4 && md.dims[0] === g.n && md.dims[1] === g.c &&
    md.dims[2] * md.dims[3] === g.hw
  ) {
    return md;
  }
  return rt.mds.plain([g.n, g.c, g.hw, 1], x.dataType);
}

function forwardPrimitive(
  rt: CpuRuntime,
  md: MemDesc,
  eps: number,
  training: boolean,
  fuseRelu: boolean,
): Primitive {
  const kind = training ? "training" : "inference";
  const key = `bn.fwd.${kind}:${md.id}:${eps}:${fuseRelu}`;
  return rt.primitive(key, `batch-norm forward ${kind}`, () => {
    const op = new Uint8Array(DNNL_SIZEOF.batchNormalizationDesc);
    const flags = SCALE_SHIFT | (training ? 0 : NormFlags.useGlobalStats) |
      (fuseRelu ? NormFlags.fuseNormRelu : 0);
    checkStatus(
      rt.sym.dnnl_batch_normalization_forward_desc_init(
        op,
        training ? PropKind.forwardTraining : PropKind.forwardInference,
        md.bytes,
        eps,
        flags,
      ),
      `describe batch norm [${md.dims}]`,
    );
    const args: number[] = training
      ? [Arg.src, Arg.scale, Arg.shift, Arg.dst, Arg.mean, Arg.variance]
      : [Arg.src, Arg.scale, Arg.shift, Arg.mean, Arg.variance, Arg.dst];
    if (training && fuseRelu) args.push(Arg.workspace);
    return { pd: rt.createPd(op, "batch-norm"), args };
  }, batchNormThreads(rt, md.size));
}

/**
 * `y = y + residual` in place (y in layout `md`, the residual in `resMd`: the same layout, with
 * bf16 elements where y is an f32 intermediate), followed by ReLU when `relu`.
 */
function addPrimitive(rt: CpuRuntime, md: MemDesc, resMd: MemDesc, relu: boolean): Primitive {
  return rt.primitive(`bn.add:${md.id}:${resMd.id}:${relu}`, "residual add", () => {
    const op = new Uint8Array(DNNL_SIZEOF.binaryDesc);
    checkStatus(
      rt.sym.dnnl_binary_desc_init(op, AlgKind.binaryAdd, md.bytes, resMd.bytes, md.bytes),
      `describe residual add [${md.dims}]`,
    );
    const postOps = relu
      ? [{ kind: "eltwise", alg: AlgKind.eltwiseRelu, alpha: 0, beta: 0 }] as const
      : [];
    const pd = withAttr(
      rt,
      { postOps },
      "residual add",
      (attr) => rt.createPd(op, "residual add", null, attr),
    );
    return { pd, args: [Arg.src, Arg.src1, Arg.dst] };
  }, elementwiseThreads(rt, md.size));
}

function residualAdd(
  rt: CpuRuntime,
  md: MemDesc,
  y: CpuStorage,
  residual: CpuStorage,
  relu: boolean,
): void {
  // In place: y is both src0 and dst (oneDNN's binary allows it); it already has layout `md`.
  addInPlace(rt, md, md, y, residual, relu);
}

/** Whether a blocked layout pads its channels (e.g. aBcd16b holding 4 or 8 channels). */
function channelPadded(md: MemDesc): boolean {
  return !md.plain && md.size > md.count * (md.dataType === DataType.f32 ? 4 : 2);
}

/**
 * dst = act(dst + residual) in place. oneDNN 2.6.3's binary add with a ReLU post-op (`jit:uni`)
 * computes wrong values on channel-padded blocked layouts (aBcd16b with 4 or 8 channels: ResNets of
 * width 4 and 8 differed from the reference by ~2, found by the CUDA backend's parity runs), so
 * there the ReLU runs as its own in-place pass after a plain add.
 */
function addInPlace(
  rt: CpuRuntime,
  md: MemDesc,
  resMd: MemDesc,
  dst: CpuStorage,
  residual: CpuStorage,
  relu: boolean,
): void {
  const separate = relu && channelPadded(md);
  rt.run(addPrimitive(rt, md, resMd, relu && !separate), [dst, residual], [dst]);
  if (separate) reluFast(rt, dst, dst, md.count);
}

/**
 * bf16 with a residual: batch norm's result must not be rounded to bf16 before the add (the
 * contract rounds once, and a cancelling residual would expose the first rounding). So x is
 * widened (exactly) to an f32 temporary in the same layout, normalised there in place, the bf16
 * residual added (and ReLU applied) in f32, and the sum rounded once to bf16 into y. Costs more
 * memory traffic than the all-bf16 path; bf16 without a residual stays all-bf16 (one rounding).
 */
function forwardViaF32(
  rt: CpuRuntime,
  md: MemDesc,
  o: Opts<"batchNormForwardTraining"> | Opts<"batchNormForwardInference">,
  training: boolean,
): void {
  const x = cpu(o.x), y = cpu(o.y), residual = cpu(o.residual!);
  const mdF = rt.mds.withDataType(md, DataType.f32);
  rt.withTemps([mdF], ([z]) => {
    rt.convert(x, md, z, mdF);
    const p = forwardPrimitive(rt, mdF, o.eps, training, false);
    const scale = [cpu(o.gamma), cpu(o.beta)];
    const stats = [cpu(o.mean), cpu(o.variance)];
    if (training) rt.run(p, [z, ...scale], [z, ...stats]);
    else rt.run(p, [z, ...scale, ...stats], [z]);
    addInPlace(rt, mdF, md, z, residual, o.relu === true);
    rt.convert(z, mdF, y, md);
  });
}

/**
 * `batchNormForwardTraining`: batch statistics to mean/variance, y = act(bn(x) + residual). With
 * ReLU, a NaN that would reach oneDNN's ReLU (which makes it 0) sends the call to the reference
 * path: checked before (gamma, beta, residual) and after (the statistics; `norm_nan.ts`).
 */
export function batchNormForwardTraining(
  rt: CpuRuntime,
  o: Opts<"batchNormForwardTraining">,
): void {
  if (nativeForwardTraining(rt, o, dataLayout(rt, cpu(o.x), o.geom))) {
    // The own kernels keep NaN as the reference does; only non-finite statistics (an infinite
    // x, where they give NaN and the reference infinity) take the reference path.
    if (!statisticsFinite(rt, o)) return viaReference(rt, "batchNormForwardTraining", o);
    const y = cpu(o.y), residual = o.residual ? cpu(o.residual) : null;
    const n = o.geom.n * o.geom.c * o.geom.hw;
    y.nanFree = n === y.length && (residual === null || residual.nanFree) &&
      trainingInputsSafe(rt, o);
    return;
  }
  const relu = o.relu === true;
  if (relu && !trainingInputsSafe(rt, o)) return viaReference(rt, "batchNormForwardTraining", o);
  forwardTrainingFast(rt, o);
  const y = cpu(o.y), residual = o.residual ? cpu(o.residual) : null;
  const finiteStats = statisticsFinite(rt, o);
  if (relu && !finiteStats) return viaReference(rt, "batchNormForwardTraining", o);
  // What is known about y's values (saves the next kernel a scan, e.g. as a residual).
  const n = o.geom.n * o.geom.c * o.geom.hw;
  y.nanFree = n === y.length && finiteStats &&
    (relu || (affineFinite(rt, o) && (residual === null || residual.nanFree)));
}

function forwardTrainingFast(rt: CpuRuntime, o: Opts<"batchNormForwardTraining">): void {
  const x = cpu(o.x), y = cpu(o.y), residual = o.residual ? cpu(o.residual) : null;
  const md = dataLayout(rt, x, o.geom);
  if (residual !== null && x.dtype === "bf16") return forwardViaF32(rt, md, o, true);
  const fuse = o.relu === true && residual === null;
  const p = forwardPrimitive(rt, md, o.eps, true, fuse);
  const outs = [y, cpu(o.mean), cpu(o.variance)];
  if (fuse) {
    rt.withTemps(
      [p.md(Arg.workspace)],
      ([ws]) => rt.run(p, [x, cpu(o.gamma), cpu(o.beta)], [...outs, ws]),
    );
  } else rt.run(p, [x, cpu(o.gamma), cpu(o.beta)], outs);
  if (residual !== null) residualAdd(rt, md, y, residual, o.relu === true);
}

/**
 * `batchNormForwardInference`: y = act(bn(x; mean, variance) + residual). With ReLU, x must be
 * finite and the affine map bounded, else the reference path runs (`norm_nan.ts`).
 */
export function batchNormForwardInference(
  rt: CpuRuntime,
  o: Opts<"batchNormForwardInference">,
): void {
  const relu = o.relu === true;
  if (relu && !inferenceInputsSafe(rt, o)) return viaReference(rt, "batchNormForwardInference", o);
  forwardInferenceFast(rt, o);
  const y = cpu(o.y);
  if (relu && y.length === o.geom.n * o.geom.c * o.geom.hw) y.nanFree = true;
}

function forwardInferenceFast(rt: CpuRuntime, o: Opts<"batchNormForwardInference">): void {
  const x = cpu(o.x), y = cpu(o.y), residual = o.residual ? cpu(o.residual) : null;
  const md = dataLayout(rt, x, o.geom);
  if (residual !== null && x.dtype === "bf16") return forwardViaF32(rt, md, o, false);
  const fuse = o.relu === true && residual === null;
  const p = forwardPrimitive(rt, md, o.eps, false, fuse);
  const stats = [cpu(o.gamma), cpu(o.beta), cpu(o.mean), cpu(o.variance)];
  rt.run(p, [x, ...stats], [y]);
  if (residual !== null) residualAdd(rt, md, y, residual, o.relu === true);
}

function backwardPrimitive(rt: CpuRuntime, md: MemDesc, eps: number): Primitive {
  return rt.primitive(`bn.bwd:${md.id}:${eps}`, "batch-norm backward", () => {
    const hint = forwardPrimitive(rt, md, eps, true, false).pd;
    const op = new Uint8Array(DNNL_SIZEOF.batchNormalizationDesc);
    checkStatus(
      rt.sym.dnnl_batch_normalization_backward_desc_init(
        op,
        PropKind.backward,
        md.bytes,
        md.bytes,
        eps,
        SCALE_SHIFT,
      ),
      `describe batch norm backward [${md.dims}]`,
    );
    return {
      pd: rt.createPd(op, "batch-norm backward", hint),
      args: [
        Arg.src,
        Arg.mean,
        Arg.variance,
        Arg.diffDst,
        Arg.scale,
        Arg.shift,
        Arg.diffSrc,
        Arg.diffScale,
        Arg.diffShift,
      ],
    };
  }, batchNormThreads(rt, md.size));
}

/**
 * `batchNormBackward`: with `relu`, dy masked by y > 0 (into `dresidual` when given); without,
 * `dresidual` = dy; then dx, dgamma, dbeta of batch norm from the (masked) gradient. oneDNN masks
 * by multiplying (a NaN or infinite dy where y <= 0 gives NaN, not 0): with ReLU, non-finite
 * dgamma or dbeta send the call to the reference path.
 */
export function batchNormBackward(rt: CpuRuntime, o: Opts<"batchNormBackward">): void {
  if (nativeBackward(rt, o, dataLayout(rt, cpu(o.x), o.geom))) {
    // Non-finite sums: an infinite or NaN gradient or x; the reference path decides exactly.
    if (!gradientSumsFinite(rt, o)) viaReference(rt, "batchNormBackward", o);
    return;
  }
  backwardFast(rt, o);
  if (o.relu === true && !gradientSumsFinite(rt, o)) viaReference(rt, "batchNormBackward", o);
}

function backwardFast(rt: CpuRuntime, o: Opts<"batchNormBackward">): void {
  const x = cpu(o.x), dy = cpu(o.dy), dres = o.dresidual ? cpu(o.dresidual) : null;
  const md = dataLayout(rt, x, o.geom);
  const n = o.geom.n * o.geom.c * o.geom.hw;
  const p = backwardPrimitive(rt, md, o.eps);
  const run = (grad: CpuStorage) =>
    // oneDNN 2.6 requires a shift argument whenever the descriptor uses a shift, although the
    // backward pass never reads it (the contract passes no beta): bind gamma.
    rt.run(p, [x, cpu(o.mean), cpu(o.variance), grad, cpu(o.gamma), cpu(o.gamma)], [
      cpu(o.dx),
      cpu(o.dgamma),
      cpu(o.dbeta),
    ]);
  if (o.relu === true) {
    const y = cpu(o.y!);
    if (dres !== null) {
      reluBackwardFast(rt, y, dy, dres, n);
      run(dres);
    } else {
      rt.withTemps([md], ([masked]) => {
        reluBackwardFast(rt, y, dy, masked, n);
        run(masked);
      });
    }
  } else {
    if (dres !== null) rt.copyElements(dy, dres, n);
    run(dy);
  }
}
