/**
 * Softmax cross-entropy of logits against integer class labels, as `torch.nn.functional.
 * cross_entropy` with the default mean reduction: `-mean_i log softmax(x_i)[label_i]`.
 *
 * Composed of differentiable ops: the labels are uploaded as a one-hot f32 matrix `Y` and the loss
 * is `-sum(Y * logSoftmax(x)) / N`, whose gradient is `(softmax(x) - Y) / N`.
 *
 * @module
 */

import type { Tensor } from "../tensor/tensor.ts";
import { mul, scale } from "./elementwise.ts";
import { sum } from "./reduce.ts";
import { logSoftmax } from "./softmax.ts";
import { checkRank, fmtShape } from "./validate.ts";

/**
 * The one-hot f32 matrix [labels.length, numClasses] of `labels` on `logits`' context. Throws
 * naming the first label outside [0, numClasses).
 */
export function oneHot(logits: Tensor, labels: ArrayLike<number>): Tensor {
  const [rows, classes] = logits.shape;
  if (labels.length !== rows) {
    throw new RangeError(
      `Cannot run crossEntropy: ${labels.length} labels for logits of shape ${
        fmtShape(logits.shape)
      }`,
    );
  }
  const host = new Float32Array(rows * classes);
  for (let i = 0; i < rows; i++) {
    const c = labels[i];
    if (!Number.isInteger(c) || c < 0 || c >= classes) {
      throw new RangeError(
        `Cannot run crossEntropy: label ${c} of row ${i} is outside [0, ${classes})`,
      );
    }
    host[i * classes + c] = 1;
  }
  return logits.ctx.fromArray(host, [rows, classes]);
}

/**
 * Mean softmax cross-entropy of `logits` [N, C] against `labels` (N integers in [0, C)), as a
 * scalar tensor of shape []. Differentiable in `logits`.
 */
export function crossEntropy(logits: Tensor, labels: ArrayLike<number>): Tensor {
  checkRank("crossEntropy", "logits", logits, 2);
  const rows = logits.shape[0];
  if (rows === 0) {
    throw new RangeError("Cannot run crossEntropy: the logits have no rows");
  }
  const target = oneHot(logits, labels);
  return scale(sum(mul(target, logSoftmax(logits))), -1 / rows);
}
