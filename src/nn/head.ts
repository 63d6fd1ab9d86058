/**
 * The ReSSL projection head: `Linear(in, hidden) -> ReLU -> Linear(hidden, out)`, no BatchNorm.
 * Parameter names follow a PyTorch `nn.Sequential`: `0.weight`, `0.bias`, `2.weight`, `2.bias`.
 *
 * @module
 */

import { linear, relu } from "../ops/mod.ts";
import type { RngKey } from "../random/philox.ts";
import type { Context, Tensor } from "../tensor/tensor.ts";
import { initTree } from "./init.ts";
import { type ParamSpec, paramSpec, specSize } from "./param_spec.ts";

/** Sizes of a projection head. */
export interface HeadOptions {
  /** Input features (the backbone's feature dimension). */
  inDim: number;
  /** Hidden units. */
  hiddenDim: number;
  /** Output (embedding) dimension. */
  outDim: number;
}

/** A linear layer's parameters in PyTorch's layout (weight [out, in], bias [out]). */
export type LinearTree<L = Tensor> = { weight: L; bias: L };

/** Parameters of a projection head (`nn.Sequential` indices 0 and 2; 1 is the ReLU). */
export type HeadParams<L = Tensor> = { "0": LinearTree<L>; "2": LinearTree<L> };

const linearSpec = (out: number, inF: number): LinearTree<ParamSpec> => ({
  weight: paramSpec([out, inF], "linearWeight", inF),
  bias: paramSpec([out], "linearBias", inF),
});

/** The head's parameters as specs (shapes and init rules, no memory). */
export function headSpec(options: HeadOptions): HeadParams<ParamSpec> {
  const { inDim, hiddenDim, outDim } = options;
  for (const [name, v] of Object.entries({ inDim, hiddenDim, outDim })) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(
        `Cannot build projection head: ${name} is ${v}, expected an integer >= 1`,
      );
    }
  }
  return {
    "0": linearSpec(options.hiddenDim, options.inDim),
    "2": linearSpec(options.outDim, options.hiddenDim),
  };
}

/** Number of learnable parameters of a head. */
export function headParamCount(options: HeadOptions): number {
  return specSize(headSpec(options));
}

/** Options of {@link initHead}. */
export interface InitHeadOptions extends HeadOptions {
  /** Root key; tensor `p` is drawn from `foldIn(key, nameId(prefix + p))`. */
  key: RngKey;
  /** Prepended to paths before hashing (default "head.", so a key shared with a backbone differs). */
  prefix?: string;
}

/** A head's parameters on a context, initialised as torch.nn.Linear does by default. */
export function initHead(ctx: Context, options: InitHeadOptions): HeadParams {
  return initTree(ctx, headSpec(options), { key: options.key, prefix: options.prefix ?? "head." });
}

/** Projects features `x` [N, inDim] to [N, outDim]. Differentiable in `params` and `x`. */
export function headForward(params: HeadParams, x: Tensor): Tensor {
  const l0 = params["0"];
  const l2 = params["2"];
  return linear(relu(linear(x, l0.weight, l0.bias)), l2.weight, l2.bias);
}
