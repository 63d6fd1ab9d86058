/**
 * LARS (You et al. 2017, "Large batch training of convolutional networks") as in solo-learn /
 * Lightning Bolts / apex: SGD whose per-parameter gradient is rescaled by a trust ratio,
 * `lars_lr = eta * ||p|| / (||g|| + wd * ||p|| + eps)`, `d = lars_lr * (g + wd * p)`, then PyTorch's
 * momentum SGD on `d` (dampening 0). Parameters excluded from adaptation (BatchNorm and biases by
 * default) and parameters with `||p|| = 0` or `||g|| = 0` use the plain gradient `d = g` (as the
 * reference code, weight decay is only added inside the adaptation branch).
 *
 * The norms are reduced on the device and read back with one download per step (the trust ratios
 * are host scalars of the `sgdUpdate` kernel).
 *
 * @module
 */

import type { Storage } from "../backend/backend.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { cloneTree, mapTree, type TensorTree } from "../tensor/tree.ts";
import { checkNonNegative, excludeBnAndBias, matchSlots } from "./params.ts";
import type { ParamPredicate } from "./params.ts";
import { checkSgdOptions, type OptimizerStep, type SgdOptions, type SgdState } from "./sgd.ts";

/** Hyper-parameters of one LARS step (SGD's, plus the trust-ratio settings). */
export interface LarsOptions extends SgdOptions {
  /** Trust coefficient eta. Default 0.001 (solo-learn, apex). */
  eta?: number;
  /** Added to the trust ratio's denominator. Default 1e-8. */
  eps?: number;
  /** Clip the adapted rate: `lars_lr = min(lars_lr / lr, 1)` (solo-learn's `clip_lars_lr`). */
  clipLr?: boolean;
  /** Parameters left out of the adaptation. Default {@link excludeBnAndBias}. */
  excludeFromAdaptation?: ParamPredicate;
}

/** LARS keeps the same state as SGD: one momentum buffer per parameter. */
export type LarsState<P extends TensorTree> = SgdState<P>;

/** Squared L2 norms of every tensor, reduced on the device and downloaded once. */
function squaredNorms(tensors: readonly Tensor[]): Float64Array {
  if (tensors.length === 0) return new Float64Array(0);
  const ctx = tensors[0].ctx;
  const backend = ctx.backend;
  const all = ctx.empty([tensors.length]);
  const scalar = ctx.empty([1]);
  try {
    tensors.forEach((t, i) => {
      const sq = ctx.empty(t.shape);
      try {
        backend.mul({ a: t.storage, b: t.storage, out: sq.storage, n: t.size });
        backend.sum({ x: sq.storage, out: scalar.storage, alpha: 1, n: t.size });
      } finally {
        sq.dispose();
      }
      backend.copy({
        src: scalar.storage,
        dst: all.storage,
        srcOffset: 0,
        dstOffset: i,
        length: 1,
      });
    });
    return Float64Array.from(all.toFloat32());
  } finally {
    all.dispose();
    scalar.dispose();
  }
}

/** The trust ratio of one parameter, or null when the plain gradient is used. */
export function larsTrustRatio(
  paramNorm: number,
  gradNorm: number,
  opts: { lr: number; weightDecay: number; eta?: number; eps?: number; clipLr?: boolean },
): number | null {
  if (paramNorm === 0 || gradNorm === 0) return null;
  let ratio = (opts.eta ?? 1e-3) * paramNorm /
    (gradNorm + paramNorm * opts.weightDecay + (opts.eps ?? 1e-8));
  if (opts.clipLr) ratio = Math.min(ratio / opts.lr, 1);
  return ratio;
}

/**
 * One LARS step. Returns new parameter and momentum trees; the inputs are neither modified nor
 * disposed.
 */
export function larsStep<P extends TensorTree>(
  params: P,
  grads: P,
  state: LarsState<P>,
  opts: LarsOptions,
): OptimizerStep<P, LarsState<P>> {
  checkSgdOptions("the LARS step", opts);
  checkNonNegative("the LARS step", "eta", opts.eta ?? 1e-3);
  checkNonNegative("the LARS step", "eps", opts.eps ?? 1e-8);
  const slots = matchSlots("the LARS step", params, grads, state.momentum);
  const skip = opts.excludeFromAdaptation ?? excludeBnAndBias;
  const adapted = slots.filter((s) => !skip(s.path, s.param));
  const sq = squaredNorms(adapted.flatMap((s) => [s.param, s.grad]));
  const ratios = new Map<string, number | null>();
  adapted.forEach((s, i) => {
    const decay = opts.exclude?.(s.path, s.param) ? 0 : opts.weightDecay;
    const ratio = larsTrustRatio(Math.sqrt(sq[2 * i]), Math.sqrt(sq[2 * i + 1]), {
      ...opts,
      weightDecay: decay,
    });
    ratios.set(s.path, ratio);
  });
  const newParams = new Map<string, Tensor>();
  const newBufs = new Map<string, Tensor>();
  for (const { path, param, grad, buf } of slots) {
    const backend = param.backend;
    const p = cloneTree(param);
    const b = cloneTree(buf);
    const ratio = ratios.get(path) ?? null;
    const decay = opts.exclude?.(path, param) ? 0 : opts.weightDecay;
    let scaled: Tensor | null = null;
    let g: Storage = grad.storage;
    if (ratio !== null) {
      // d = ratio * (g + wd * p): scale g here, and let sgdUpdate add (ratio * wd) * p.
      scaled = param.ctx.empty(param.shape);
      backend.axpby({
        x: grad.storage,
        y: grad.storage,
        out: scaled.storage,
        alpha: ratio,
        beta: 0,
        n: param.size,
      });
      g = scaled.storage;
    }
    backend.sgdUpdate({
      param: p.storage,
      grad: g,
      momentumBuf: b.storage,
      n: param.size,
      lr: opts.lr,
      momentum: opts.momentum,
      weightDecay: ratio === null ? 0 : ratio * decay,
      nesterov: opts.nesterov ?? false,
    });
    scaled?.dispose();
    newParams.set(path, p);
    newBufs.set(path, b);
  }
  return {
    params: mapTree(params, (_t, path) => newParams.get(path)!),
    state: { momentum: mapTree(state.momentum, (_t, path) => newBufs.get(path)!) },
  };
}
