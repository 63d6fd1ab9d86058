/**
 * Convolutions of the cuda backend: cuDNN plans (`ffi/cuda/conv_plan.ts`) made once per geometry
 * and dtype, with the algorithm of each direction chosen once (measured on scratch buffers, or
 * cuDNN's heuristic ranking; see `CudaBackendOptions.convSearch`) within a bounded workspace. f32
 * plans use FMA math only (no TF32) unless the backend enables TF32; bf16 plans accumulate in f32.
 * Each call takes its workspace from the caching allocator and gives it back once queued.
 *
 * @module
 */

import type { Conv2dGeometry } from "../backend.ts";
import { type ConvPlan, type ConvShape, createConvPlan } from "../../../ffi/cuda/conv_plan.ts";
import type { CudaRuntime } from "./runtime.ts";
import { type CudaStorage, ELEMENT_BYTES } from "./storage.ts";

type Direction = "forward" | "backwardData" | "backwardFilter";

/** Convolution plans of one backend, by geometry and dtype. */
export class ConvPlans {
  readonly #rt: CudaRuntime;
  readonly #plans = new Map<string, ConvPlan>();

  constructor(rt: CudaRuntime) {
    this.#rt = rt;
  }

  /** The number of plans made (one per distinct geometry and dtype). */
  get size(): number {
    return this.#plans.size;
  }

  /** `y = conv(x, w)`. */
  forward(x: CudaStorage, w: CudaStorage, y: CudaStorage, g: Conv2dGeometry): void {
    const plan = this.#plan(g, x.dtype as "f32" | "bf16");
    this.#withWorkspace(plan, "forward", (ws) => plan.forward(x.ptr, w.ptr, y.ptr, ws));
  }

  /** `dx = conv_backward_data(w, dy)`. */
  backwardData(dy: CudaStorage, w: CudaStorage, dx: CudaStorage, g: Conv2dGeometry): void {
    const plan = this.#plan(g, dy.dtype as "f32" | "bf16");
    this.#withWorkspace(plan, "backwardData", (ws) => plan.backwardData(w.ptr, dy.ptr, dx.ptr, ws));
  }

  /** `dw = conv_backward_filter(x, dy)`. */
  backwardFilter(x: CudaStorage, dy: CudaStorage, dw: CudaStorage, g: Conv2dGeometry): void {
    const plan = this.#plan(g, x.dtype as "f32" | "bf16");
    this.#withWorkspace(
      plan,
      "backwardFilter",
      (ws) => plan.backwardFilter(x.ptr, dy.ptr, dw.ptr, ws),
    );
  }

  /** Destroys every plan's descriptors. */
  destroy(): void {
    for (const p of this.#plans.values()) p.destroy();
    this.#plans.clear();
  }

  #withWorkspace(plan: ConvPlan, dir: Direction, run: (ws: bigint) => void): void {
    const choice = dir === "forward"
      ? plan.forwardAlgo
      : dir === "backwardData"
      ? plan.backwardDataAlgo
      : plan.backwardFilterAlgo;
    const bytes = choice.workspaceBytes;
    const ws = bytes > 0 ? this.#rt.scratch(bytes) : 0n;
    try {
      run(ws);
    } finally {
      if (bytes > 0) this.#rt.release(ws);
    }
  }

  #plan(g: Conv2dGeometry, dtype: "f32" | "bf16"): ConvPlan {
    const key = `${g.n},${g.c},${g.h},${g.w},${g.k},${g.r},${g.s},${g.strideH},${g.strideW},` +
      `${g.padH},${g.padW},${dtype}`;
    let plan = this.#plans.get(key);
    if (plan !== undefined) return plan;
    const shape: ConvShape = {
      n: g.n,
      c: g.c,
      h: g.h,
      w: g.w,
      k: g.k,
      r: g.r,
      s: g.s,
      padH: g.padH,
      padW: g.padW,
      strideH: g.strideH,
      strideW: g.strideW,
    };
    const rt = this.#rt;
    const opts = { dtype, tf32: rt.tf32, workspaceLimit: rt.convWorkspaceLimit };
    if (rt.convSearch === "heuristic") {
      plan = createConvPlan(rt.cudnn, shape, { ...opts, search: "heuristic" });
    } else {
      // cuDNN's Find runs every algorithm on these buffers (overwriting them) and synchronises.
      const e = ELEMENT_BYTES[dtype];
      const bytes = [
        g.n * g.c * g.h * g.w * e,
        g.k * g.c * g.r * g.s * e,
        g.n * g.k * g.outH * g.outW * e,
        rt.convWorkspaceLimit,
      ];
      const [x, w, y, workspace] = bytes.map((b) => rt.scratch(b));
      try {
        plan = createConvPlan(rt.cudnn, shape, {
          ...opts,
          search: { x, w, y, workspace, workspaceBytes: rt.convWorkspaceLimit },
        });
      } finally {
        for (const p of [x, w, y, workspace]) rt.release(p);
      }
    }
    this.#plans.set(key, plan);
    return plan;
  }
}
