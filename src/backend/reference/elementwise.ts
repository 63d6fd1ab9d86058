/**
 * Elementwise kernels of the reference backend and `cast`, on host arrays: values combined in f64
 * and rounded once on store (to f32, or to bf16 where the kernel table allows it). The backend
 * has validated every call against the kernel table before these run.
 *
 * @module
 */

import type { Opts } from "../backend.ts";
import { bf16ToF32, f64ToBf16 } from "../bf16.ts";
import { dataOf, f32Of, readFloat, writeFloat } from "./storage.ts";

/** `copy`: dst[dstOffset..] = src[srcOffset..] (overlapping ranges of one storage allowed). */
export function copy(o: Opts<"copy">): void {
  const src = dataOf(o.src), dst = dataOf(o.dst);
  const { srcOffset, dstOffset, length } = o;
  if (src === dst) dst.copyWithin(dstOffset, srcOffset, srcOffset + length);
  else dst.set(src.subarray(srcOffset, srcOffset + length), dstOffset);
}

/** `cast`: f32 -> bf16 rounds to nearest even (NaN stays NaN, overflow gives infinity). */
export function cast(o: Opts<"cast">): void {
  const x = dataOf(o.x), y = dataOf(o.y), n = o.n;
  if (o.x.dtype === o.y.dtype) {
    y.set(x.subarray(0, n));
  } else if (o.y.dtype === "bf16") {
    for (let i = 0; i < n; i++) y[i] = f64ToBf16(x[i]);
  } else {
    for (let i = 0; i < n; i++) y[i] = bf16ToF32(x[i]);
  }
}

/** `axpby`: out = alpha x + beta y; a term whose coefficient is 0 is skipped (NaN included). */
export function axpby(o: Opts<"axpby">): void {
  const { alpha, beta, n } = o;
  const x = readFloat(o.x), y = readFloat(o.y);
  writeFloat(o.out, (out) => {
    if (beta === 0) {
      for (let i = 0; i < n; i++) out[i] = alpha * x[i];
    } else if (alpha === 0) {
      for (let i = 0; i < n; i++) out[i] = beta * y[i];
    } else {
      for (let i = 0; i < n; i++) out[i] = alpha * x[i] + beta * y[i];
    }
  });
}

/** `mul`: out = a * b. */
export function mul(o: Opts<"mul">): void {
  const a = f32Of(o.a), b = f32Of(o.b), out = f32Of(o.out);
  for (let i = 0; i < o.n; i++) out[i] = a[i] * b[i];
}

/** `broadcastScalar`: out[i] = alpha s[0]. */
export function broadcastScalar(o: Opts<"broadcastScalar">): void {
  f32Of(o.out).fill(o.alpha * f32Of(o.s)[0], 0, o.n);
}

/** `relu`: y = max(x, 0); NaN stays NaN (as PyTorch). */
export function relu(o: Opts<"relu">): void {
  const x = readFloat(o.x), n = o.n;
  writeFloat(o.y, (y) => {
    for (let i = 0; i < n; i++) y[i] = x[i] < 0 ? 0 : x[i];
  });
}

/** `reluBackward`: dx = dy where y > 0, else 0. */
export function reluBackward(o: Opts<"reluBackward">): void {
  const y = readFloat(o.y), dy = readFloat(o.dy), n = o.n;
  writeFloat(o.dx, (dx) => {
    for (let i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : 0;
  });
}

/** `sum`: out[0] = alpha sum(x), accumulated in f64. */
export function sum(o: Opts<"sum">): void {
  const x = f32Of(o.x);
  let total = 0;
  for (let i = 0; i < o.n; i++) total += x[i];
  f32Of(o.out)[0] = o.alpha * total;
}
