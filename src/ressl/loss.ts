/**
 * The ReSSL relation loss (RESSL_SPEC §2): the teacher's sharpened similarity distribution over the
 * queue is the soft target of the student's,
 * `loss = -mean_b sum_j softmax(k Q^T / tau_t)[b, j] * log_softmax(q Q^T / tau_s)[b, j]`.
 *
 * Gradients flow only through `q`: the teacher keys and the queue are stop-gradient. The logits-level
 * core is one differentiable op whose backward is the closed form `(p_s - p_t) / B` per student
 * logit (the `1 / tau_s` of the similarity scale makes it `(p_s - p_t) / (tau_s B)` on `q Q^T`).
 * Softmax and log-softmax are max-shifted (log-sum-exp), so `tau_t = 0.04` with cosine similarities
 * of ±1 (logits of ±25) stays finite.
 *
 * Intermediate tensors belong to the caller's memory scope: call inside `valueAndGrad` or
 * `ctx.scope`.
 *
 * @module
 */

import { add, matmul, scale } from "../ops/mod.ts";
import { fmtShape } from "../ops/validate.ts";
import { record, stopGradient } from "../tensor/autodiff.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** Options of {@link relationLoss}. */
export interface RelationLossOptions {
  /** Student temperature. Default 0.1. */
  tauS?: number;
  /** Teacher temperature. Default 0.04. */
  tauT?: number;
  /**
   * §9 variant: append the current batch's keys to the relation basis, each row's own key masked
   * out (its logit pushed to -1e9 in both distributions). Default false (queue only, as the paper).
   */
  currentBatchKeys?: boolean;
}

/** The masking logit of {@link RelationLossOptions.currentBatchKeys} (as eztorch's LARGE_NUM). */
export const MASKED_LOGIT = -1e9;

function checkMatrix(name: string, t: Tensor): void {
  t.assertAlive();
  if (t.dtype !== "f32" || t.rank !== 2) {
    throw new RangeError(
      `Cannot compute the relation loss: ${name} is ${t.dtype} ${fmtShape(t.shape)} but must be ` +
        `an f32 matrix`,
    );
  }
}

function checkTemperature(name: string, v: number): void {
  if (!(Number.isFinite(v) && v > 0)) {
    throw new RangeError(`Cannot compute the relation loss: ${name} is ${v} but must be > 0`);
  }
}

/**
 * `-mean_b sum_j softmax(teacherLogits)[b, j] * log_softmax(studentLogits)[b, j]` for two [B, N]
 * logit matrices. Differentiable in `studentLogits` only (closed-form backward
 * `dy * (softmax(studentLogits) - softmax(teacherLogits)) / B`); `teacherLogits` is a constant.
 */
export function relationLossFromLogits(studentLogits: Tensor, teacherLogits: Tensor): Tensor {
  checkMatrix("the student logits", studentLogits);
  checkMatrix("the teacher logits", teacherLogits);
  const [rows, cols] = studentLogits.shape;
  if (teacherLogits.shape[0] !== rows || teacherLogits.shape[1] !== cols) {
    throw new RangeError(
      `Cannot compute the relation loss: student logits ${fmtShape(studentLogits.shape)} and ` +
        `teacher logits ${fmtShape(teacherLogits.shape)} differ in shape`,
    );
  }
  if (rows === 0 || cols === 0) {
    throw new RangeError(
      `Cannot compute the relation loss over logits ${fmtShape(studentLogits.shape)}: ` +
        `the batch and the relation basis must not be empty`,
    );
  }
  const ctx = studentLogits.ctx;
  const be = ctx.backend;
  const n = rows * cols;
  const pt = ctx.empty([rows, cols]);
  be.softmax({ x: teacherLogits.storage, y: pt.storage, rows, cols });
  const logPs = ctx.empty([rows, cols]);
  be.logSoftmax({ x: studentLogits.storage, y: logPs.storage, rows, cols });
  const prod = ctx.empty([rows, cols]);
  be.mul({ a: pt.storage, b: logPs.storage, out: prod.storage, n });
  const loss = ctx.empty([]);
  be.sum({ x: prod.storage, out: loss.storage, alpha: -1 / rows, n });
  logPs.dispose();
  prod.dispose();
  record(loss, [studentLogits, teacherLogits], (dy) => {
    const diff = ctx.empty([rows, cols]);
    be.softmax({ x: studentLogits.storage, y: diff.storage, rows, cols });
    be.axpby({ x: diff.storage, y: pt.storage, out: diff.storage, alpha: 1, beta: -1, n });
    const dyB = ctx.empty([rows, cols]);
    be.broadcastScalar({ s: dy.storage, out: dyB.storage, alpha: 1 / rows, n });
    const grad = ctx.empty([rows, cols]);
    be.mul({ a: diff.storage, b: dyB.storage, out: grad.storage, n });
    diff.dispose();
    dyB.dispose();
    return [grad, null];
  });
  if (!loss.requiresGrad) pt.dispose();
  return loss;
}

/** The [B, K + B] mask of the current-batch variant: 0, except `MASKED_LOGIT` at (i, K + i). */
function ownKeyMask(ctx: Tensor["ctx"], b: number, k: number): Tensor {
  const m = new Float32Array(b * (k + b));
  for (let i = 0; i < b; i++) m[i * (k + b) + k + i] = MASKED_LOGIT;
  return ctx.fromArray(m, [b, k + b]);
}

/** The rows of `queue` followed by the rows of `keys`, as a new constant [K + B, D] tensor. */
function appendRows(queue: Tensor, keys: Tensor): Tensor {
  const [k, d] = queue.shape;
  const b = keys.shape[0];
  const out = queue.ctx.empty([k + b, d]);
  const be = queue.backend;
  be.copy({ src: queue.storage, dst: out.storage, srcOffset: 0, dstOffset: 0, length: k * d });
  be.copy({ src: keys.storage, dst: out.storage, srcOffset: 0, dstOffset: k * d, length: b * d });
  return out;
}

/**
 * The relation loss of student embeddings `q` [B, D] (L2-normalised, differentiable) against
 * teacher keys `k` [B, D] (stop-gradient) over the queue [K, D] (stop-gradient). Returns a scalar.
 */
export function relationLoss(
  q: Tensor,
  k: Tensor,
  queue: Tensor,
  opts: RelationLossOptions = {},
): Tensor {
  const tauS = opts.tauS ?? 0.1;
  const tauT = opts.tauT ?? 0.04;
  checkTemperature("tauS", tauS);
  checkTemperature("tauT", tauT);
  checkMatrix("q", q);
  checkMatrix("k", k);
  checkMatrix("the queue", queue);
  const [b, d] = q.shape;
  if (k.shape[0] !== b || k.shape[1] !== d || queue.shape[1] !== d) {
    throw new RangeError(
      `Cannot compute the relation loss: q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)} and the ` +
        `queue ${fmtShape(queue.shape)} must be [B, D], [B, D] and [K, D]`,
    );
  }
  const ctx = q.ctx;
  const keys = stopGradient(k);
  const basis = opts.currentBatchKeys ? appendRows(queue, keys) : stopGradient(queue);
  const mask = opts.currentBatchKeys ? ownKeyMask(ctx, b, queue.shape[0]) : null;
  const teacher = ctx.noGrad(() => {
    const sims = matmul(keys, basis, { transB: true });
    const logits = scale(sims, 1 / tauT);
    sims.dispose();
    if (!mask) return logits;
    const masked = add(logits, mask);
    logits.dispose();
    return masked;
  });
  let student = scale(matmul(q, basis, { transB: true }), 1 / tauS);
  if (mask) student = add(student, mask);
  return relationLossFromLogits(student, teacher);
}
