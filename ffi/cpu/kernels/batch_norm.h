/*
 * Batch norm of the cpu backend in f32, fused as the backend contract allows:
 *   forward (training): batch mean and biased variance per channel, y = act(bn(x) + residual);
 *   backward: g = relu ? (y > 0 ? dy : 0) : dy, dresidual = g, dx, dgamma, dbeta.
 * Two passes over the activations each way (oneDNN 2.6.3's batch norm plus the separate residual
 * add / ReLU-mask primitives make five to six), on the calling thread's OpenMP team.
 *
 * Layout: the data are viewed as [n][blocks][hw][lanes] with channel = block * lanes + lane:
 *   nChw16c (oneDNN's aBcd16b):  lanes = 16, blocks = ceil(c / 16), padded lanes are written 0;
 *   plain NCHW, hw > 1:          lanes = 1,  blocks = c;
 *   plain [n, c] (hw = 1):       lanes = c,  blocks = 1.
 *
 * Numerics: every per-channel sum is accumulated in f64, first per (image, channel) and then over
 * the images in order, so results do not depend on the thread count. The forward sums are of
 * x - pivot (pivot = the channel's first element), which keeps E[(x - p)^2] - E[x - p]^2 free of
 * cancellation whenever the channel's values are not all far from its first one.
 * NaN follows the reference backend: ReLU is `z < 0 ? 0 : z` (NaN stays NaN) and the backward mask
 * selects (a masked position gives 0 whatever dy holds). Non-finite statistics or gradient sums are
 * left for the caller to handle (the cpu backend reruns such calls on its reference path).
 *
 * This header holds what the forward (batch_norm_forward.c) and the backward
 * (batch_norm_backward.c) share: the geometry, the ordered channel totals and the vector helpers.
 *
 * Build: scripts/setup_cpu.sh (cc -O3 -march=x86-64-v3 -fopenmp, no -ffast-math: the NaN
 * semantics above need IEEE comparisons).
 */

#ifndef RESSL_BATCH_NORM_H
#define RESSL_BATCH_NORM_H

#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#define RESSL_BN_ERR_ARGS -1
#define RESSL_BN_ERR_SCRATCH -2

/* The geometry of one call (see the header comment). */
typedef struct {
  int64_t n, blocks, hw, lanes, c;
} geom_t;

static inline int geom_init(geom_t *g, int64_t n, int64_t c, int64_t hw, int64_t lanes) {
  if (n <= 0 || c <= 0 || hw <= 0) return RESSL_BN_ERR_ARGS;
  g->n = n;
  g->c = c;
  if (lanes == 16) {
    g->lanes = 16;
    g->blocks = (c + 15) / 16;
    g->hw = hw;
  } else if (lanes == 1 && hw > 1) {
    g->lanes = 1;
    g->blocks = c;
    g->hw = hw;
  } else if (lanes == 1) {
    g->lanes = c;
    g->blocks = 1;
    g->hw = 1;
  } else {
    return RESSL_BN_ERR_ARGS;
  }
  return 0;
}

/* Padded channel count (blocks * lanes): the length of every per-channel scratch row. */
static inline int64_t padded(const geom_t *g) { return g->blocks * g->lanes; }

/* Bytes of scratch a call needs (batch_norm_forward.c). */
int64_t ressl_bn_scratch_bytes(int64_t n, int64_t c, int64_t hw, int64_t lanes);

/* Channel k's totals of the per-image partial sums s1, s2 ([n][cp]), added over the images in
 * order (what makes every result independent of the thread count). */
static inline void channel_totals(const double *s1, const double *s2, int64_t n, int64_t cp,
                                  int64_t k, double *a, double *q) {
  double ta = 0, tq = 0;
  for (int64_t i = 0; i < n; i++) {
    ta += s1[i * cp + k];
    tq += s2[i * cp + k];
  }
  *a = ta;
  *q = tq;
}

/* Offset of the first element of (image i, block b). */
static inline int64_t task_base(const geom_t *g, int64_t i, int64_t b) {
  return (i * g->blocks + b) * g->hw * g->lanes;
}

/* ---- vector helpers (AVX2 + FMA: x86-64-v3) ---------------------------------------------- */

/* Adds the 8 f32 values of v - p to a (two f64 halves) and their squares to q. */
static inline void acc_diff(__m256 v, __m256d p_lo, __m256d p_hi, __m256d *a, __m256d *q) {
  __m256d lo = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), p_lo);
  __m256d hi = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), p_hi);
  a[0] = _mm256_add_pd(a[0], lo);
  a[1] = _mm256_add_pd(a[1], hi);
  q[0] = _mm256_fmadd_pd(lo, lo, q[0]);
  q[1] = _mm256_fmadd_pd(hi, hi, q[1]);
}

/* Adds the 8 values of g to a and g * (v - p) to q (f64). */
static inline void acc_prod(__m256 g, __m256 v, __m256d p_lo, __m256d p_hi, __m256d *a,
                            __m256d *q) {
  __m256d g_lo = _mm256_cvtps_pd(_mm256_castps256_ps128(g));
  __m256d g_hi = _mm256_cvtps_pd(_mm256_extractf128_ps(g, 1));
  __m256d lo = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), p_lo);
  __m256d hi = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), p_hi);
  a[0] = _mm256_add_pd(a[0], g_lo);
  a[1] = _mm256_add_pd(a[1], g_hi);
  q[0] = _mm256_fmadd_pd(g_lo, lo, q[0]);
  q[1] = _mm256_fmadd_pd(g_hi, hi, q[1]);
}

/* Horizontal sum of the 8 f64 values of a[0..1], in a fixed order. */
static inline double hsum(const __m256d *a) {
  double t[8];
  _mm256_storeu_pd(t, a[0]);
  _mm256_storeu_pd(t + 4, a[1]);
  return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}

/* ReLU as `z < 0 ? 0 : z` (maxps returns its second operand when either is NaN or both zero). */
static inline __m256 relu8(__m256 z) { return _mm256_max_ps(_mm256_setzero_ps(), z); }

/* The masked gradient: dy where y > 0 (ordered: a NaN y masks), else +0. */
static inline __m256 mask8(__m256 dy, __m256 y) {
  return _mm256_and_ps(_mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ), dy);
}

/* Zeroes the padded lanes of the last block of every image (nChw16c with c % 16 != 0). */
static inline void zero_padding(const geom_t *g, float *y, int threads) {
  if (g->lanes != 16 || g->c % 16 == 0) return;
  int64_t first = g->c % 16;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < g->n; i++) {
    float *v = y + task_base(g, i, g->blocks - 1);
    for (int64_t p = 0; p < g->hw; p++) {
      for (int64_t l = first; l < 16; l++) v[p * 16 + l] = 0.0f;
    }
  }
}

#endif
