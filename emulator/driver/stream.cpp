/*
 * Streams: each one a FIFO of work that runs only at synchronisation points (cuStreamSynchronize,
 * cuCtxSynchronize, cuEventSynchronize, synchronous copies, cuMemFree, a query), so a program that
 * reads results before synchronising sees stale data in tests, as it may on a real GPU.
 * RESSL_EMU_SYNC=1 runs work as it is enqueued instead. Cross-stream order comes from
 * cuStreamWaitEvent and the legacy default stream's implicit synchronisation, both expressed as
 * "run stream X up to sequence N" work items.
 */
#include <chrono>

#include "state.h"

namespace emu {

Stream g_legacy_stream = {kStreamMagic, CU_STREAM_DEFAULT, true};

namespace {
std::map<uint64_t, Stream*> g_streams;  // created streams by id (the legacy one is not here)
uint64_t g_next_stream_id = 1;

Stream* stream_by_id(uint64_t id) {
  if (id == 0) return &g_legacy_stream;
  auto it = g_streams.find(id);
  return it == g_streams.end() ? nullptr : it->second;
}

/* "Run stream `id` up to `seq` before going on": cuStreamWaitEvent and implicit legacy sync. */
struct WaitWork : Work {
  uint64_t stream_id;
  uint64_t seq;
  void execute() const override {
    if (Stream* s = stream_by_id(stream_id)) drain(s, seq);
  }
  const char* kind() const override { return "wait"; }
};

uint64_t push(Stream* s, WorkPtr w) {
  s->queue.emplace_back(++s->last_seq, std::move(w));
  return s->last_seq;
}

void push_wait(Stream* s, Stream* on) {
  if (on->last_seq <= on->done_seq) return;
  auto w = std::make_shared<WaitWork>();
  w->stream_id = on->legacy ? 0 : on->id;
  w->seq = on->last_seq;
  push(s, w);
}

bool is_blocking(const Stream* s) { return !s->legacy && (s->flags & CU_STREAM_NON_BLOCKING) == 0; }
}  // namespace

Stream* stream_of(CUstream h) {
  if (h == nullptr || h == CU_STREAM_LEGACY || h == CU_STREAM_PER_THREAD) return &g_legacy_stream;
  Stream* s = (Stream*)h;
  for (auto& [id, p] : g_streams)
    if (p == s) return s->magic == kStreamMagic ? s : nullptr;
  return nullptr;
}

bool stream_valid(CUstream h) { return stream_of(h) != nullptr; }

uint64_t enqueue(Stream* s, WorkPtr w) {
  if (s->capture) {
    s->capture->nodes.push_back(std::move(w));
    return 0;
  }
  if (s->legacy) {
    for (auto& [id, t] : g_streams)
      if (is_blocking(t)) push_wait(s, t);
  } else if (is_blocking(s)) {
    push_wait(s, &g_legacy_stream);
  }
  uint64_t seq = push(s, std::move(w));
  if (g_config.sync) drain(s, seq);
  return seq;
}

void drain(Stream* s, uint64_t seq) {
  while (!s->queue.empty() && s->queue.front().first <= seq) {
    auto item = std::move(s->queue.front());
    s->queue.pop_front();
    // After a fault the context is unusable: pending work is dropped, as the device would.
    if (g_sticky == CUDA_SUCCESS) item.second->execute();
    s->done_seq = item.first;
  }
}

void drain_all() {
  drain(&g_legacy_stream, g_legacy_stream.last_seq);
  for (auto& [id, s] : g_streams) drain(s, s->last_seq);
}

bool any_capture_active() {
  for (auto& [id, s] : g_streams)
    if (s->capture) return true;
  return false;
}

CUresult check_legacy_capture(Stream* s, const char* what) {
  if (!s->legacy) return CUDA_SUCCESS;
  for (auto& [id, t] : g_streams) {
    if (t->capture && is_blocking(t)) {
      invalidate_capture(t->capture, CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, what);
      return fail(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT,
                  "%s on the legacy stream while a blocking stream captures", what);
    }
  }
  return CUDA_SUCCESS;
}

CUresult invalidate_capture(Capture* c, CUresult code, const char* why) {
  if (!c->invalidated) {
    c->invalidated = true;
    c->why = why;
  }
  return code;
}

void destroy_all_streams() {
  for (auto& [id, s] : g_streams) {
    s->magic = 0;
    delete s->capture;
    delete s;
  }
  g_streams.clear();
  g_legacy_stream.queue.clear();
  g_legacy_stream.done_seq = g_legacy_stream.last_seq;
}

/* ---- events ---------------------------------------------------------------------------------- */

struct EventState {
  unsigned flags = 0;
  unsigned generation = 0;     // bumped by every cuEventRecord
  bool recorded = false;
  bool completed = false;
  uint64_t stream_id = 0;      // where the newest record was enqueued
  uint64_t seq = 0;
  Capture* captured_in = nullptr;
  double time_ms = 0;
};

struct Event {
  uint32_t magic;
  std::shared_ptr<EventState> state;
};

namespace {
double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

struct RecordWork : Work {
  std::shared_ptr<EventState> event;
  unsigned generation;
  void execute() const override {
    if (event->generation != generation) return;  // re-recorded since: the newer record counts
    event->completed = true;
    event->time_ms = now_ms();
  }
  const char* kind() const override { return "cuEventRecord"; }
};

std::map<Event*, bool> g_events;

EventState* event_of(CUevent h) {
  Event* e = (Event*)h;
  if (!e || !g_events.count(e) || e->magic != kEventMagic) return nullptr;
  return e->state.get();
}

/* Runs the work before the event's newest record; false if the event lives in a capture. */
void drain_to_event(EventState* e) {
  if (Stream* s = stream_by_id(e->stream_id)) drain(s, e->seq);
}
}  // namespace

}  // namespace emu

using namespace emu;

EMU_EXPORT CUresult cuStreamCreate(CUstream* phStream, unsigned int Flags) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  if (!phStream) return fail(CUDA_ERROR_INVALID_VALUE, "cuStreamCreate: phStream is null");
  if (Flags & ~(unsigned)CU_STREAM_NON_BLOCKING)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuStreamCreate: unknown flags 0x%x", Flags);
  Stream* s = new Stream{kStreamMagic, Flags, false};
  s->id = g_next_stream_id++;
  g_streams[s->id] = s;
  *phStream = (CUstream)s;
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuStreamDestroy_v2(CUstream hStream) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  Stream* s = stream_of(hStream);
  if (!s || s->legacy) return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamDestroy_v2: invalid stream");
  if (s->capture)
    return fail(CUDA_ERROR_ILLEGAL_STATE, "cuStreamDestroy_v2: the stream is capturing");
  // The device finishes a destroyed stream's work; the emulator runs it now.
  drain(s, s->last_seq);
  g_streams.erase(s->id);
  s->magic = 0;
  delete s;
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuStreamSynchronize(CUstream hStream) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  Stream* s = stream_of(hStream);
  if (!s) return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamSynchronize: invalid stream");
  if (s->capture)
    return fail(invalidate_capture(s->capture, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                                   "cuStreamSynchronize on the capturing stream"),
                "cuStreamSynchronize on a capturing stream");
  if (CUresult r = check_legacy_capture(s, "cuStreamSynchronize")) return r;
  drain(s, s->last_seq);
  return g_sticky;
}

EMU_EXPORT CUresult cuStreamQuery(CUstream hStream) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  Stream* s = stream_of(hStream);
  if (!s) return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamQuery: invalid stream");
  if (s->capture) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  if (s->queue.empty()) return g_sticky;
  // Not done yet; the work "progresses" now, so a polling loop ends at its next query.
  drain(s, s->last_seq);
  return g_sticky != CUDA_SUCCESS ? g_sticky : CUDA_ERROR_NOT_READY;
}

EMU_EXPORT CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  Stream* s = stream_of(hStream);
  EventState* e = event_of(hEvent);
  if (!s || !e) return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamWaitEvent: invalid stream or event");
  if (Flags != 0 && Flags != CU_EVENT_WAIT_EXTERNAL)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuStreamWaitEvent: unknown flags 0x%x", Flags);
  if (!e->recorded) return CUDA_SUCCESS;  // waiting on a never-recorded event is a no-op
  if (e->captured_in) {
    if (s->capture == e->captured_in) return CUDA_SUCCESS;  // same capture: already ordered
    return fail(CUDA_ERROR_NOT_SUPPORTED,
                "cuStreamWaitEvent: joining another stream into a capture (fork/join capture) is "
                "not emulated");
  }
  if (s->capture)
    return fail(invalidate_capture(s->capture, CUDA_ERROR_STREAM_CAPTURE_ISOLATION,
                                   "cuStreamWaitEvent on an event recorded outside the capture"),
                "cuStreamWaitEvent: event recorded outside the capture");
  if (CUresult r = check_legacy_capture(s, "cuStreamWaitEvent")) return r;
  auto w = std::make_shared<WaitWork>();
  w->stream_id = e->stream_id;
  w->seq = e->seq;
  enqueue(s, w);
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuEventCreate(CUevent* phEvent, unsigned int Flags) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  if (!phEvent) return fail(CUDA_ERROR_INVALID_VALUE, "cuEventCreate: phEvent is null");
  unsigned known = CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS;
  if (Flags & ~known) return fail(CUDA_ERROR_INVALID_VALUE, "cuEventCreate: unknown flags 0x%x", Flags);
  if ((Flags & CU_EVENT_INTERPROCESS) && !(Flags & CU_EVENT_DISABLE_TIMING))
    return fail(CUDA_ERROR_INVALID_VALUE,
                "cuEventCreate: CU_EVENT_INTERPROCESS needs CU_EVENT_DISABLE_TIMING");
  Event* e = new Event{kEventMagic, std::make_shared<EventState>()};
  e->state->flags = Flags;
  g_events[e] = true;
  *phEvent = (CUevent)e;
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuEventRecord(CUevent hEvent, CUstream hStream) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  Stream* s = stream_of(hStream);
  EventState* e = event_of(hEvent);
  if (!s || !e) return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventRecord: invalid stream or event");
  if (CUresult r = check_legacy_capture(s, "cuEventRecord")) return r;
  e->generation++;
  e->recorded = true;
  e->completed = false;
  if (s->capture) {
    e->captured_in = s->capture;
    return CUDA_SUCCESS;
  }
  e->captured_in = nullptr;
  auto w = std::make_shared<RecordWork>();
  w->event = ((Event*)hEvent)->state;
  w->generation = e->generation;
  e->stream_id = s->legacy ? 0 : s->id;
  e->seq = enqueue(s, w);
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuEventQuery(CUevent hEvent) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  EventState* e = event_of(hEvent);
  if (!e) return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventQuery: invalid event");
  if (e->captured_in) return CUDA_ERROR_CAPTURED_EVENT;
  if (!e->recorded || e->completed) return g_sticky;
  drain_to_event(e);  // progresses, so that polling ends
  return g_sticky != CUDA_SUCCESS ? g_sticky : CUDA_ERROR_NOT_READY;
}

EMU_EXPORT CUresult cuEventSynchronize(CUevent hEvent) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  EventState* e = event_of(hEvent);
  if (!e) return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventSynchronize: invalid event");
  if (e->captured_in)
    return fail(CUDA_ERROR_CAPTURED_EVENT, "cuEventSynchronize: event recorded in a capture");
  if (e->recorded) drain_to_event(e);
  return g_sticky;
}

EMU_EXPORT CUresult cuEventElapsedTime_v2(float* pMilliseconds, CUevent hStart, CUevent hEnd) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  EventState* a = event_of(hStart);
  EventState* b = event_of(hEnd);
  if (!a || !b) return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventElapsedTime_v2: invalid event");
  if (!pMilliseconds) return fail(CUDA_ERROR_INVALID_VALUE, "cuEventElapsedTime_v2: null output");
  if ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING)
    return fail(CUDA_ERROR_INVALID_HANDLE,
                "cuEventElapsedTime_v2: an event was created with CU_EVENT_DISABLE_TIMING");
  if (!a->recorded || !b->recorded)
    return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventElapsedTime_v2: an event was never recorded");
  if (!a->completed || !b->completed)
    return fail(CUDA_ERROR_NOT_READY, "cuEventElapsedTime_v2: an event has not completed yet");
  *pMilliseconds = (float)(b->time_ms - a->time_ms);
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuEventDestroy_v2(CUevent hEvent) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  Event* e = (Event*)hEvent;
  if (!event_of(hEvent)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventDestroy_v2: invalid event");
  g_events.erase(e);
  e->magic = 0;
  delete e;  // pending records keep the state alive through their shared_ptr
  return CUDA_SUCCESS;
}
