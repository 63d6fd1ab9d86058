/**
 * torchvision's initialisation, drawn from the counter-based Philox RNG.
 *
 * Every tensor gets its own key, `foldIn(key, nameId(path))`, so its values depend on the root key
 * and its name only, never on the order in which tensors are created.
 * - conv weight [K, C, R, S]: kaiming-normal, mode fan_out, relu: N(0, 2 / (K * R * S)).
 * - BN weight 1, bias 0; running mean 0, running variance 1.
 * - Linear weight [out, in]: kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in));
 *   bias U(-1/sqrt(in), 1/sqrt(in)).
 *
 * @module
 */

import { foldIn, nameId, normalArray, type RngKey, uniformArray } from "../random/philox.ts";
import type { Context, Tensor } from "../tensor/tensor.ts";
import { materialize, type Materialized, type ParamSpec, type SpecTree } from "./param_spec.ts";

/** Standard deviation of torchvision's conv init for a [K, C, R, S] weight: sqrt(2 / (K R S)). */
export function convInitStd(shape: readonly number[]): number {
  const [k, , r, s] = shape;
  return Math.sqrt(2 / (k * r * s));
}

/** Bound of torch.nn.Linear's default uniform init (weight and bias): 1 / sqrt(fan_in). */
export function linearInitBound(fanIn: number): number {
  return 1 / Math.sqrt(fanIn);
}

/** Host values of one spec, drawn from `foldIn(key, nameId(path))`. */
export function initValues(spec: ParamSpec, key: RngKey, path: string): Float32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const k = foldIn(key, nameId(path));
  switch (spec.init) {
    case "conv":
      if (spec.shape.length !== 4) {
        throw new RangeError(
          `Cannot initialise '${path}': a conv weight needs 4 dims, got [${spec.shape}]`,
        );
      }
      return normalArray(k, n, 0, convInitStd(spec.shape));
    case "linearWeight":
    case "linearBias": {
      const fanIn = spec.fanIn ?? (spec.init === "linearWeight" ? spec.shape[1] : undefined);
      if (fanIn === undefined || !(fanIn > 0)) {
        throw new RangeError(`Cannot initialise '${path}': a linear ${spec.init} needs fanIn > 0`);
      }
      const b = linearInitBound(fanIn);
      return uniformArray(k, n, -b, b);
    }
    case "ones":
      return new Float32Array(n).fill(1);
    case "zeros":
      return new Float32Array(n);
  }
}

/** Options of {@link initTree}. */
export interface InitTreeOptions {
  /** Root key; each tensor uses `foldIn(key, nameId(prefix + path))`. */
  key: RngKey;
  /** Prepended to every path before hashing (e.g. "head.") so that two networks sharing a key differ. */
  prefix?: string;
}

/**
 * Creates the tensors of a spec tree on `ctx` with torchvision's initialisation.
 * Nothing stays allocated if it throws.
 */
export function initTree<T extends SpecTree>(
  ctx: Context,
  tree: T,
  options: InitTreeOptions,
): Materialized<T> {
  const prefix = options.prefix ?? "";
  return ctx.scope(() =>
    materialize(tree, (spec, path): Tensor => {
      const values = initValues(spec, options.key, prefix + path);
      return ctx.fromArray(values, spec.shape, "f32");
    })
  );
}
