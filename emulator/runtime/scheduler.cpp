/*
 * The block scheduler of a host kernel library: runs a grid's blocks one after another, and each
 * block's threads either as plain calls (libraries whose code never reaches a barrier or warp
 * step) or as fibers that switch at __syncthreads / warp shuffles / votes.
 *
 * Plain or fiber is decided when the library is linked: sync_ops.o, which holds every entry
 * point that needs fibers, is pulled from the runtime archive only when the kernel code calls
 * one of them, and it defines ressl_emu_rt_fiber_ops_linked, which this file references weakly.
 */
#include <setjmp.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vector>

#include "scheduler_internal.h"

extern "C" {
RESSL_EMU_HIDDEN uint3 ressl_emu_thread_idx;
RESSL_EMU_HIDDEN uint3 ressl_emu_block_idx;
RESSL_EMU_HIDDEN dim3 ressl_emu_block_dim;
RESSL_EMU_HIDDEN dim3 ressl_emu_grid_dim;
RESSL_EMU_HIDDEN unsigned ressl_emu_linear_tid;
RESSL_EMU_HIDDEN unsigned char* ressl_emu_dynamic_shared_base;

/* Defined by sync_ops.cpp; null when the library's code needs no fibers. */
extern __attribute__((weak)) RESSL_EMU_HIDDEN const int ressl_emu_rt_fiber_ops_linked;
/* Bounds of the static __shared__ variables (the shim puts them in this section). */
extern __attribute__((weak)) RESSL_EMU_HIDDEN unsigned char __start_ressl_emu_shared[];
extern __attribute__((weak)) RESSL_EMU_HIDDEN unsigned char __stop_ressl_emu_shared[];

void ressl_emu_fiber_switch(void** save_sp, void* load_sp);
void ressl_emu_fiber_start();
}

namespace ressl_emu {

RESSL_EMU_HIDDEN BlockRun* g_block = nullptr;

namespace {

/* Shared memory content is undefined on the device; this pattern (a NaN as f32 and bf16) makes a
 * read before write visible. */
constexpr unsigned char kPoison = 0xFF;

struct LaunchRun {
  const ressl_emu_launch* launch;
  const char* kernel_name;
  void (*one_thread)(void*);
  void* args;
  jmp_buf abort_jump;           // plain mode: where a failing thread jumps to
  void* scheduler_sp;           // fiber mode: the scheduler's saved stack
  bool in_fiber;
  bool aborted;
  int result;
};

LaunchRun* g_run = nullptr;

/* Fiber stacks: mmap'd once, each with a guard page below it, reused across launches. */
struct StackPool {
  std::vector<unsigned char*> stacks;  // usable bottom of each stack
  std::vector<int> free_list;
  size_t size = 0;

  size_t stack_size() {
    if (size == 0) {
      size = 64 * 1024;
      if (const char* env = getenv("RESSL_EMU_FIBER_STACK")) {
        long v = strtol(env, nullptr, 0);
        if (v >= 16 * 1024) size = (size_t)v;
      }
      long page = sysconf(_SC_PAGESIZE);
      size = (size + page - 1) / page * page;
    }
    return size;
  }

  int take() {
    if (!free_list.empty()) {
      int s = free_list.back();
      free_list.pop_back();
      return s;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t total = stack_size() + page;
    void* mem = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    if (mem == MAP_FAILED) return -1;
    mprotect(mem, page, PROT_NONE);
    stacks.push_back((unsigned char*)mem + page);
    return (int)stacks.size() - 1;
  }

  void give(int s) { free_list.push_back(s); }
};

StackPool g_stacks;
std::vector<FiberThread> g_threads;
std::vector<WarpState> g_warps;
std::vector<unsigned char> g_dynamic_shared;

void set_message(const char* fmt, ...) {
  if (!g_run || !g_run->launch->error || g_run->launch->error_capacity == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_run->launch->error, g_run->launch->error_capacity, fmt, ap);
  va_end(ap);
}

/* Lays out a new fiber's stack so that the first switch to it "returns" into
 * ressl_emu_fiber_start with entry in r13 and arg in r12 (see fiber_x86_64.S). The top is offset
 * by a per-stack multiple of 64 bytes ("colour"): otherwise every fiber's hot stack lines share one
 * cache set (same page offset), and a block of a few hundred waiting threads thrashes it. */
void* fiber_prepare(unsigned char* bottom, size_t size, int colour, void (*entry)(void*), void* arg) {
  uintptr_t top = ((uintptr_t)(bottom + size - (size_t)(colour % 64) * 64)) & ~(uintptr_t)15;
  void** sp = (void**)top;
  *--sp = (void*)&ressl_emu_fiber_start;  // return address of the switch
  *--sp = nullptr;                          // rbp
  *--sp = nullptr;                          // rbx
  *--sp = arg;                              // r12
  *--sp = (void*)entry;                     // r13
  *--sp = nullptr;                          // r14
  *--sp = nullptr;                          // r15
  return sp;
}

/* A runner fiber: runs unclaimed threads of the block one after another (see FiberThread). */
void runner_entry(void* stack_index) {
  BlockRun& b = *g_block;
  int stack = (int)(intptr_t)stack_index;
  while (b.next_unstarted < b.num_threads) {
    FiberThread& t = b.threads[b.next_unstarted++];
    t.stack = stack;
    t.state = kRunnable;
    b.current = &t;
    ressl_emu_thread_idx = t.idx;
    ressl_emu_linear_tid = t.linear;
    g_run->one_thread(g_run->args);
    // (the thread may have waited in between: `b.current` is it again now)
    t.state = kDone;
    t.stack = -1;
    on_thread_exit(&t);
  }
  b.finished_stack = stack;
  void* dead;
  ressl_emu_fiber_switch(&dead, g_run->scheduler_sp);
  __builtin_unreachable();
}

void poison_static_shared() {
  if (__start_ressl_emu_shared && __stop_ressl_emu_shared &&
      +__stop_ressl_emu_shared > +__start_ressl_emu_shared) {
    memset(__start_ressl_emu_shared, kPoison, __stop_ressl_emu_shared - __start_ressl_emu_shared);
  }
}

void begin_block(unsigned dynamic_bytes) {
  poison_static_shared();
  if (dynamic_bytes) memset(ressl_emu_dynamic_shared_base, kPoison, dynamic_bytes);
}

void run_block_plain(const dim3& b) {
  for (unsigned z = 0; z < b.z; ++z) {
    for (unsigned y = 0; y < b.y; ++y) {
      for (unsigned x = 0; x < b.x; ++x) {
        ressl_emu_thread_idx = uint3{x, y, z};
        ressl_emu_linear_tid = x + b.x * (y + b.y * z);
        g_run->one_thread(g_run->args);
      }
    }
  }
}

/* Fills the thread table for a launch's block shape (indices stay the same for every block). */
void prepare_threads(const dim3& b) {
  unsigned n = b.x * b.y * b.z;
  g_threads.resize(n);
  unsigned i = 0;
  for (unsigned z = 0; z < b.z; ++z)
    for (unsigned y = 0; y < b.y; ++y)
      for (unsigned x = 0; x < b.x; ++x, ++i) {
        g_threads[i].idx = uint3{x, y, z};
        g_threads[i].linear = i;
      }
  g_warps.resize((n + 31) / 32);
}

/* Runs one block as fibers until every thread has exited. Returns false on a deadlock. */
bool run_block_fibers(const dim3& b) {
  unsigned n = b.x * b.y * b.z;
  unsigned nw = (n + 31) / 32;
  for (unsigned w = 0; w < nw; ++w) {
    WarpState& ws = g_warps[w];
    ws.arrived = 0;
    ws.mask = 0;
    ws.generation = 0;
    unsigned lanes = (w + 1) * 32 <= n ? 32 : n - w * 32;
    ws.live = lanes == 32 ? 0xFFFFFFFFu : ((1u << lanes) - 1);
  }
  for (unsigned k = 0; k < n; ++k) {
    g_threads[k].state = kNotStarted;
    g_threads[k].stack = -1;
  }
  BlockRun block{};
  block.threads = g_threads.data();
  block.num_threads = n;
  block.live = n;
  block.warps = g_warps.data();
  block.num_warps = nw;
  g_block = &block;
  block.finished_stack = -1;
  size_t stack_size = g_stacks.stack_size();
  while (block.live > 0) {
    bool resumed_any = false;
    for (unsigned k = 0; k < n; ++k) {
      FiberThread& t = g_threads[k];
      void* target;
      if (t.state == kDone) continue;
      if (t.state == kWaiting) {
        if (*t.wait_on == t.wait_generation) continue;
        t.state = kRunnable;
        block.current = &t;
        ressl_emu_thread_idx = t.idx;
        ressl_emu_linear_tid = t.linear;
        target = t.sp;
      } else {  // kNotStarted: a new runner takes it (and the threads after it)
        int stack = g_stacks.take();
        if (stack < 0) {
          set_message("cannot map a %zu-byte fiber stack for thread %u", stack_size, k);
          g_run->result = 2;  // CUDA_ERROR_OUT_OF_MEMORY
          g_run->aborted = true;
          break;
        }
        target = fiber_prepare(g_stacks.stacks[stack], stack_size, stack, runner_entry,
                               (void*)(intptr_t)stack);
      }
      resumed_any = true;
      g_run->in_fiber = true;
      ressl_emu_fiber_switch(&g_run->scheduler_sp, target);
      g_run->in_fiber = false;
      if (block.finished_stack >= 0) {
        g_stacks.give(block.finished_stack);
        block.finished_stack = -1;
      }
      if (g_run->aborted) break;
    }
    if (g_run->aborted) break;
    if (!resumed_any) {
      unsigned at_barrier = block.barrier.arrived, in_warp_step = 0;
      for (unsigned w = 0; w < nw; ++w) in_warp_step += __builtin_popcount(g_warps[w].arrived);
      set_message("deadlock in block (%u,%u,%u): %u live threads, %u wait at __syncthreads, %u in "
                  "warp-synchronous calls whose other lanes never arrive (divergent barrier?)",
                  ressl_emu_block_idx.x, ressl_emu_block_idx.y, ressl_emu_block_idx.z, block.live,
                  at_barrier, in_warp_step);
      g_run->result = 719;  // CUDA_ERROR_LAUNCH_FAILED
      g_run->aborted = true;
      break;
    }
  }
  if (g_run->aborted) {
    // Threads left suspended are abandoned; their stacks go back to the pool.
    for (unsigned k = 0; k < n; ++k)
      if (g_threads[k].stack >= 0 && g_threads[k].state != kDone)
        g_stacks.give(g_threads[k].stack), g_threads[k].stack = -1;
  }
  g_block = nullptr;
  return !g_run->aborted;
}

}  // namespace

void yield_to_scheduler() {
  FiberThread* t = g_block->current;
  ressl_emu_fiber_switch(&t->sp, g_run->scheduler_sp);
}

void fail_launch(int cuda_result, const char* message) {
  if (!g_run) {
    fprintf(stderr, "ressl-emu: %s (outside a launch)\n", message);
    abort();
  }
  g_run->result = cuda_result;
  g_run->aborted = true;
  set_message("%s", message);
  if (g_run->in_fiber) {
    FiberThread* t = g_block->current;
    t->state = kWaiting;
    static const unsigned never = 0;
    t->wait_on = &never;
    t->wait_generation = 0;
    ressl_emu_fiber_switch(&t->sp, g_run->scheduler_sp);
    __builtin_unreachable();
  }
  longjmp(g_run->abort_jump, 1);
}

void on_thread_exit(FiberThread* t) {
  BlockRun& b = *g_block;
  b.live--;
  b.progress++;
  WarpState& w = b.warps[t->linear / 32];
  w.live &= ~(1u << (t->linear % 32));
  if (b.barrier.arrived == 0 && w.mask == 0) return;  // nobody waits: nothing to release
  BlockBarrier& bar = b.barrier;
  if (bar.arrived > 0 && bar.arrived == b.live) {
    bar.result[bar.generation & 1] = bar.count;
    bar.arrived = 0;
    bar.count = 0;
    bar.generation++;
  }
  if (w.mask != 0 && w.arrived != 0 && (w.arrived & w.mask & w.live) == (w.mask & w.live)) {
    ressl_emu_warp_slots& s = w.slots[w.generation & 1];
    s.participants = w.arrived;
    w.arrived = 0;
    w.mask = 0;
    w.generation++;
  }
}

}  // namespace ressl_emu

using namespace ressl_emu;

extern "C" RESSL_EMU_HIDDEN void ressl_emu_rt_trap(const char* why) {
  char msg[256];
  snprintf(msg, sizeof msg, "thread (%u,%u,%u) of block (%u,%u,%u) trapped: %s",
           ressl_emu_thread_idx.x, ressl_emu_thread_idx.y, ressl_emu_thread_idx.z,
           ressl_emu_block_idx.x, ressl_emu_block_idx.y, ressl_emu_block_idx.z, why);
  fail_launch(715, msg);  // CUDA_ERROR_ILLEGAL_INSTRUCTION
}

extern "C" RESSL_EMU_HIDDEN int ressl_emu_rt_run(const ressl_emu_launch* l,
                                                  void (*one_thread)(void*), void* args,
                                                  const char* kernel_name) {
  LaunchRun run{};
  run.launch = l;
  run.kernel_name = kernel_name;
  run.one_thread = one_thread;
  run.args = args;
  LaunchRun* outer = g_run;
  g_run = &run;
  if (l->dynamic_shared_bytes > g_dynamic_shared.size()) {
    g_dynamic_shared.assign(((size_t)l->dynamic_shared_bytes + 127) / 128 * 128 + 128, 0);
  }
  uintptr_t base = ((uintptr_t)g_dynamic_shared.data() + 127) & ~(uintptr_t)127;
  ressl_emu_dynamic_shared_base = l->dynamic_shared_bytes ? (unsigned char*)base : nullptr;
  ressl_emu_grid_dim = dim3(l->grid.x, l->grid.y, l->grid.z);
  ressl_emu_block_dim = dim3(l->block.x, l->block.y, l->block.z);
  bool fibers = &ressl_emu_rt_fiber_ops_linked != nullptr;
  const dim3 b = ressl_emu_block_dim;
  if (setjmp(run.abort_jump) == 0) {
    for (unsigned gz = 0; gz < l->grid.z && !run.aborted; ++gz)
      for (unsigned gy = 0; gy < l->grid.y && !run.aborted; ++gy)
        for (unsigned gx = 0; gx < l->grid.x && !run.aborted; ++gx) {
          ressl_emu_block_idx = uint3{gx, gy, gz};
          begin_block(l->dynamic_shared_bytes);
          if (fibers) {
            if (gx == 0 && gy == 0 && gz == 0) prepare_threads(b);
            if (!run_block_fibers(b)) break;
          } else {
            run_block_plain(b);
          }
        }
  }
  g_run = outer;
  if (run.aborted && run.result != 0 && l->error && l->error[0] != '\0') {
    // Prefix the kernel name once, for the driver's message.
    char tmp[512];
    snprintf(tmp, sizeof tmp, "kernel %s: %s", kernel_name, l->error);
    snprintf(l->error, l->error_capacity, "%s", tmp);
  }
  return run.aborted ? run.result : 0;
}

extern "C" RESSL_EMU_HIDDEN unsigned ressl_emu_rt_active_mask(void) {
  if (g_block) return g_block->warps[ressl_emu_linear_tid / 32].live;
  unsigned n = ressl_emu_block_dim.x * ressl_emu_block_dim.y * ressl_emu_block_dim.z;
  unsigned w = ressl_emu_linear_tid / 32;
  unsigned lanes = (w + 1) * 32 <= n ? 32 : n - w * 32;
  return lanes == 32 ? 0xFFFFFFFFu : ((1u << lanes) - 1);
}
