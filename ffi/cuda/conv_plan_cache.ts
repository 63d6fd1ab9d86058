/**
 * Convolution plans cached per shape on one cuDNN handle, so the algorithm search runs once per
 * shape (shapes are static per run).
 *
 * @module
 */

import type { CudnnHandle } from "./cudnn.ts";
import {
  type ConvPlan,
  type ConvPlanOptions,
  type ConvShape,
  createConvPlan,
  DEFAULT_CONV_WORKSPACE_LIMIT,
  normalizeConvShape,
} from "./conv_plan.ts";

/**
 * Plans made once per shape and options on one handle. With measured search in `defaults`, the
 * scratch buffers must be large enough for every shape asked for.
 */
export class ConvPlanCache {
  readonly #plans = new Map<string, ConvPlan>();
  constructor(readonly handle: CudnnHandle, readonly defaults: ConvPlanOptions = {}) {}

  /** The plan of `shape` (created on first use; searches run once per shape). */
  get(shape: ConvShape, opts: Omit<ConvPlanOptions, "search"> = {}): ConvPlan {
    const o = { ...this.defaults, ...opts };
    const key = JSON.stringify([
      normalizeConvShape(shape),
      o.dtype ?? "f32",
      o.workspaceLimit ?? DEFAULT_CONV_WORKSPACE_LIMIT,
      !!o.tf32,
      !!o.deterministic,
    ]);
    let plan = this.#plans.get(key);
    if (plan === undefined) {
      plan = createConvPlan(this.handle, shape, o);
      this.#plans.set(key, plan);
    }
    return plan;
  }

  /** The number of plans made. */
  get size(): number {
    return this.#plans.size;
  }

  /** Destroys every plan. */
  destroy(): void {
    for (const p of this.#plans.values()) p.destroy();
    this.#plans.clear();
  }
}
