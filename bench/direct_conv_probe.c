/*
 * Probe: how fast can a hand-written direct 3x3 stride-1 convolution be on nChw16c data with 16-64
 * channels (the width-16 ResNet-18's layers), against oneDNN 2.6.3's kernels (bench/conv_micro.ts)?
 * Register-blocked over 6 output pixels x 16 output channels (AVX2 + FMA, 2 ymm per pixel) or, with
 * -DUSE512 and an AVX-512 CPU, 13 pixels x one zmm; parallel over output rows (OpenMP). Prints the
 * fastest of 15 calls and checks one output against a naive f64 sum. Not used by the backend.
 *
 *   cc -O3 -march=x86-64-v3 -fopenmp bench/direct_conv_probe.c -o /tmp/probe
 *   cc -O3 -march=native -DUSE512 -fopenmp bench/direct_conv_probe.c -o /tmp/probe512
 *   OMP_WAIT_POLICY=passive /tmp/probe N C H THREADS      (e.g. 256 16 28 2)
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <time.h>
#include <string.h>
#include <math.h>

static inline __attribute__((always_inline)) void block512(const float *x, const float *wp, float *y,
    int64_t CB, int64_t H, int64_t W, int64_t n, int64_t oh, int64_t ow0, const int P) {
  __m512 acc[14];
  for (int p = 0; p < P; p++) acc[p] = _mm512_setzero_ps();
  for (int64_t ib = 0; ib < CB; ib++) {
    for (int kh = 0; kh < 3; kh++) {
      int64_t ih = oh + kh - 1;
      if (ih < 0 || ih >= H) continue;
      const float *xr = x + ((n * CB + ib) * H + ih) * W * 16;
      for (int kw = 0; kw < 3; kw++) {
        const float *xp = xr + (ow0 + kw - 1) * 16;
        const float *wk = wp + ((ib * 3 + kh) * 3 + kw) * 256;
        for (int ic = 0; ic < 16; ic++) {
          __m512 w0 = _mm512_loadu_ps(wk + ic * 16);
          for (int p = 0; p < P; p++) acc[p] = _mm512_fmadd_ps(_mm512_set1_ps(xp[p * 16 + ic]), w0, acc[p]);
        }
      }
    }
  }
  float *yo = y + ow0 * 16;
  for (int p = 0; p < P; p++) _mm512_storeu_ps(yo + p * 16, acc[p]);
}

static inline __attribute__((always_inline)) void block(const float *x, const float *wp, float *y,
    int64_t CB, int64_t H, int64_t W, int64_t n, int64_t ob, int64_t oh, int64_t ow0, const int P) {
  __m256 acc[6][2];
  for (int p = 0; p < P; p++) acc[p][0] = acc[p][1] = _mm256_setzero_ps();
  for (int64_t ib = 0; ib < CB; ib++) {
    for (int kh = 0; kh < 3; kh++) {
      int64_t ih = oh + kh - 1;
      if (ih < 0 || ih >= H) continue;
      const float *xr = x + ((n * CB + ib) * H + ih) * W * 16;
      for (int kw = 0; kw < 3; kw++) {
        const float *xp = xr + (ow0 + kw - 1) * 16;
        const float *wk = wp + ((ib * 3 + kh) * 3 + kw) * 256;
        for (int ic = 0; ic < 16; ic++) {
          __m256 w0 = _mm256_loadu_ps(wk + ic * 16), w1 = _mm256_loadu_ps(wk + ic * 16 + 8);
          for (int p = 0; p < P; p++) {
            __m256 b = _mm256_broadcast_ss(xp + p * 16 + ic);
            acc[p][0] = _mm256_fmadd_ps(b, w0, acc[p][0]);
            acc[p][1] = _mm256_fmadd_ps(b, w1, acc[p][1]);
          }
        }
      }
    }
  }
  float *yo = y + ow0 * 16;
  for (int p = 0; p < P; p++) { _mm256_storeu_ps(yo + p * 16, acc[p][0]); _mm256_storeu_ps(yo + p * 16 + 8, acc[p][1]); }
}

static void edge(const float *x, const float *wp, float *y, int64_t CB, int64_t H, int64_t W,
                 int64_t n, int64_t oh, int64_t ow) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  for (int64_t ib = 0; ib < CB; ib++)
    for (int kh = 0; kh < 3; kh++) {
      int64_t ih = oh + kh - 1; if (ih < 0 || ih >= H) continue;
      for (int kw = 0; kw < 3; kw++) {
        int64_t iw = ow + kw - 1; if (iw < 0 || iw >= W) continue;
        const float *xp = x + (((n * CB + ib) * H + ih) * W + iw) * 16;
        const float *wk = wp + ((ib * 3 + kh) * 3 + kw) * 256;
        for (int ic = 0; ic < 16; ic++) {
          __m256 b = _mm256_broadcast_ss(xp + ic);
          a0 = _mm256_fmadd_ps(b, _mm256_loadu_ps(wk + ic * 16), a0);
          a1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(wk + ic * 16 + 8), a1);
        }
      }
    }
  _mm256_storeu_ps(y + ow * 16, a0); _mm256_storeu_ps(y + ow * 16 + 8, a1);
}

void conv_fwd(const float *x, const float *wpk, float *y, int64_t N, int64_t CB, int64_t OB, int64_t H, int64_t W, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t t = 0; t < N * OB * H; t++) {
    int64_t n = t / (OB * H), ob = (t / H) % OB, oh = t % H;
    const float *wp = wpk + ob * CB * 9 * 256;
    float *yr = y + ((n * OB + ob) * H + oh) * W * 16;
    edge(x, wp, yr, CB, H, W, n, oh, 0);
    int64_t ow = 1, end = W - 1;
#ifdef USE512
    for (; ow + 13 <= end; ow += 13) block512(x, wp, yr, CB, H, W, n, oh, ow, 13);
    switch (end - ow) {
      case 12: block512(x, wp, yr, CB, H, W, n, oh, ow, 12); ow += 12; break;
      case 6: block512(x, wp, yr, CB, H, W, n, oh, ow, 6); ow += 6; break;
      case 5: block512(x, wp, yr, CB, H, W, n, oh, ow, 5); ow += 5; break;
      case 2: block512(x, wp, yr, CB, H, W, n, oh, ow, 2); ow += 2; break;
      default: break;
    }
#endif
    for (; ow + 6 <= end; ow += 6) block(x, wp, yr, CB, H, W, n, ob, oh, ow, 6);
    switch (end - ow) {
      case 5: block(x, wp, yr, CB, H, W, n, ob, oh, ow, 5); break;
      case 4: block(x, wp, yr, CB, H, W, n, ob, oh, ow, 4); break;
      case 3: block(x, wp, yr, CB, H, W, n, ob, oh, ow, 3); break;
      case 2: block(x, wp, yr, CB, H, W, n, ob, oh, ow, 2); break;
      case 1: block(x, wp, yr, CB, H, W, n, ob, oh, ow, 1); break;
      default: break;
    }
    if (W > 1) edge(x, wp, yr, CB, H, W, n, oh, W - 1);
  }
}

static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e3+t.tv_nsec*1e-6;}
int main(int argc, char **argv) {
  int64_t N = atoi(argv[1]), C = atoi(argv[2]), H = atoi(argv[3]), W = H; int th = atoi(argv[4]);
  int64_t CB = C / 16, OB = C / 16;
  size_t nx = N * C * H * W;
  float *x = aligned_alloc(64, nx * 4), *y = aligned_alloc(64, nx * 4), *wp = aligned_alloc(64, OB * CB * 9 * 256 * 4);
  for (size_t i = 0; i < nx; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000 - 0.5f;
  for (size_t i = 0; i < (size_t)(OB * CB * 9 * 256); i++) wp[i] = (float)((i * 40503u) % 1000) / 1000 - 0.5f;
  double best = 1e9;
  for (int r = 0; r < 15; r++) { double t = now(); conv_fwd(x, wp, y, N, CB, OB, H, W, th); t = now() - t; if (t < best) best = t; }
  // check one output vs naive
  int64_t n = 3, ob = 0, oh = 0, ow = 5, oc = 7; double s = 0;
  for (int64_t ib = 0; ib < CB; ib++) for (int kh = 0; kh < 3; kh++) for (int kw = 0; kw < 3; kw++) for (int ic = 0; ic < 16; ic++) {
    int64_t ih = oh + kh - 1, iw = ow + kw - 1; if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
    s += (double)x[(((n * CB + ib) * H + ih) * W + iw) * 16 + ic] * wp[(((ob * CB + ib) * 3 + kh) * 3 + kw) * 256 + ic * 16 + oc]; }
  double flop = 2.0 * N * C * C * 9 * H * W;
  printf("N%ld C%ld H%ld threads %d: %.3f ms, %.0f GFLOP/s; check %g vs %g\n", N, C, H, th, best, flop / best / 1e6,
         y[(((n * OB + ob) * H + oh) * W + ow) * 16 + oc], s);
}
