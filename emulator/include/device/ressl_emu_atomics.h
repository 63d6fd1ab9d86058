/*
 * CUDA atomics for host-compiled kernels. A launch runs on one host thread and its CUDA threads
 * interleave only at barriers and warp steps, so a plain read-modify-write is atomic here. Each
 * returns the old value, as on the device.
 */
#ifndef RESSL_EMU_ATOMICS_H
#define RESSL_EMU_ATOMICS_H

#define RESSL_EMU_RMW(NAME, T, EXPR) \
  static inline T NAME(T* address, T val) { \
    T old = *address; \
    *address = (EXPR); \
    return old; \
  }
#define RESSL_EMU_RMW_INTS(NAME, EXPR) \
  RESSL_EMU_RMW(NAME, int, EXPR) \
  RESSL_EMU_RMW(NAME, unsigned int, EXPR) \
  RESSL_EMU_RMW(NAME, unsigned long long, EXPR) \
  RESSL_EMU_RMW(NAME, long long, EXPR)

RESSL_EMU_RMW_INTS(atomicAdd, old + val)
RESSL_EMU_RMW(atomicAdd, float, old + val)
RESSL_EMU_RMW(atomicAdd, double, old + val)
RESSL_EMU_RMW(atomicSub, int, old - val)
RESSL_EMU_RMW(atomicSub, unsigned int, old - val)
RESSL_EMU_RMW_INTS(atomicExch, val)
RESSL_EMU_RMW(atomicExch, float, val)
RESSL_EMU_RMW_INTS(atomicMin, val < old ? val : old)
RESSL_EMU_RMW_INTS(atomicMax, val > old ? val : old)
RESSL_EMU_RMW_INTS(atomicAnd, old & val)
RESSL_EMU_RMW_INTS(atomicOr, old | val)
RESSL_EMU_RMW_INTS(atomicXor, old ^ val)
/* ((old >= val) ? 0 : (old + 1)) and (((old == 0) || (old > val)) ? val : (old - 1)). */
RESSL_EMU_RMW(atomicInc, unsigned int, old >= val ? 0u : old + 1)
RESSL_EMU_RMW(atomicDec, unsigned int, (old == 0 || old > val) ? val : old - 1)

#define RESSL_EMU_CAS(T) \
  static inline T atomicCAS(T* address, T compare, T val) { \
    T old = *address; \
    if (old == compare) *address = val; \
    return old; \
  }
RESSL_EMU_CAS(int)
RESSL_EMU_CAS(unsigned int)
RESSL_EMU_CAS(unsigned long long)
RESSL_EMU_CAS(unsigned short)

/* The _block and _system scopes behave the same here. */
#define atomicAdd_block atomicAdd
#define atomicAdd_system atomicAdd
#define atomicMax_block atomicMax
#define atomicMin_block atomicMin
#define atomicCAS_block atomicCAS
#define atomicExch_block atomicExch

#undef RESSL_EMU_RMW
#undef RESSL_EMU_RMW_INTS
#undef RESSL_EMU_CAS
#endif
