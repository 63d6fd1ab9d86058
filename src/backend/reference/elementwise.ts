/**
 * Elementwise kernels and the SGD step of the reference backend, on host arrays (values combined in
 * f64, rounded once to f32 on store). Callers (`reference.ts`) have checked the arguments.
 *
 * @module
 */

/** out = alpha * x + beta * y; a term with coefficient 0 is skipped; out may alias x or y. */
export function axpbyKernel(
  x: Float32Array,
  y: Float32Array,
  out: Float32Array,
  alpha: number,
  beta: number,
  n: number,
): void {
  if (beta === 0) {
    for (let i = 0; i < n; i++) out[i] = alpha * x[i];
  } else if (alpha === 0) {
    for (let i = 0; i < n; i++) out[i] = beta * y[i];
  } else {
    for (let i = 0; i < n; i++) out[i] = alpha * x[i] + beta * y[i];
  }
}

/** out = a * b. */
export function mulKernel(a: Float32Array, b: Float32Array, out: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) out[i] = a[i] * b[i];
}

/** y = max(x, 0); NaN stays NaN. */
export function reluKernel(x: Float32Array, y: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) y[i] = x[i] < 0 ? 0 : x[i];
}

/** dx = dy where y > 0, else 0. */
export function reluBackwardKernel(
  y: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  n: number,
): void {
  for (let i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : 0;
}

/** alpha * sum(x[0..n)), accumulated in f64. */
export function sumKernel(x: Float32Array, alpha: number, n: number): number {
  let total = 0;
  for (let i = 0; i < n; i++) total += x[i];
  return alpha * total;
}

/** Hyper-parameters of one SGD step. */
export interface SgdHyper {
  lr: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
}

/**
 * PyTorch SGD (dampening 0), in place: g = grad + wd * param; buf = momentum * buf + g;
 * param -= lr * (nesterov ? g + momentum * buf : buf).
 */
export function sgdKernel(
  param: Float32Array,
  grad: Float32Array,
  buf: Float32Array,
  n: number,
  o: SgdHyper,
): void {
  const { lr, momentum, weightDecay, nesterov } = o;
  for (let i = 0; i < n; i++) {
    const g = grad[i] + weightDecay * param[i];
    const b = momentum * buf[i] + g;
    buf[i] = b;
    param[i] = param[i] - lr * (nesterov ? g + momentum * b : b);
  }
}
