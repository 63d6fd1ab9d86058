/*
 * Elementwise kernels of the cpu backend that were TypeScript loops: the optimiser's SGD (plain
 * and Nesterov) and EMA updates, and the f64 sum of a vector. Each element is computed in f64 and
 * rounded once on store, in the same operation order as the TypeScript loops they replace
 * (`src/backend/cpu/optim.ts`), so results are bit-identical to them and to the reference backend:
 * the library is compiled with -ffp-contract=off (no fused multiply-add where C writes a * b + c).
 * Multi-threaded over contiguous ranges (elementwise: the split changes nothing); the sum adds
 * fixed 4096-element chunks in order, so its result does not depend on the thread count either.
 */

#include <stdint.h>

/* d = scale (g + wd p); buf = m buf + d; p -= lr buf (plain) or p -= lr (d + m buf) (Nesterov). */
void ressl_sgd_f32(float *param, const float *grad, float *buf, int64_t n, double lr, double m,
                   double wd, double scale, int32_t nesterov, int32_t threads) {
  if (nesterov) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; i++) {
      double p = param[i];
      double d = scale * ((double)grad[i] + wd * p);
      double b = m * (double)buf[i] + d;
      buf[i] = (float)b;
      param[i] = (float)(p - lr * (d + m * b));
    }
  } else {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; i++) {
      double p = param[i];
      double b = m * (double)buf[i] + scale * ((double)grad[i] + wd * p);
      buf[i] = (float)b;
      param[i] = (float)(p - lr * b);
    }
  }
}

/* out = m teacher + s student (out may be teacher). */
void ressl_ema_f32(const float *teacher, const float *student, float *out, int64_t n, double m,
                   double s, int32_t threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; i++) out[i] = (float)(m * (double)teacher[i] + s * (double)student[i]);
}

#define SUM_CHUNK 4096

/* The f64 sum of one chunk: 8 lanes, then the tail. */
static double chunk_sum(const float *x, int64_t lo, int64_t hi) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = lo;
  for (; i + 8 <= hi; i += 8) {
    for (int l = 0; l < 8; l++) lane[l] += (double)x[i + l];
  }
  double part =
      ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  for (; i < hi; i++) part += (double)x[i];
  return part;
}

/*
 * Sum of x[0..n) in f64: per 4096-element chunk (8 lanes), the chunk sums added in order. `parts`
 * (`capacity` doubles of the caller's scratch) holds the chunk sums when it has room for all of
 * them (ceil(n / 4096)); otherwise the chunks are summed on this thread, in the same order, to the
 * same result.
 */
double ressl_sum_f32(const float *x, int64_t n, int32_t threads, double *parts, int64_t capacity) {
  if (n <= 0) return 0.0;
  const int64_t chunks = (n + SUM_CHUNK - 1) / SUM_CHUNK;
  double total = 0.0;
  if (parts == 0 || capacity < chunks) {
    for (int64_t c = 0; c < chunks; c++) {
      const int64_t lo = c * SUM_CHUNK;
      total += chunk_sum(x, lo, lo + SUM_CHUNK < n ? lo + SUM_CHUNK : n);
    }
    return total;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t c = 0; c < chunks; c++) {
    const int64_t lo = c * SUM_CHUNK;
    parts[c] = chunk_sum(x, lo, lo + SUM_CHUNK < n ? lo + SUM_CHUNK : n);
  }
  for (int64_t c = 0; c < chunks; c++) total += parts[c];
  return total;
}
