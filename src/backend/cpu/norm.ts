/**
 * Batch-normalisation kernels of the cpu backend on oneDNN (forward training, forward inference,
 * backward with scale and shift gradients). The data keep the layout of `x` (blocked nChw16c after a
 * convolution); the per-channel vectors are plain.
 *
 * @module
 */

import { Arg, checkStatus, DNNL_SIZEOF, NormFlags, PropKind } from "../../../ffi/dnnl/mod.ts";
import type { BatchNormGeometry } from "../backend.ts";
import type { MemDesc } from "./memdesc.ts";
import type { Primitive } from "./primitive.ts";
import type { CpuRuntime } from "./runtime.ts";
import type { CpuStorage } from "./storage.ts";

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
  return rt.mds.plain([g.n, g.c, g.hw, 1]);
}

function forwardPrimitive(
  rt: CpuRuntime,
  md: MemDesc,
  eps: number,
  training: boolean,
): Primitive {
  const kind = training ? "training" : "inference";
  return rt.primitive(`bn.fwd.${kind}:${md.id}:${eps}`, `batch-norm forward ${kind}`, () => {
    const op = new Uint8Array(DNNL_SIZEOF.batchNormalizationDesc);
    checkStatus(
      rt.sym.dnnl_batch_normalization_forward_desc_init(
        op,
        training ? PropKind.forwardTraining : PropKind.forwardInference,
        md.bytes,
        eps,
        training ? SCALE_SHIFT : SCALE_SHIFT | NormFlags.useGlobalStats,
      ),
      `describe batch norm [${md.dims}]`,
    );
    return {
      pd: rt.createPd(op, "batch-norm"),
      args: training
        ? [Arg.src, Arg.scale, Arg.shift, Arg.dst, Arg.mean, Arg.variance]
        : [Arg.src, Arg.scale, Arg.shift, Arg.mean, Arg.variance, Arg.dst],
    };
  });
}

/** Training-mode forward: batch statistics to `mean`/`variance`, normalised output to `y`. */
export function batchNormForwardTraining(
  rt: CpuRuntime,
  o: {
    x: CpuStorage;
    gamma: CpuStorage;
    beta: CpuStorage;
    y: CpuStorage;
    mean: CpuStorage;
    variance: CpuStorage;
    geom: BatchNormGeometry;
    eps: number;
  },
): void {
  const md = dataLayout(rt, o.x, o.geom);
  const p = forwardPrimitive(rt, md, o.eps, true);
  rt.run(p, [o.x, o.gamma, o.beta], [o.y, o.mean, o.variance]);
}

/** Inference-mode forward with the given mean and variance. */
export function batchNormForwardInference(
  rt: CpuRuntime,
  o: {
    x: CpuStorage;
    gamma: CpuStorage;
    beta: CpuStorage;
    mean: CpuStorage;
    variance: CpuStorage;
    y: CpuStorage;
    geom: BatchNormGeometry;
    eps: number;
  },
): void {
  const md = dataLayout(rt, o.x, o.geom);
  const p = forwardPrimitive(rt, md, o.eps, false);
  rt.run(p, [o.x, o.gamma, o.beta, o.mean, o.variance], [o.y]);
}

/** Backward of training-mode batch norm: dx, dgamma, dbeta. */
export function batchNormBackward(
  rt: CpuRuntime,
  o: {
    x: CpuStorage;
    dy: CpuStorage;
    gamma: CpuStorage;
    mean: CpuStorage;
    variance: CpuStorage;
    dx: CpuStorage;
    dgamma: CpuStorage;
    dbeta: CpuStorage;
    geom: BatchNormGeometry;
    eps: number;
  },
): void {
  const md = dataLayout(rt, o.x, o.geom);
  const p = rt.primitive(`bn.bwd:${md.id}:${o.eps}`, "batch-norm backward", () => {
    const hint = forwardPrimitive(rt, md, o.eps, true).pd;
    const op = new Uint8Array(DNNL_SIZEOF.batchNormalizationDesc);
    checkStatus(
      rt.sym.dnnl_batch_normalization_backward_desc_init(
        op,
        PropKind.backward,
        md.bytes,
        md.bytes,
        o.eps,
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
  });
  // oneDNN 2.6 requires a shift argument whenever the descriptor uses a shift, although the
  // backward pass without a fused ReLU never reads it (the contract passes no beta): bind gamma.
  rt.run(p, [o.x, o.mean, o.variance, o.dy, o.gamma, o.gamma], [o.dx, o.dgamma, o.dbeta]);
}
