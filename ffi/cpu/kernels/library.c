/*
 * What libressl_cpu.so says about itself: its C interface version (checked by ffi/cpu/load.ts) and
 * whether this CPU runs the instructions it was compiled for.
 */

#include <stdint.h>

/* Whether this CPU runs the code this library was compiled for (x86-64-v3: AVX2, FMA, BMI2...). */
__attribute__((target("arch=x86-64"))) int32_t ressl_cpu_kernels_supported(void) {
  __builtin_cpu_init();
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ < 12)
  /* Compilers without the level name: the features the kernels' code generation uses. */
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                 __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2")
             ? 1
             : 0;
#else
  return __builtin_cpu_supports("x86-64-v3") ? 1 : 0;
#endif
}

/* Version of this library's C interface (bumped when a signature changes). */
int32_t ressl_cpu_kernels_abi(void) { return 5; }
