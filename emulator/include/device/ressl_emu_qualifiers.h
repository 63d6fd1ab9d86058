/*
 * The CUDA qualifiers that gen_kernel_module.sh leaves unexpanded in its preprocessing pass (so
 * it can find kernels and extern __shared__ arrays); the compile pass force-includes this file.
 */
#ifndef RESSL_EMU_QUALIFIERS_H
#define RESSL_EMU_QUALIFIERS_H
/* Kernels are exported so that the driver can read their (possibly mangled) symbol names. */
#define __global__ __attribute__((visibility("default"), used))
/* One static instance per library, in a section the scheduler poisons before every block. */
#define __shared__ static __attribute__((section("ressl_emu_shared")))
#define __align__(n) __attribute__((aligned(n)))
#endif
