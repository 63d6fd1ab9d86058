/**
 * Conversions between f32 and the 16-bit float formats, as raw bits in `Uint16Array`s:
 * bfloat16 (the upper half of an f32: 8-bit exponent, 7-bit mantissa) and IEEE half precision
 * (f16: 5-bit exponent, 10-bit mantissa). Widening to f32 is exact; narrowing rounds to the nearest
 * value, ties to even (as PyTorch's `tensor.to(torch.bfloat16)` / `.half()`), overflowing to
 * infinity; NaN stays NaN (bfloat16: a quiet NaN with the sign kept, as `src/backend/bf16.ts`, whose
 * rounding these bf16 helpers use so that files and backends round alike).
 *
 * @module
 */

import { bf16ArrayToF32, f32ArrayToBf16 } from "../backend/bf16.ts";

/** bfloat16 bits to f32 values (exact). */
export function bf16ToF32(bits: Uint16Array): Float32Array {
  return bf16ArrayToF32(bits);
}

/** f32 values to bfloat16 bits, rounding to nearest even (the backends' one rounding rule). */
export function f32ToBf16(values: Float32Array): Uint16Array {
  return f32ArrayToBf16(values);
}

/** f16 bits to f32 values (exact). */
export function f16ToF32(bits: Uint16Array): Float32Array {
  return new Float32Array(new Float16Array(bits.buffer, bits.byteOffset, bits.length));
}

/** f32 values to f16 bits, rounding to nearest even (values beyond 65504 become infinite). */
export function f32ToF16(values: Float32Array): Uint16Array {
  const h = Float16Array.from(values);
  return new Uint16Array(h.buffer);
}

/**
 * The index of the first value of `values` that `round` changes (NaN counts as unchanged), or -1:
 * whether a narrowing conversion would be exact.
 */
export function firstInexact(
  values: ArrayLike<number>,
  round: (v: number) => number,
): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (round(v) !== v && !Number.isNaN(v)) return i;
  }
  return -1;
}

/** `v` rounded to the nearest bfloat16 (through f32: exact for f32 inputs). */
export function bf16Round(v: number): number {
  return bf16ToF32(f32ToBf16(Float32Array.of(v)))[0];
}
