/*
 * What host-compiled kernel code sees of the emulator's block scheduler (emulator/runtime/):
 * the built-in index variables, the dynamic shared memory base, and the barrier / warp / trap
 * entry points the shim's inline functions call. Everything here is hidden inside each host
 * kernel library; only ressl_emu_module_table() is exported.
 */
#ifndef RESSL_EMU_RUNTIME_H
#define RESSL_EMU_RUNTIME_H

#include "../ressl_emu_abi.h"
#include "ressl_emu_vector_types.h"

#define RESSL_EMU_HIDDEN __attribute__((visibility("hidden")))

/* The values of one warp-synchronous step, as all participating lanes deposited them. */
typedef struct ressl_emu_warp_slots {
  unsigned long long value[32];
  /* Lanes that took part in this step (the mask intersected with the lanes still running). */
  unsigned participants;
  /* Lanes (among participants) whose predicate was non-zero. */
  unsigned predicates;
} ressl_emu_warp_slots;

extern "C" {
/* Set by the scheduler before any thread of the launch runs (and threadIdx before each thread). */
extern RESSL_EMU_HIDDEN uint3 ressl_emu_thread_idx;
extern RESSL_EMU_HIDDEN uint3 ressl_emu_block_idx;
extern RESSL_EMU_HIDDEN dim3 ressl_emu_block_dim;
extern RESSL_EMU_HIDDEN dim3 ressl_emu_grid_dim;
/* threadIdx linearised (x fastest), which decides warp and lane as on the device. */
extern RESSL_EMU_HIDDEN unsigned ressl_emu_linear_tid;
extern RESSL_EMU_HIDDEN unsigned char* ressl_emu_dynamic_shared_base;

/* Block barrier; returns how many live threads passed a non-zero predicate. */
RESSL_EMU_HIDDEN int ressl_emu_rt_syncthreads_count(int predicate);
/* One warp-synchronous step among the lanes of `mask`: deposits value and predicate, waits for
 * the others, returns everybody's deposits (valid until this thread's next warp step). */
RESSL_EMU_HIDDEN const ressl_emu_warp_slots* ressl_emu_rt_warp_sync(unsigned mask,
                                                                     unsigned long long value,
                                                                     int predicate);
/* Lanes of the calling thread's warp that have not exited. */
RESSL_EMU_HIDDEN unsigned ressl_emu_rt_active_mask(void);
/* Ends the launch with CUDA_ERROR_ILLEGAL_INSTRUCTION (as __trap() does on the device). */
[[noreturn]] RESSL_EMU_HIDDEN void ressl_emu_rt_trap(const char* why);
/* Runs a whole grid: `one_thread(args)` once per CUDA thread. Returns a CUresult. */
RESSL_EMU_HIDDEN int ressl_emu_rt_run(const ressl_emu_launch* launch, void (*one_thread)(void*),
                                      void* args, const char* kernel_name);
}

#endif
