/**
 * Differentiable tensor ops: each validates its arguments, runs a backend kernel forward and
 * records its gradient rule for `valueAndGrad`.
 *
 * @module
 */
export { relu } from "./activation.ts";
export {
  batchNorm2d,
  batchNormAct,
  type BatchNormActOptions,
  type BatchNormOptions,
  type BatchNormParams,
  type BatchNormResult,
  type BatchNormState,
} from "./batch_norm.ts";
export { type BatchNormPlan, batchNormPlan, type BatchNormSync } from "./batch_norm_sync.ts";
export { conv2d, type Conv2dOptions } from "./conv.ts";
export { crossEntropy, oneHot } from "./cross_entropy.ts";
export { add, mul, scale, sub } from "./elementwise.ts";
export { linear } from "./linear.ts";
export { matmul, type MatmulOptions } from "./matmul.ts";
export { l2Normalize, type L2NormalizeOptions } from "./normalize.ts";
export { permuteRows } from "./permute.ts";
export { globalAvgPool, maxPool2d, type MaxPool2dOptions } from "./pool.ts";
export { mean, sum } from "./reduce.ts";
export { concatRows, sliceRows } from "./rows.ts";
export { flatten, reshape } from "./shape.ts";
export { logSoftmax, softmax } from "./softmax.ts";
