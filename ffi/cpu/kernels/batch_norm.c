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
 * Build: scripts/setup_cpu.sh (cc -O3 -march=x86-64-v3 -fopenmp, no -ffast-math: the NaN
 * semantics above need IEEE comparisons).
 */

#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#define RESSL_BN_ERR_ARGS -1
#define RESSL_BN_ERR_SCRATCH -2

/* The geometry of one call (see the header comment). */
typedef struct {
  int64_t n, blocks, hw, lanes, c;
} geom_t;

static int geom_init(geom_t *g, int64_t n, int64_t c, int64_t hw, int64_t lanes) {
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

/*
 * Bytes of scratch a call needs (the caller's, so nothing is allocated per call): the per-image
 * partial sums, 2 x n x padded channels f64, then four per-channel f32 vectors. 0: bad geometry.
 */
int64_t ressl_bn_scratch_bytes(int64_t n, int64_t c, int64_t hw, int64_t lanes) {
  geom_t g;
  if (geom_init(&g, n, c, hw, lanes) != 0) return 0;
  return (int64_t)sizeof(double) * 2 * g.n * padded(&g) + (int64_t)sizeof(float) * 4 * padded(&g);
}

/* Channel k's totals of the per-image partial sums s1, s2 ([n][cp]), added over the images in
 * order (what makes every result independent of the thread count). */
static void channel_totals(const double *s1, const double *s2, int64_t n, int64_t cp, int64_t k,
                           double *a, double *q) {
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

/* ---- forward ----------------------------------------------------------------------------- */

/* Sums of d = x - pivot and d^2 over one task (lanes per pixel, hw pixels) into s1, s2. */
static void sums_task(const geom_t *g, const float *x, const float *pivot, double *s1,
                      double *s2) {
  const int64_t hw = g->hw;
  if (g->lanes == 16) {
    __m256d p[4], a[4], q[4];
    for (int h = 0; h < 4; h++) {
      p[h] = _mm256_cvtps_pd(_mm_loadu_ps(pivot + 4 * h));
      a[h] = q[h] = _mm256_setzero_pd();
    }
    for (int64_t i = 0; i < hw; i++) {
      acc_diff(_mm256_loadu_ps(x + 16 * i), p[0], p[1], a, q);
      acc_diff(_mm256_loadu_ps(x + 16 * i + 8), p[2], p[3], a + 2, q + 2);
    }
    for (int h = 0; h < 4; h++) {
      _mm256_storeu_pd(s1 + 4 * h, a[h]);
      _mm256_storeu_pd(s2 + 4 * h, q[h]);
    }
  } else if (g->lanes == 1) {
    __m256d p = _mm256_set1_pd((double)pivot[0]), a[2], q[2];
    a[0] = a[1] = q[0] = q[1] = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= hw; i += 8) acc_diff(_mm256_loadu_ps(x + i), p, p, a, q);
    double ta = hsum(a), tq = hsum(q);
    for (; i < hw; i++) {
      double d = (double)x[i] - (double)pivot[0];
      ta += d;
      tq += d * d;
    }
    *s1 = ta;
    *s2 = tq;
  } else {
    for (int64_t l = 0; l < g->lanes; l++) s1[l] = s2[l] = 0;
    for (int64_t i = 0; i < hw; i++) {
      for (int64_t l = 0; l < g->lanes; l++) {
        double d = (double)x[i * g->lanes + l] - (double)pivot[l];
        s1[l] += d;
        s2[l] += d * d;
      }
    }
  }
}

/* y over one task: z = (x - mu) * scale + beta (+ residual), ReLU when `relu`. */
static void normalize_task(const geom_t *g, const float *x, const float *r, float *y,
                           const float *mu, const float *sc, const float *be, int relu) {
  const int64_t hw = g->hw;
  if (g->lanes == 16 || g->lanes == 1) {
    const int per = (int)g->lanes;
    __m256 m[2], s[2], b[2];
    for (int h = 0; h < 2; h++) {
      m[h] = per == 16 ? _mm256_loadu_ps(mu + 8 * h) : _mm256_set1_ps(mu[0]);
      s[h] = per == 16 ? _mm256_loadu_ps(sc + 8 * h) : _mm256_set1_ps(sc[0]);
      b[h] = per == 16 ? _mm256_loadu_ps(be + 8 * h) : _mm256_set1_ps(be[0]);
    }
    const int64_t total = hw * per;
    int64_t k = 0;
    for (; k + 8 <= total; k += 8) {
      int h = per == 16 ? (int)((k >> 3) & 1) : 0;
      __m256 z = _mm256_fmadd_ps(_mm256_sub_ps(_mm256_loadu_ps(x + k), m[h]), s[h], b[h]);
      if (r) z = _mm256_add_ps(z, _mm256_loadu_ps(r + k));
      if (relu) z = relu8(z);
      _mm256_storeu_ps(y + k, z);
    }
    for (; k < total; k++) { /* lanes == 1 tail */
      float z = fmaf(x[k] - mu[0], sc[0], be[0]);
      if (r) z += r[k];
      if (relu) z = z < 0.0f ? 0.0f : z;
      y[k] = z;
    }
    return;
  }
  for (int64_t i = 0; i < hw; i++) {
    for (int64_t l = 0; l < g->lanes; l++) {
      int64_t k = i * g->lanes + l;
      float z = fmaf(x[k] - mu[l], sc[l], be[l]);
      if (r) z += r[k];
      if (relu) z = z < 0.0f ? 0.0f : z;
      y[k] = z;
    }
  }
}

/* Zeroes the padded lanes of the last block of every image (nChw16c with c % 16 != 0). */
static void zero_padding(const geom_t *g, float *y, int threads) {
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

/*
 * Training forward. x, residual (may be NULL), y: the activations in the layout above; gamma,
 * beta, mean, variance: c floats; scratch: ressl_bn_scratch_bytes() bytes, 8-byte aligned. Writes
 * the batch mean and biased variance. Returns 0, or a negative error code (bad geometry or
 * scratch).
 */
int ressl_bn_forward_training(const float *x, const float *residual, float *y, const float *gamma,
                              const float *beta, float *mean, float *variance, int64_t n,
                              int64_t c, int64_t hw, int64_t lanes, double eps, int32_t relu,
                              int32_t threads, void *scratch, int64_t scratch_bytes) {
  geom_t g;
  if (geom_init(&g, n, c, hw, lanes) != 0 || threads < 1) return RESSL_BN_ERR_ARGS;
  if (!scratch || scratch_bytes < ressl_bn_scratch_bytes(n, c, hw, lanes)) return RESSL_BN_ERR_SCRATCH;
  const int64_t cp = padded(&g), tasks = g.n * g.blocks;
  double *s1 = scratch, *s2 = s1 + g.n * cp;
  float *vec = (float *)(s2 + g.n * cp);
  float *pivot = vec, *mu = vec + cp, *sc = vec + 2 * cp, *be = vec + 3 * cp;
  for (int64_t b = 0; b < g.blocks; b++) {
    for (int64_t l = 0; l < g.lanes; l++) {
      pivot[b * g.lanes + l] = (g.lanes == 1) ? x[task_base(&g, 0, b)] : x[task_base(&g, 0, b) + l];
    }
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t t = 0; t < tasks; t++) {
    int64_t i = t / g.blocks, b = t % g.blocks;
    const float *xt = x + task_base(&g, i, b);
    double *o1 = s1 + i * cp + b * g.lanes, *o2 = s2 + i * cp + b * g.lanes;
    sums_task(&g, xt, pivot + b * g.lanes, o1, o2);
  }
  const double count = (double)g.n * (double)g.hw;
  for (int64_t k = 0; k < cp; k++) {
    if (k >= g.c) {
      mu[k] = sc[k] = be[k] = 0.0f;
      continue;
    }
    double a, q;
    channel_totals(s1, s2, g.n, cp, k, &a, &q);
    double m = a / count;
    double v = q / count - m * m;
    if (v < 0) v = 0;
    double meanK = (double)pivot[k] + m;
    mean[k] = (float)meanK;
    variance[k] = (float)v;
    mu[k] = (float)meanK;
    sc[k] = (float)((double)gamma[k] / sqrt(v + eps));
    be[k] = beta[k];
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t t = 0; t < tasks; t++) {
    int64_t i = t / g.blocks, b = t % g.blocks, o = task_base(&g, i, b);
    normalize_task(&g, x + o, residual ? residual + o : 0, y + o, mu + b * g.lanes,
                   sc + b * g.lanes, be + b * g.lanes, relu);
  }
  zero_padding(&g, y, threads);
  return 0;
}

/* ---- backward ---------------------------------------------------------------------------- */

/*
 * Sums of g and g * (x - mu) over one task, g = mask(dy, y) with `relu` (y may be NULL without);
 * writes g to dres when given.
 */
static void grad_sums_task(const geom_t *g, const float *x, const float *dy, const float *y,
                           float *dres, const float *mu, double *s1, double *s2, int relu) {
  const int64_t hw = g->hw;
  if (g->lanes == 16 || g->lanes == 1) {
    const int per = (int)g->lanes;
    __m256d p[4], a[4], q[4];
    for (int h = 0; h < 4; h++) {
      p[h] = per == 16 ? _mm256_cvtps_pd(_mm_loadu_ps(mu + 4 * h)) : _mm256_set1_pd(mu[0]);
      a[h] = q[h] = _mm256_setzero_pd();
    }
    const int64_t total = hw * per;
    int64_t k = 0;
    for (; k + 8 <= total; k += 8) {
      int h = per == 16 ? (int)(2 * ((k >> 3) & 1)) : 0;
      __m256 gv = _mm256_loadu_ps(dy + k);
      if (relu) gv = mask8(gv, _mm256_loadu_ps(y + k));
      if (dres) _mm256_storeu_ps(dres + k, gv);
      acc_prod(gv, _mm256_loadu_ps(x + k), p[h], p[h + 1], a + h, q + h);
    }
    if (per == 16) {
      for (int h = 0; h < 4; h++) {
        _mm256_storeu_pd(s1 + 4 * h, a[h]);
        _mm256_storeu_pd(s2 + 4 * h, q[h]);
      }
      return;
    }
    double ta = hsum(a), tq = hsum(q);
    for (; k < total; k++) {
      float gv = relu ? (y[k] > 0.0f ? dy[k] : 0.0f) : dy[k];
      if (dres) dres[k] = gv;
      ta += (double)gv;
      tq += (double)gv * ((double)x[k] - (double)mu[0]);
    }
    *s1 = ta;
    *s2 = tq;
    return;
  }
  for (int64_t l = 0; l < g->lanes; l++) s1[l] = s2[l] = 0;
  for (int64_t i = 0; i < hw; i++) {
    for (int64_t l = 0; l < g->lanes; l++) {
      int64_t k = i * g->lanes + l;
      float gv = relu ? (y[k] > 0.0f ? dy[k] : 0.0f) : dy[k];
      if (dres) dres[k] = gv;
      s1[l] += (double)gv;
      s2[l] += (double)gv * ((double)x[k] - (double)mu[l]);
    }
  }
}

/* dx = A g + (B (x - mu) + C) over one task (per-lane coefficients). */
static void grad_apply_task(const geom_t *g, const float *x, const float *dy, const float *y,
                            float *dx, const float *mu, const float *ca, const float *cb,
                            const float *cc, int relu) {
  const int64_t hw = g->hw;
  if (g->lanes == 16 || g->lanes == 1) {
    const int per = (int)g->lanes;
    __m256 m[2], A[2], B[2], C[2];
    for (int h = 0; h < 2; h++) {
      m[h] = per == 16 ? _mm256_loadu_ps(mu + 8 * h) : _mm256_set1_ps(mu[0]);
      A[h] = per == 16 ? _mm256_loadu_ps(ca + 8 * h) : _mm256_set1_ps(ca[0]);
      B[h] = per == 16 ? _mm256_loadu_ps(cb + 8 * h) : _mm256_set1_ps(cb[0]);
      C[h] = per == 16 ? _mm256_loadu_ps(cc + 8 * h) : _mm256_set1_ps(cc[0]);
    }
    const int64_t total = hw * per;
    int64_t k = 0;
    for (; k + 8 <= total; k += 8) {
      int h = per == 16 ? (int)((k >> 3) & 1) : 0;
      __m256 gv = _mm256_loadu_ps(dy + k);
      if (relu) gv = mask8(gv, _mm256_loadu_ps(y + k));
      __m256 lin = _mm256_fmadd_ps(B[h], _mm256_sub_ps(_mm256_loadu_ps(x + k), m[h]), C[h]);
      _mm256_storeu_ps(dx + k, _mm256_fmadd_ps(A[h], gv, lin));
    }
    for (; k < total; k++) {
      float gv = relu ? (y[k] > 0.0f ? dy[k] : 0.0f) : dy[k];
      dx[k] = fmaf(ca[0], gv, fmaf(cb[0], x[k] - mu[0], cc[0]));
    }
    return;
  }
  for (int64_t i = 0; i < hw; i++) {
    for (int64_t l = 0; l < g->lanes; l++) {
      int64_t k = i * g->lanes + l;
      float gv = relu ? (y[k] > 0.0f ? dy[k] : 0.0f) : dy[k];
      dx[k] = fmaf(ca[l], gv, fmaf(cb[l], x[k] - mu[l], cc[l]));
    }
  }
}

/*
 * Backward. y is read only with `relu` (may be NULL otherwise); dresidual may be NULL. With
 * M = n * hw, xhat = (x - mean) / sqrt(variance + eps): dbeta = sum(g), dgamma = sum(g xhat),
 * dx = gamma / sqrt(variance + eps) * (g - dbeta / M - xhat dgamma / M).
 */
int ressl_bn_backward(const float *x, const float *dy, const float *y, const float *gamma,
                      const float *mean, const float *variance, float *dx, float *dgamma,
                      float *dbeta, float *dresidual, int64_t n, int64_t c, int64_t hw,
                      int64_t lanes, double eps, int32_t relu, int32_t threads, void *scratch,
                      int64_t scratch_bytes) {
  geom_t g;
  if (geom_init(&g, n, c, hw, lanes) != 0 || threads < 1) return RESSL_BN_ERR_ARGS;
  if (relu && !y) return RESSL_BN_ERR_ARGS;
  if (!scratch || scratch_bytes < ressl_bn_scratch_bytes(n, c, hw, lanes)) return RESSL_BN_ERR_SCRATCH;
  const int64_t cp = padded(&g), tasks = g.n * g.blocks;
  double *s1 = scratch, *s2 = s1 + g.n * cp;
  float *vec = (float *)(s2 + g.n * cp);
  float *mu = vec, *ca = vec + cp, *cb = vec + 2 * cp, *cc = vec + 3 * cp;
  for (int64_t k = 0; k < cp; k++) mu[k] = k < g.c ? mean[k] : 0.0f;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t t = 0; t < tasks; t++) {
    int64_t i = t / g.blocks, b = t % g.blocks, o = task_base(&g, i, b);
    grad_sums_task(&g, x + o, dy + o, relu ? y + o : 0, dresidual ? dresidual + o : 0,
                   mu + b * g.lanes, s1 + i * cp + b * g.lanes, s2 + i * cp + b * g.lanes, relu);
  }
  const double count = (double)g.n * (double)g.hw;
  for (int64_t k = 0; k < cp; k++) {
    if (k >= g.c) {
      ca[k] = cb[k] = cc[k] = 0.0f;
      continue;
    }
    double a, q;
    channel_totals(s1, s2, g.n, cp, k, &a, &q);
    double inv = 1.0 / sqrt((double)variance[k] + eps);
    double sgx = q * inv; /* sum(g * xhat) */
    double A = (double)gamma[k] * inv;
    dbeta[k] = (float)a;
    dgamma[k] = (float)sgx;
    ca[k] = (float)A;
    cb[k] = (float)(-A * inv * sgx / count);
    cc[k] = (float)(-A * a / count);
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t t = 0; t < tasks; t++) {
    int64_t i = t / g.blocks, b = t % g.blocks, o = task_base(&g, i, b);
    /* With dresidual, it holds g already: one stream instead of dy and y. */
    if (dresidual) {
      grad_apply_task(&g, x + o, dresidual + o, 0, dx + o, mu + b * g.lanes, ca + b * g.lanes,
                      cb + b * g.lanes, cc + b * g.lanes, 0);
    } else {
      grad_apply_task(&g, x + o, dy + o, relu ? y + o : 0, dx + o, mu + b * g.lanes,
                      ca + b * g.lanes, cb + b * g.lanes, cc + b * g.lanes, relu);
    }
  }
  zero_padding(&g, dx, threads);
  return 0;
}
