/*
 * Internal state of the block scheduler, shared by scheduler.cpp (launches, fibers) and
 * sync_ops.cpp (barriers and warp steps). Not visible to kernel code.
 */
#ifndef RESSL_EMU_SCHEDULER_INTERNAL_H
#define RESSL_EMU_SCHEDULER_INTERNAL_H

#include "../include/device/ressl_emu_runtime.h"

namespace ressl_emu {

enum ThreadState : unsigned char { kNotStarted, kRunnable, kWaiting, kDone };

/* One CUDA thread of the block being run, in fiber mode. Threads run on "runner" fibers: a
 * runner runs one not-yet-started thread after another until one waits at a barrier; the waiting
 * thread keeps that runner (its stack), and the scheduler starts a new runner for the next thread.
 * So a kernel that never waits costs one fiber per block, one that waits one per thread. */
struct FiberThread {
  void* sp;                     // the saved stack pointer of its runner while it waits
  const unsigned* wait_on;      // generation counter it waits to change (kWaiting)
  unsigned wait_generation;
  uint3 idx;
  unsigned linear;
  int stack;                    // its runner's stack (pool index) while it runs or waits
  ThreadState state;
};

/* A block-wide barrier: generation counting with live-thread accounting. */
struct BlockBarrier {
  unsigned arrived;
  unsigned generation;
  int count;                    // predicate sum of the generation in progress
  int result[2];                // predicate sums of finished generations (by parity)
};

/* Warp-synchronous steps of one warp. */
struct WarpState {
  unsigned live;                // lanes that exist and have not exited
  unsigned arrived;             // lanes waiting in the step in progress
  unsigned mask;                // the step's mask (0 when no step is in progress)
  unsigned generation;
  ressl_emu_warp_slots slots[2];  // by generation parity
};

struct BlockRun {
  FiberThread* threads;
  unsigned num_threads;
  unsigned live;
  BlockBarrier barrier;
  WarpState* warps;
  unsigned num_warps;
  FiberThread* current;
  unsigned next_unstarted;      // threads below this index have been claimed by a runner
  int finished_stack;           // set by a runner that ran out of threads (its stack is free)
  unsigned long progress;       // bumped whenever a thread changes what it waits for
};

extern RESSL_EMU_HIDDEN BlockRun* g_block;

/* Switches from the current fiber back to the scheduler (the thread stays kWaiting). */
RESSL_EMU_HIDDEN void yield_to_scheduler();
/* Ends the launch with an error message (from inside a fiber or a plain thread). */
[[noreturn]] RESSL_EMU_HIDDEN void fail_launch(int cuda_result, const char* message);
/* Called by the scheduler when a thread exits, so barriers stop waiting for it. */
RESSL_EMU_HIDDEN void on_thread_exit(FiberThread* t);

}  // namespace ressl_emu

#endif
