/*
 * Row-wise log-softmax of the cpu backend, in the reference backend's arithmetic: per row the
 * maximum (NaN never compares greater, as in the reference), the sum of exp(x - max) accumulated
 * in f64, shift = max + log(sum) in f64, y = x - shift rounded once to f32. The exponentials are
 * f32 (Cephes' polynomial, about 1 ulp, 8 lanes at a time; the C library's expf for a row's tail),
 * so y is within ~1e-7 absolute of the reference's f64 exp. oneDNN 2.6.3's log-softmax primitive
 * approximates the logarithm (errors up to ~4e-6 absolute, any relative error near 0), which made
 * finite-difference checks of its gradient fail for some inputs. IEEE special values propagate as
 * in the reference (a NaN makes its row NaN; -inf - -inf = NaN). Rows in parallel.
 */

#include <immintrin.h>
#include <math.h>
#include <stdint.h>

/* exp of 8 values <= 0 (or NaN): Cephes expf; below -87.33 (and -inf) 0, NaN stays NaN. */
static inline __m256 exp_nonpositive(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3365f);
  const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  __m256 v = _mm256_max_ps(lo, x); /* maxps returns its second operand (x) when x is NaN */
  __m256 n = _mm256_round_ps(_mm256_mul_ps(v, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), v);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  __m256 e = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
  /* 2^n: n in [-126, 0] here, a valid exponent field. (NaN lanes: n is NaN; masked below.) */
  __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  e = _mm256_mul_ps(e, _mm256_castsi256_ps(bits));
  e = _mm256_blendv_ps(e, r, _mm256_cmp_ps(x, x, _CMP_UNORD_Q)); /* NaN in, NaN out */
  return _mm256_andnot_ps(under, e);
}

void ressl_log_softmax_f32(const float *x, float *y, int64_t rows, int64_t cols, int32_t threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    /* maxps(x, m) keeps m when x is NaN: NaN never becomes the maximum, as `x > max` in the
     * reference; equal values (+0, -0) keep the earlier one, which changes nothing below. */
    __m256 mv = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= cols; i += 8) mv = _mm256_max_ps(_mm256_loadu_ps(xr + i), mv);
    float ml[8];
    _mm256_storeu_ps(ml, mv);
    double max = -INFINITY;
    for (int l = 0; l < 8; l++) {
      if ((double)ml[l] > max) max = (double)ml[l];
    }
    for (; i < cols; i++) {
      if ((double)xr[i] > max) max = (double)xr[i];
    }
    __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
    const __m256 m8 = _mm256_set1_ps((float)max);
    int64_t j = 0;
    if (isfinite(max)) {
      for (; j + 8 <= cols; j += 8) {
        __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(xr + j), m8));
        acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
      }
    }
    double lanes[8];
    _mm256_storeu_pd(lanes, acc0);
    _mm256_storeu_pd(lanes + 4, acc1);
    double total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
                   ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    for (; j < cols; j++) total += (double)expf((float)((double)xr[j] - max));
    const double shift = max + log(total);
    const __m256d s4 = _mm256_set1_pd(shift);
    int64_t k = 0;
    for (; k + 8 <= cols; k += 8) {
      __m256 v = _mm256_loadu_ps(xr + k);
      __m128 lo = _mm256_cvtpd_ps(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), s4));
      __m128 hi = _mm256_cvtpd_ps(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), s4));
      _mm256_storeu_ps(yr + k, _mm256_set_m128(hi, lo));
    }
    for (; k < cols; k++) yr[k] = (float)((double)xr[k] - shift);
  }
}
