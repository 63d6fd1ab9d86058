/*
 * Batch norm of the cpu backend, training forward: batch mean and biased variance per channel,
 * y = act(bn(x) + residual), in two passes over the activations (layout, numerics and NaN
 * semantics: batch_norm.h).
 */

#include "batch_norm.h"

/*
 * Bytes of scratch a call needs (the caller's, so nothing is allocated per call): the per-image
 * partial sums, 2 x n x padded channels f64, then four per-channel f32 vectors. 0: bad geometry.
 */
int64_t ressl_bn_scratch_bytes(int64_t n, int64_t c, int64_t hw, int64_t lanes) {
  geom_t g;
  if (geom_init(&g, n, c, hw, lanes) != 0) return 0;
  return (int64_t)sizeof(double) * 2 * g.n * padded(&g) + (int64_t)sizeof(float) * 4 * padded(&g);
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
