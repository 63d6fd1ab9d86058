/*
 * Batch norm of the cpu backend, backward: g = relu ? (y > 0 ? dy : 0) : dy, dresidual = g, dx,
 * dgamma, dbeta, in two passes over the activations (layout, numerics and NaN semantics:
 * batch_norm.h).
 */

#include "batch_norm.h"

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
