/**
 * oneDNN primitive attributes for the cpu backend: post-ops (an eltwise such as ReLU after a
 * binary add, a sum that accumulates into the destination) and output scales. An attribute only
 * lives while a primitive descriptor is created (the descriptor keeps its own copy).
 *
 * @module
 */

import { checkStatus, DNNL_RUNTIME_F32_BITS } from "../../../ffi/dnnl/mod.ts";
import type { CpuRuntime } from "./runtime.ts";

const RUNTIME_SCALE = new Float32Array(new Uint32Array([DNNL_RUNTIME_F32_BITS]).buffer);

/** What a primitive's attributes hold. */
export interface AttrSpec {
  /** Post-ops, applied in order to the primitive's result. */
  postOps?: readonly PostOp[];
  /** Multiply the result by this before the post-ops (matmul's alpha). */
  outputScale?: number;
  /**
   * Inputs (argument indices, e.g. `Arg.src`) that get a common scale given at each execution
   * (`DNNL_RUNTIME_F32_VAL`), so one primitive serves every scale value.
   */
  runtimeInputScales?: readonly number[];
}

/** One post-op. */
export type PostOp =
  /** dst = alg(dst; alpha, beta), e.g. ReLU. */
  | { kind: "eltwise"; alg: number; alpha: number; beta: number }
  /** dst = result + scale * previous dst (accumulation, gemm's beta). */
  | { kind: "sum"; scale: number };

/**
 * Calls `create` with a oneDNN attribute built from `spec` (null when the spec is empty), and
 * destroys the attribute afterwards.
 */
export function withAttr<T>(
  rt: CpuRuntime,
  spec: AttrSpec,
  what: string,
  create: (attr: Deno.PointerObject | null) => T,
): T {
  const ops = spec.postOps ?? [];
  const runtimeScales = spec.runtimeInputScales ?? [];
  if (ops.length === 0 && spec.outputScale === undefined && runtimeScales.length === 0) {
    return create(null);
  }
  const sym = rt.sym;
  const out = new BigUint64Array(1);
  checkStatus(sym.dnnl_primitive_attr_create(out), `create attributes of ${what}`);
  const attr = Deno.UnsafePointer.create(out[0])!;
  let postOps: Deno.PointerObject | null = null;
  try {
    if (spec.outputScale !== undefined) {
      checkStatus(
        sym.dnnl_primitive_attr_set_output_scales(
          attr,
          1n,
          0,
          new Float32Array([spec.outputScale]),
        ),
        `set the output scale of ${what}`,
      );
    }
    for (const arg of runtimeScales) {
      checkStatus(
        sym.dnnl_primitive_attr_set_scales(attr, arg, 1n, 0, RUNTIME_SCALE),
        `set a runtime scale of argument ${arg} of ${what}`,
      );
    }
    if (ops.length > 0) {
      checkStatus(sym.dnnl_post_ops_create(out), `create post-ops of ${what}`);
      postOps = Deno.UnsafePointer.create(out[0])!;
      for (const op of ops) {
        const status = op.kind === "eltwise"
          ? sym.dnnl_post_ops_append_eltwise(postOps, 1, op.alg, op.alpha, op.beta)
          : sym.dnnl_post_ops_append_sum(postOps, op.scale);
        checkStatus(status, `append a ${op.kind} post-op to ${what}`);
      }
      checkStatus(
        sym.dnnl_primitive_attr_set_post_ops(attr, postOps),
        `attach post-ops to ${what}`,
      );
    }
    return create(attr);
  } finally {
    if (postOps !== null) sym.dnnl_post_ops_destroy(postOps);
    sym.dnnl_primitive_attr_destroy(attr);
  }
}
