/*
 * A benchdnn-like convolution microbenchmark on the system oneDNN (2.6.3, the library the cpu
 * backend loads), compiled and run by bench/conv_micro.ts:
 *
 *   onednn_conv REPS mb ic ih iw oc kh sh ph [mb ic ih iw oc kh sh ph ...]
 *
 * For each shape, each direction (forward training, backward data, backward weights) and each
 * algorithm (direct, winograd, auto) it creates the primitive with format_tag_any (oneDNN picks
 * its layouts, as the cpu backend does), runs it twice to warm up, then REPS times, and prints one
 * JSON line: {"shape", "dir", "alg", "impl", "ms": median, "min": fastest} or, where oneDNN has no
 * implementation for that algorithm, {"...", "impl": "unimplemented"}. Threads: OMP_NUM_THREADS;
 * ONEDNN_CONV_CPU_TIME=1 times process CPU instead of wall time; ONEDNN_CONV_DT=bf16 makes every
 * tensor bf16 (oneDNN accumulates in f32), for the mixed-precision estimate of docs/benchmarks.md.
 */
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(x)                                                                     \
  do {                                                                               \
    dnnl_status_t s_ = (x);                                                          \
    if (s_ != dnnl_success) {                                                        \
      fprintf(stderr, "onednn_conv: %s failed with status %d (line %d)\n", #x, s_, \
              __LINE__);                                                             \
      exit(1);                                                                       \
    }                                                                                \
  } while (0)

/* Wall time, or with ONEDNN_CONV_CPU_TIME=1 the process CPU time (all threads): on a shared
 * machine with OMP_NUM_THREADS=1 that is the kernel's own compute time, free of preemption. */
static clockid_t clock_id = CLOCK_MONOTONIC;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(clock_id, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static dnnl_memory_t mem_for(dnnl_engine_t eng, const_dnnl_primitive_desc_t pd,
                             dnnl_query_t what) {
  const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, what, 0);
  dnnl_memory_t m;
  CHECK(dnnl_memory_create(&m, md, eng, DNNL_MEMORY_ALLOCATE));
  size_t n = dnnl_memory_desc_get_size(md);
  void *p;
  CHECK(dnnl_memory_get_data_handle(m, &p));
  float *f = (float *)p;
  for (size_t i = 0; i < n / sizeof(float); i++) f[i] = (float)((i * 2654435761u) % 1000) / 1000.f - 0.5f;
  return m;
}

int main(int argc, char **argv) {
  if (argc < 10 || (argc - 2) % 8 != 0) {
    fprintf(stderr, "usage: onednn_conv REPS mb ic ih iw oc kh sh ph [...]\n");
    return 2;
  }
  int reps = atoi(argv[1]);
  const char *cpu = getenv("ONEDNN_CONV_CPU_TIME");
  if (cpu && cpu[0] == '1') clock_id = CLOCK_PROCESS_CPUTIME_ID;
  const char *dt_name = getenv("ONEDNN_CONV_DT");
  const int bf16 = dt_name && strcmp(dt_name, "bf16") == 0;
  const dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
  dnnl_engine_t eng;
  dnnl_stream_t st;
  CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
  CHECK(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
  const char *dirs[] = {"fwd", "bwd-data", "bwd-weights"};
  const char *alg_names[] = {"direct", "winograd", "auto"};
  dnnl_alg_kind_t algs[] = {dnnl_convolution_direct, dnnl_convolution_winograd,
                            dnnl_convolution_auto};
  for (int a = 2; a < argc; a += 8) {
    long mb = atol(argv[a]), ic = atol(argv[a + 1]), ih = atol(argv[a + 2]),
         iw = atol(argv[a + 3]), oc = atol(argv[a + 4]), kh = atol(argv[a + 5]),
         sh = atol(argv[a + 6]), ph = atol(argv[a + 7]);
    long oh = (ih + 2 * ph - kh) / sh + 1, ow = (iw + 2 * ph - kh) / sh + 1;
    long prh = (oh - 1) * sh + kh - ih - ph, prw = (ow - 1) * sh + kh - iw - ph;
    dnnl_dims_t sd = {mb, ic, ih, iw}, wd = {oc, ic, kh, kh}, dd = {mb, oc, oh, ow};
    dnnl_dims_t strides = {sh, sh}, padl = {ph, ph}, padr = {prh, prw};
    dnnl_memory_desc_t src, wei, dst;
    CHECK(dnnl_memory_desc_init_by_tag(&src, 4, sd, dt, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&wei, 4, wd, dt, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&dst, 4, dd, dt, dnnl_format_tag_any));
    char shape[128];
    snprintf(shape, sizeof shape, "mb%ld %ldx%ldx%ld -> %ldx%ldx%ld k%ld s%ld", mb, ic, ih, iw, oc,
             oh, ow, kh, sh);
    for (int al = 0; al < 3; al++) {
      dnnl_convolution_desc_t fd;
      CHECK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, algs[al], &src, &wei,
                                               NULL, &dst, strides, padl, padr));
      dnnl_primitive_desc_t fpd;
      if (dnnl_primitive_desc_create(&fpd, &fd, NULL, eng, NULL) != dnnl_success) {
        for (int d = 0; d < 3; d++)
          printf("{\"shape\":\"%s\",\"dir\":\"%s\",\"alg\":\"%s\",\"impl\":\"unimplemented\"}\n",
                 shape, dirs[d], alg_names[al]);
        continue;
      }
      for (int d = 0; d < 3; d++) {
        dnnl_primitive_desc_t pd = fpd;
        if (d == 1) {
          dnnl_convolution_desc_t bd;
          CHECK(dnnl_convolution_backward_data_desc_init(&bd, algs[al], &src, &wei, &dst, strides,
                                                         padl, padr));
          if (dnnl_primitive_desc_create(&pd, &bd, NULL, eng, fpd) != dnnl_success) pd = NULL;
        } else if (d == 2) {
          dnnl_convolution_desc_t bd;
          CHECK(dnnl_convolution_backward_weights_desc_init(&bd, algs[al], &src, &wei, NULL, &dst,
                                                            strides, padl, padr));
          if (dnnl_primitive_desc_create(&pd, &bd, NULL, eng, fpd) != dnnl_success) pd = NULL;
        }
        if (pd == NULL) {
          printf("{\"shape\":\"%s\",\"dir\":\"%s\",\"alg\":\"%s\",\"impl\":\"unimplemented\"}\n",
                 shape, dirs[d], alg_names[al]);
          continue;
        }
        const char *impl = "?";
        CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
        dnnl_query_t q[3][3] = {
            {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md},
            {dnnl_query_diff_dst_md, dnnl_query_weights_md, dnnl_query_diff_src_md},
            {dnnl_query_src_md, dnnl_query_diff_dst_md, dnnl_query_diff_weights_md}};
        int ids[3][3] = {{DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
                         {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC},
                         {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS}};
        dnnl_exec_arg_t args[3];
        for (int i = 0; i < 3; i++) {
          args[i].arg = ids[d][i];
          args[i].memory = mem_for(eng, pd, q[d][i]);
        }
        dnnl_primitive_t p;
        CHECK(dnnl_primitive_create(&p, pd));
        double *t = malloc(sizeof(double) * (reps > 0 ? reps : 1));
        for (int r = -2; r < reps; r++) {
          double t0 = now_ms();
          CHECK(dnnl_primitive_execute(p, st, 3, args));
          CHECK(dnnl_stream_wait(st));
          if (r >= 0) t[r] = now_ms() - t0;
        }
        qsort(t, reps, sizeof(double), cmp);
        printf("{\"shape\":\"%s\",\"dir\":\"%s\",\"alg\":\"%s\",\"impl\":\"%s\",\"ms\":%.4f,"
               "\"min\":%.4f}\n",
               shape, dirs[d], alg_names[al], impl, t[reps / 2], t[0]);
        fflush(stdout);
        free(t);
        dnnl_primitive_destroy(p);
        for (int i = 0; i < 3; i++) dnnl_memory_destroy(args[i].memory);
        if (d > 0) dnnl_primitive_desc_destroy(pd);
      }
      dnnl_primitive_desc_destroy(fpd);
    }
  }
  dnnl_stream_destroy(st);
  dnnl_engine_destroy(eng);
  return 0;
}
