/*
 * bfloat16 <-> float conversions shared by the device shim and the cuBLAS/cuDNN stand-ins.
 * float -> bf16 rounds to nearest, ties to even, like __float2bfloat16_rn; a NaN becomes the
 * canonical 0x7FFF, as on the device.
 */
#ifndef RESSL_EMU_COMMON_BF16_H
#define RESSL_EMU_COMMON_BF16_H

#include <stdint.h>
#include <string.h>

static inline uint16_t ressl_emu_f32_to_bf16_rn(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FFF;
  u += 0x7FFFu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

static inline uint16_t ressl_emu_f32_to_bf16_rz(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FFF;
  return (uint16_t)(u >> 16);
}

static inline float ressl_emu_bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* Rounds a float to TF32 (10 explicit mantissa bits), to nearest with ties away from zero, as
 * cvt.rna.tf32.f32 does for tensor-core inputs. */
static inline float ressl_emu_round_tf32(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7F800000u) != 0x7F800000u) {
    u += 0x1000u;
    u &= 0xFFFFE000u;
  }
  memcpy(&f, &u, 4);
  return f;
}

static inline float ressl_emu_round_bf16(float f) {
  return ressl_emu_bf16_to_f32(ressl_emu_f32_to_bf16_rn(f));
}

#endif
