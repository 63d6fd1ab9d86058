/**
 * Helpers shared by the optimisers: pairing a parameter tree with its gradient tree by flattened
 * path, copying tensors on the device, and the weight-decay exclusion predicates.
 *
 * @module
 */

import type { Tensor } from "../tensor/tensor.ts";
import { flattenTree, type TensorTree } from "../tensor/tree.ts";

/**
 * Decides, from a parameter's flattened path (`layer1.0.bn1.weight`) and the tensor, whether a rule
 * (weight decay, LARS adaptation) skips it. Name-only predicates may ignore the tensor.
 */
export type ParamPredicate = (path: string, param: Tensor) => boolean;

/**
 * Whether a torchvision-style path names a BatchNorm parameter or a bias: `bn1.weight`,
 * `layer1.0.bn2.bias`, `layer2.0.downsample.1.weight`, `fc.0.bias`, ...
 */
export function isBatchNormOrBiasName(path: string): boolean {
  if (path.endsWith(".bias") || path === "bias") return true;
  return /(^|\.)(bn\d*|norm\d*|downsample\.1)\.[^.]+$/.test(path);
}

/**
 * The ImageNet recipe's exclusion (no weight decay on BatchNorm parameters and biases): a BN/bias
 * name, or any rank-1 tensor (which catches BN layers named otherwise, as timm's `ndim <= 1` rule).
 */
export const excludeBnAndBias: ParamPredicate = (path: string, param: Tensor): boolean =>
  param.rank <= 1 || isBatchNormOrBiasName(path);

/** A parameter with its path, gradient and per-parameter optimiser state, matched by path. */
export interface ParamSlot {
  path: string;
  param: Tensor;
  grad: Tensor;
  buf: Tensor;
}

/**
 * Pairs the leaves of `params`, `grads` and `bufs` by flattened path and checks that they agree in
 * shape; throws a message naming the first mismatch.
 */
export function matchSlots(
  what: string,
  params: TensorTree,
  grads: TensorTree,
  bufs: TensorTree,
): ParamSlot[] {
  const g = new Map(flattenTree(grads));
  const b = new Map(flattenTree(bufs));
  const leaves = flattenTree(params);
  if (g.size !== leaves.length || b.size !== leaves.length) {
    throw new Error(
      `Cannot run ${what}: ${leaves.length} parameters but ${g.size} gradients and ${b.size} ` +
        `state buffers; pass trees of the same structure`,
    );
  }
  return leaves.map(([path, param]) => {
    const grad = g.get(path);
    const buf = b.get(path);
    if (!grad || !buf) {
      throw new Error(
        `Cannot run ${what}: no ${grad ? "state buffer" : "gradient"} for parameter '${path}'`,
      );
    }
    for (const [name, t] of [["gradient", grad], ["state buffer", buf]] as const) {
      const same = t.rank === param.rank && t.shape.every((d, i) => d === param.shape[i]);
      if (!same || t.dtype !== "f32" || param.dtype !== "f32") {
        throw new Error(
          `Cannot run ${what}: the ${name} of '${path}' is ${t.dtype} [${t.shape}] but the ` +
            `parameter is ${param.dtype} [${param.shape}]; both must be f32 of the same shape`,
        );
      }
    }
    return { path, param, grad, buf };
  });
}

/** Throws unless `v` is a finite number >= 0. */
export function checkNonNegative(what: string, name: string, v: number): void {
  if (!Number.isFinite(v) || v < 0) {
    throw new RangeError(`Cannot run ${what}: ${name} is ${v} but must be a finite number >= 0`);
  }
}
