/**
 * The tolerance of the naive-oracle tests: the reference rounds each f64 result once, so it must
 * agree with an f64 oracle within one rounding of the result (2^-23 relative for f32, 2^-8 for
 * bf16) plus 1e-9 of the size of the terms the output sums (f64 summation orders differ).
 *
 * @module
 */

/** One f32 rounding of the result, relative (with a factor 2 of margin). */
export const F32_TOL = 2 ** -23;
/** One bf16 rounding of the result, relative. */
export const BF16_TOL = 2 ** -8;

/**
 * Asserts |got - want| <= rel |want| + 1e-9 scale (+ the smallest bf16 subnormal) per element;
 * `scale` is per element or one number for the whole output.
 */
export function assertNear(
  what: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  scale: ArrayLike<number> | number,
  rel = F32_TOL,
): void {
  if (got.length !== want.length) {
    throw new Error(`${what}: ${got.length} values, want ${want.length}`);
  }
  for (let i = 0; i < want.length; i++) {
    const s = typeof scale === "number" ? scale : scale[i];
    const tol = rel * Math.abs(want[i]) + 1e-9 * Math.abs(s) + 2 ** -133;
    if (!(Math.abs(got[i] - want[i]) <= tol)) {
      throw new Error(`reference ${what}[${i}] = ${got[i]}, naive ${want[i]} (tol ${tol})`);
    }
  }
}

/** The largest |v|. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
