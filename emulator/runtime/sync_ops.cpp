/*
 * The entry points that need every thread of a block to be a fiber: __syncthreads (and its
 * _count/_and/_or forms) and the warp-synchronous step behind shuffles, votes and __syncwarp.
 * This file is its own member of the runtime archive so that it (and the marker below) is linked
 * only into libraries whose code calls one of these; see scheduler.cpp.
 */
#include <stdio.h>

#include "scheduler_internal.h"

extern "C" RESSL_EMU_HIDDEN const int ressl_emu_rt_fiber_ops_linked = 1;

using namespace ressl_emu;

namespace {

[[noreturn]] void not_in_fiber(const char* what) {
  char msg[200];
  snprintf(msg, sizeof msg, "%s reached outside a fiber-mode launch (emulator bug)", what);
  fail_launch(719, msg);
}

void wait_for_change(FiberThread* t, const unsigned* counter, unsigned seen) {
  t->state = kWaiting;
  t->wait_on = counter;
  t->wait_generation = seen;
  yield_to_scheduler();
}

}  // namespace

extern "C" RESSL_EMU_HIDDEN int ressl_emu_rt_syncthreads_count(int predicate) {
  if (!g_block) not_in_fiber("__syncthreads");
  BlockRun& b = *g_block;
  BlockBarrier& bar = b.barrier;
  FiberThread* me = b.current;
  unsigned gen = bar.generation;
  bar.count += predicate ? 1 : 0;
  bar.arrived++;
  b.progress++;
  if (bar.arrived == b.live) {
    bar.result[gen & 1] = bar.count;
    bar.arrived = 0;
    bar.count = 0;
    bar.generation++;
  } else {
    wait_for_change(me, &bar.generation, gen);
  }
  return bar.result[gen & 1];
}

extern "C" RESSL_EMU_HIDDEN const ressl_emu_warp_slots* ressl_emu_rt_warp_sync(
    unsigned mask, unsigned long long value, int predicate) {
  if (!g_block) not_in_fiber("a warp-synchronous call");
  BlockRun& b = *g_block;
  FiberThread* me = b.current;
  WarpState& w = b.warps[me->linear / 32];
  unsigned lane = me->linear % 32;
  unsigned bit = 1u << lane;
  if ((mask & bit) == 0) {
    char msg[160];
    snprintf(msg, sizeof msg, "lane %u called a warp-synchronous function with mask 0x%08x, "
             "which does not include itself", lane, mask);
    fail_launch(715, msg);
  }
  if (w.mask != 0 && w.mask != mask) {
    char msg[200];
    snprintf(msg, sizeof msg, "lanes of warp %u are in warp-synchronous calls with different "
             "masks (0x%08x and 0x%08x): divergent warp steps are not emulated",
             me->linear / 32, w.mask, mask);
    fail_launch(719, msg);
  }
  unsigned gen = w.generation;
  ressl_emu_warp_slots& s = w.slots[gen & 1];
  if (w.arrived == 0) s.predicates = 0;
  w.mask = mask;
  s.value[lane] = value;
  if (predicate) s.predicates |= bit;
  w.arrived |= bit;
  b.progress++;
  unsigned target = mask & w.live;
  if ((w.arrived & target) == target) {
    s.participants = w.arrived;
    w.arrived = 0;
    w.mask = 0;
    w.generation++;
  } else {
    wait_for_change(me, &w.generation, gen);
  }
  return &w.slots[gen & 1];
}
