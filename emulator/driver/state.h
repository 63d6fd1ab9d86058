/*
 * Shared state of the emulated driver (libcuda.so.1): configuration, the global lock, contexts,
 * device memory, streams with their queued work, events, modules, graphs, and the sticky error.
 * Every exported cu* function takes the global lock first (Lock), so the emulator is safe to call
 * from several host threads; work runs on whichever thread synchronises.
 */
#ifndef RESSL_EMU_DRIVER_STATE_H
#define RESSL_EMU_DRIVER_STATE_H

#include <cuda.h>
#include <stdint.h>

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#define EMU_EXPORT extern "C" __attribute__((visibility("default")))

namespace emu {

/* ---- configuration (environment, read once by the first cuInit) ---------------------------- */
struct Config {
  int devices = 1;                        // RESSL_EMU_DEVICES
  size_t device_memory = 16ull << 30;     // RESSL_EMU_DEVICE_MEMORY (bytes)
  bool sync = false;                      // RESSL_EMU_SYNC=1: run work at enqueue
  long fail_nth = 0;                      // RESSL_EMU_FAIL_ALLOC nth:N (fail the N-th allocation)
  long fail_from = 0;                     //                      from:N (fail it and all later)
  size_t fail_above = 0;                  //                      above:BYTES
  int alloc_fill = 0xFF;                  // RESSL_EMU_ALLOC_FILL (byte, or -1 for none)
  bool verbose = false;                   // RESSL_EMU_VERBOSE=1: print every failure
};
extern Config g_config;
/* Reads the environment; returns false (with a message) if a variable is malformed. */
bool load_config(std::string* error);

/* ---- the lock and error reporting ------------------------------------------------------------ */
extern std::recursive_mutex g_mu;
using Lock = std::lock_guard<std::recursive_mutex>;

/* Records `code` with a message for ressl_emu_last_error(); returns code. */
CUresult fail(CUresult code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
/* A failure that also goes to stderr (bugs the caller should see even without checking). */
CUresult fail_loud(CUresult code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
/* The sticky error of the context (a kernel fault); CUDA_SUCCESS while healthy. */
extern CUresult g_sticky;
void set_sticky(CUresult code, const std::string& message);

/* ---- initialisation and context ------------------------------------------------------------- */
extern bool g_initialized;
struct Context {
  uint32_t magic;
  int refcount;
};
extern Context g_primary;
/* Checks cuInit, a device and a current context, and no sticky error. */
CUresult require_context();
CUresult require_init();

/* ---- memory ---------------------------------------------------------------------------------- */
enum class MemKind { Device, Pinned };
struct Allocation {
  size_t size;
  size_t charged;   // bytes counted against the device memory
  MemKind kind;
  bool live;        // false between cuMemAllocAsync's enqueue and its execution, and after free
};
/* The allocation containing [p, p + bytes), or null. Pinned host memory counts only with
 * allow_pinned; an allocation whose cuMemAllocAsync has not run yet (or that a pending
 * cuMemFreeAsync released) only without require_live (checks at enqueue time). */
Allocation* find_range(uintptr_t p, size_t bytes, bool allow_pinned, bool require_live);
/* Whether [p, p + bytes) overlaps any device allocation (a host pointer that is not one). */
bool in_device_memory(const void* p);
bool is_pinned(const void* p, size_t bytes);
void release_all_memory();
/* Allocates device memory (shared by cuMemAlloc_v2 and cuMemAllocAsync). */
CUresult device_alloc(CUdeviceptr* out, size_t bytes, bool live_now);
void device_free_now(uintptr_t base);

/* ---- queued work ----------------------------------------------------------------------------- */
struct Stream;
struct Work {
  virtual ~Work() = default;
  /* Runs the work; a failure becomes the sticky error (set_sticky). */
  virtual void execute() const = 0;
  virtual const char* kind() const = 0;
};
using WorkPtr = std::shared_ptr<const Work>;

/* A stream capture in progress: the work recorded instead of run. */
struct Capture {
  CUstreamCaptureMode mode;
  std::vector<WorkPtr> nodes;
  bool invalidated = false;
  std::string why;
};
/* Marks the capture of `s` invalid (cuStreamEndCapture then fails), returns `code`. */
CUresult invalidate_capture(Capture* c, CUresult code, const char* why);

struct Stream {
  uint32_t magic;
  unsigned flags;
  bool legacy;
  std::deque<std::pair<uint64_t, WorkPtr>> queue;
  uint64_t last_seq = 0;   // sequence number of the newest enqueued work
  uint64_t done_seq = 0;   // everything up to here has run
  Capture* capture = nullptr;
  uint64_t id = 0;         // never reused, unlike the address
};
extern Stream g_legacy_stream;
/* Resolves a CUstream handle (0, CU_STREAM_LEGACY, CU_STREAM_PER_THREAD -> the legacy stream). */
Stream* stream_of(CUstream h);
bool stream_valid(CUstream h);
/* Appends work (or records it into the stream's capture); honours the legacy stream's implicit
 * ordering and RESSL_EMU_SYNC. Returns the sequence number (0 when captured). */
uint64_t enqueue(Stream* s, WorkPtr w);
/* Runs a stream's work up to and including `seq`. */
void drain(Stream* s, uint64_t seq);
void drain_all();
bool any_capture_active();
/* Refuses work on the legacy stream while a blocking stream captures (it would have to wait for
 * the capture); returns CUDA_SUCCESS when `s` may take work. */
CUresult check_legacy_capture(Stream* s, const char* what);
void destroy_all_streams();

/* Streams, events, modules and graphs are heap objects handed out as opaque handles and checked
 * against these magics before use. */
constexpr uint32_t kStreamMagic = 0x53545245;  // "STRE"
constexpr uint32_t kEventMagic = 0x45564e54;   // "EVNT"
constexpr uint32_t kModuleMagic = 0x4d4f444c;  // "MODL"
constexpr uint32_t kFuncMagic = 0x46554e43;    // "FUNC"
constexpr uint32_t kGraphMagic = 0x47525048;   // "GRPH"
constexpr uint32_t kExecMagic = 0x47455843;    // "GEXC"
constexpr uint32_t kContextMagic = 0x43545854; // "CTXT"

}  // namespace emu

#endif
