/**
 * bfloat16 on the host: conversions between f32 values and bf16 bits (the upper 16 bits of an
 * f32), rounding to nearest even as hardware casts do. Shared by every backend (the reference
 * computes in f64 and rounds with these) and by file formats.
 *
 * @module
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * The bf16 bits nearest to `x` (ties to even), rounded once from the exact value of `x` (an f64
 * number, so f64 results of a computation are not first rounded to f32: that double rounding
 * could break ties the wrong way). NaN stays a quiet NaN (sign kept); values beyond the largest
 * bf16 by half a unit or more become infinity.
 */
export function f64ToBf16(x: number): number {
  f32[0] = x;
  let bits = u32[0];
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0) {
    return ((bits >>> 16) | 0x0040) & 0xffff; // quiet NaN, sign kept
  }
  const r = f32[0];
  if (r !== x && Number.isFinite(x)) {
    // Round to odd into f32 (truncate toward zero, set the sticky last bit): f32 keeps 16 more
    // bits than bf16, so rounding that to nearest even equals rounding x itself.
    if (Math.abs(r) > Math.abs(x)) bits -= 1;
    bits = (bits | 1) >>> 0;
  }
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** The bf16 bits nearest to `x` (ties to even); see {@link f64ToBf16}. */
export function f32ToBf16(x: number): number {
  return f64ToBf16(x);
}

/** The f32 value of bf16 bits (exact). */
export function bf16ToF32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

/** Rounds every value of `src` to bf16 bits. */
export function f32ArrayToBf16(
  src: ArrayLike<number>,
  out: Uint16Array = new Uint16Array(src.length),
): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = f32ToBf16(src[i]);
  return out;
}

/** The f32 values of bf16 bits. */
export function bf16ArrayToF32(
  src: Uint16Array,
  out: Float32Array = new Float32Array(src.length),
): Float32Array {
  for (let i = 0; i < src.length; i++) out[i] = bf16ToF32(src[i]);
  return out;
}

/** `x` rounded to the nearest bf16 value, as a number (for f64 reference computations). */
export function roundToBf16(x: number): number {
  return bf16ToF32(f64ToBf16(x));
}
