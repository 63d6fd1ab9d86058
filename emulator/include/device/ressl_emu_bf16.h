/*
 * __nv_bfloat16 / __nv_bfloat162 for host-compiled kernels: the subset of cuda_bf16.h that
 * kernels use (conversions, raw access, arithmetic through float with round-to-nearest-even).
 */
#ifndef RESSL_EMU_BF16_H
#define RESSL_EMU_BF16_H

#include "../../common/bf16.h"

struct __nv_bfloat16_raw {
  unsigned short x;
};

struct __attribute__((aligned(2))) __nv_bfloat16 {
  unsigned short __x;
  __nv_bfloat16() = default;
  constexpr __nv_bfloat16(const __nv_bfloat16_raw& r) : __x(r.x) {}
  __nv_bfloat16(float f) : __x(ressl_emu_f32_to_bf16_rn(f)) {}
  __nv_bfloat16(double d) : __x(ressl_emu_f32_to_bf16_rn((float)d)) {}
  __nv_bfloat16(int i) : __x(ressl_emu_f32_to_bf16_rn((float)i)) {}
  __nv_bfloat16(unsigned i) : __x(ressl_emu_f32_to_bf16_rn((float)i)) {}
  operator float() const { return ressl_emu_bf16_to_f32(__x); }
  operator __nv_bfloat16_raw() const { return __nv_bfloat16_raw{__x}; }
  __nv_bfloat16& operator=(float f) { __x = ressl_emu_f32_to_bf16_rn(f); return *this; }
  __nv_bfloat16& operator=(double d) { __x = ressl_emu_f32_to_bf16_rn((float)d); return *this; }
};
typedef __nv_bfloat16 nv_bfloat16;

struct __attribute__((aligned(4))) __nv_bfloat162 {
  __nv_bfloat16 x, y;
};
typedef __nv_bfloat162 nv_bfloat162;

static inline __nv_bfloat16 ressl_emu_bf16_bits(unsigned short b) { return __nv_bfloat16_raw{b}; }

static inline float __bfloat162float(__nv_bfloat16 h) { return ressl_emu_bf16_to_f32(h.__x); }
static inline __nv_bfloat16 __float2bfloat16(float f) { return ressl_emu_bf16_bits(ressl_emu_f32_to_bf16_rn(f)); }
static inline __nv_bfloat16 __float2bfloat16_rn(float f) { return ressl_emu_bf16_bits(ressl_emu_f32_to_bf16_rn(f)); }
static inline __nv_bfloat16 __float2bfloat16_rz(float f) { return ressl_emu_bf16_bits(ressl_emu_f32_to_bf16_rz(f)); }
static inline __nv_bfloat16 __double2bfloat16(double d) { return __float2bfloat16_rn((float)d); }
static inline __nv_bfloat16 __int2bfloat16_rn(int i) { return __float2bfloat16_rn((float)i); }
static inline int __bfloat162int_rz(__nv_bfloat16 h) { return (int)__bfloat162float(h); }
static inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
static inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { return ressl_emu_bf16_bits(u); }
static inline short __bfloat16_as_short(__nv_bfloat16 h) { return (short)h.__x; }
static inline __nv_bfloat16 __short_as_bfloat16(short s) { return ressl_emu_bf16_bits((unsigned short)s); }

static inline __nv_bfloat162 __float2bfloat162_rn(float f) {
  return __nv_bfloat162{__float2bfloat16_rn(f), __float2bfloat16_rn(f)};
}
static inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) {
  return __nv_bfloat162{__float2bfloat16_rn(a), __float2bfloat16_rn(b)};
}
static inline __nv_bfloat162 __halves2bfloat162(__nv_bfloat16 a, __nv_bfloat16 b) {
  return __nv_bfloat162{a, b};
}
static inline float2 __bfloat1622float2(__nv_bfloat162 v) {
  return make_float2(__bfloat162float(v.x), __bfloat162float(v.y));
}
static inline __nv_bfloat162 __float22bfloat162_rn(float2 f) { return __floats2bfloat162_rn(f.x, f.y); }
static inline float __low2float(__nv_bfloat162 v) { return __bfloat162float(v.x); }
static inline float __high2float(__nv_bfloat162 v) { return __bfloat162float(v.y); }
static inline __nv_bfloat16 __low2bfloat16(__nv_bfloat162 v) { return v.x; }
static inline __nv_bfloat16 __high2bfloat16(__nv_bfloat162 v) { return v.y; }

#define RESSL_EMU_BF16_BINARY(NAME, OP) \
  static inline __nv_bfloat16 NAME(__nv_bfloat16 a, __nv_bfloat16 b) { \
    return __float2bfloat16_rn(__bfloat162float(a) OP __bfloat162float(b)); \
  } \
  static inline __nv_bfloat162 NAME##2(__nv_bfloat162 a, __nv_bfloat162 b) { \
    return __nv_bfloat162{NAME(a.x, b.x), NAME(a.y, b.y)}; \
  }
RESSL_EMU_BF16_BINARY(__hadd, +)
RESSL_EMU_BF16_BINARY(__hsub, -)
RESSL_EMU_BF16_BINARY(__hmul, *)
RESSL_EMU_BF16_BINARY(__hdiv, /)
#undef RESSL_EMU_BF16_BINARY
static inline __nv_bfloat16 __hfma(__nv_bfloat16 a, __nv_bfloat16 b, __nv_bfloat16 c) {
  return __float2bfloat16_rn(fmaf(__bfloat162float(a), __bfloat162float(b), __bfloat162float(c)));
}
static inline __nv_bfloat16 __hneg(__nv_bfloat16 a) { return ressl_emu_bf16_bits(a.__x ^ 0x8000u); }
static inline __nv_bfloat16 __habs(__nv_bfloat16 a) { return ressl_emu_bf16_bits(a.__x & 0x7FFFu); }
static inline bool __hisnan(__nv_bfloat16 a) { return (a.__x & 0x7FFFu) > 0x7F80u; }
static inline __nv_bfloat16 __hmax(__nv_bfloat16 a, __nv_bfloat16 b) {
  return __bfloat162float(a) >= __bfloat162float(b) || __hisnan(b) ? a : b;
}
static inline __nv_bfloat16 __hmin(__nv_bfloat16 a, __nv_bfloat16 b) {
  return __bfloat162float(a) <= __bfloat162float(b) || __hisnan(b) ? a : b;
}
#define RESSL_EMU_BF16_CMP(NAME, OP) \
  static inline bool NAME(__nv_bfloat16 a, __nv_bfloat16 b) { \
    return __bfloat162float(a) OP __bfloat162float(b); \
  }
RESSL_EMU_BF16_CMP(__heq, ==)
RESSL_EMU_BF16_CMP(__hne, !=)
RESSL_EMU_BF16_CMP(__hlt, <)
RESSL_EMU_BF16_CMP(__hle, <=)
RESSL_EMU_BF16_CMP(__hgt, >)
RESSL_EMU_BF16_CMP(__hge, >=)
#undef RESSL_EMU_BF16_CMP

static inline __nv_bfloat16 operator+(__nv_bfloat16 a, __nv_bfloat16 b) { return __hadd(a, b); }
static inline __nv_bfloat16 operator-(__nv_bfloat16 a, __nv_bfloat16 b) { return __hsub(a, b); }
static inline __nv_bfloat16 operator*(__nv_bfloat16 a, __nv_bfloat16 b) { return __hmul(a, b); }
static inline __nv_bfloat16 operator/(__nv_bfloat16 a, __nv_bfloat16 b) { return __hdiv(a, b); }
static inline __nv_bfloat16 operator-(__nv_bfloat16 a) { return __hneg(a); }
static inline __nv_bfloat16& operator+=(__nv_bfloat16& a, __nv_bfloat16 b) { return a = __hadd(a, b); }
static inline __nv_bfloat16& operator-=(__nv_bfloat16& a, __nv_bfloat16 b) { return a = __hsub(a, b); }
static inline __nv_bfloat16& operator*=(__nv_bfloat16& a, __nv_bfloat16 b) { return a = __hmul(a, b); }
static inline __nv_bfloat16& operator/=(__nv_bfloat16& a, __nv_bfloat16 b) { return a = __hdiv(a, b); }
static inline bool operator==(__nv_bfloat16 a, __nv_bfloat16 b) { return __heq(a, b); }
static inline bool operator!=(__nv_bfloat16 a, __nv_bfloat16 b) { return __hne(a, b); }
static inline bool operator<(__nv_bfloat16 a, __nv_bfloat16 b) { return __hlt(a, b); }
static inline bool operator<=(__nv_bfloat16 a, __nv_bfloat16 b) { return __hle(a, b); }
static inline bool operator>(__nv_bfloat16 a, __nv_bfloat16 b) { return __hgt(a, b); }
static inline bool operator>=(__nv_bfloat16 a, __nv_bfloat16 b) { return __hge(a, b); }

/* bf16 atomics (the device adds in float and rounds). */
static inline __nv_bfloat16 atomicAdd(__nv_bfloat16* address, __nv_bfloat16 val) {
  __nv_bfloat16 old = *address;
  *address = __hadd(old, val);
  return old;
}

#endif
