/*
 * Stream capture and graphs: between cuStreamBeginCapture_v2 and cuStreamEndCapture, work on the
 * capturing stream is recorded (kernel arguments copied at capture time) instead of run; a graph
 * is that list of nodes, an executable graph a copy of it, and cuGraphLaunch enqueues the nodes
 * on a stream to run in order again. Only single-stream captures are emulated (joining another
 * stream through an event is refused with CUDA_ERROR_NOT_SUPPORTED).
 */
#include <set>

#include "state.h"

namespace emu {
namespace {

struct Graph {
  uint32_t magic;
  std::shared_ptr<const std::vector<WorkPtr>> nodes;
};

std::set<Graph*> g_graphs;
std::set<Graph*> g_execs;

struct GraphWork : Work {
  std::shared_ptr<const std::vector<WorkPtr>> nodes;
  void execute() const override {
    for (const WorkPtr& w : *nodes) {
      if (g_sticky != CUDA_SUCCESS) return;
      w->execute();
    }
  }
  const char* kind() const override { return "graph"; }
};

Graph* graph_of(CUgraph h) {
  Graph* g = (Graph*)h;
  return g_graphs.count(g) && g->magic == kGraphMagic ? g : nullptr;
}
Graph* exec_of(CUgraphExec h) {
  Graph* g = (Graph*)h;
  return g_execs.count(g) && g->magic == kExecMagic ? g : nullptr;
}

}  // namespace
}  // namespace emu

using namespace emu;

EMU_EXPORT CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  Stream* s = stream_of(hStream);
  if (!s) return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamBeginCapture_v2: invalid stream");
  if (s->legacy)
    return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                "cuStreamBeginCapture_v2: the legacy default stream cannot be captured");
  if (mode != CU_STREAM_CAPTURE_MODE_GLOBAL && mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
      mode != CU_STREAM_CAPTURE_MODE_RELAXED)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuStreamBeginCapture_v2: unknown mode %d", (int)mode);
  if (s->capture) return fail(CUDA_ERROR_ILLEGAL_STATE, "cuStreamBeginCapture_v2: already capturing");
  s->capture = new Capture();
  s->capture->mode = mode;
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuStreamEndCapture(CUstream hStream, CUgraph* phGraph) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  Stream* s = stream_of(hStream);
  if (!s) return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamEndCapture: invalid stream");
  if (!phGraph) return fail(CUDA_ERROR_INVALID_VALUE, "cuStreamEndCapture: phGraph is null");
  if (!s->capture) return fail(CUDA_ERROR_ILLEGAL_STATE, "cuStreamEndCapture: not capturing");
  Capture* c = s->capture;
  s->capture = nullptr;
  if (c->invalidated) {
    *phGraph = nullptr;
    std::string why = c->why;
    delete c;
    return fail(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,
                "cuStreamEndCapture: the capture was invalidated by %s", why.c_str());
  }
  Graph* g = new Graph{kGraphMagic, std::make_shared<const std::vector<WorkPtr>>(std::move(c->nodes))};
  delete c;
  g_graphs.insert(g);
  *phGraph = (CUgraph)g;
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus* captureStatus) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  Stream* s = stream_of(hStream);
  if (!s) return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamIsCapturing: invalid stream");
  if (!captureStatus) return fail(CUDA_ERROR_INVALID_VALUE, "cuStreamIsCapturing: null output");
  *captureStatus = !s->capture ? CU_STREAM_CAPTURE_STATUS_NONE
                   : s->capture->invalidated ? CU_STREAM_CAPTURE_STATUS_INVALIDATED
                                             : CU_STREAM_CAPTURE_STATUS_ACTIVE;
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuGraphGetNodes(CUgraph hGraph, CUgraphNode* nodes, size_t* numNodes) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  Graph* g = graph_of(hGraph);
  if (!g) return fail(CUDA_ERROR_INVALID_HANDLE, "cuGraphGetNodes: invalid graph");
  if (!numNodes) return fail(CUDA_ERROR_INVALID_VALUE, "cuGraphGetNodes: numNodes is null");
  if (nodes) {
    for (size_t i = 0; i < *numNodes && i < g->nodes->size(); ++i)
      nodes[i] = (CUgraphNode)(*g->nodes)[i].get();
  }
  *numNodes = g->nodes->size();
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec* phGraphExec, CUgraph hGraph,
                                                unsigned long long flags) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  Graph* g = graph_of(hGraph);
  if (!g) return fail(CUDA_ERROR_INVALID_HANDLE, "cuGraphInstantiateWithFlags: invalid graph");
  if (!phGraphExec) return fail(CUDA_ERROR_INVALID_VALUE, "cuGraphInstantiateWithFlags: null output");
  unsigned long long known = CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH |
                             CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD |
                             CUDA_GRAPH_INSTANTIATE_FLAG_USE_NODE_PRIORITY;
  if (flags & ~known)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuGraphInstantiateWithFlags: flags 0x%llx not emulated",
                flags);
  Graph* e = new Graph{kExecMagic, g->nodes};
  g_execs.insert(e);
  *phGraphExec = (CUgraphExec)e;
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  Graph* e = exec_of(hGraphExec);
  Stream* s = stream_of(hStream);
  if (!e || !s) return fail(CUDA_ERROR_INVALID_HANDLE, "cuGraphLaunch: invalid graph or stream");
  if (CUresult r = check_legacy_capture(s, "cuGraphLaunch")) return r;
  auto w = std::make_shared<GraphWork>();
  w->nodes = e->nodes;
  enqueue(s, w);
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuGraphExecDestroy(CUgraphExec hGraphExec) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  Graph* e = exec_of(hGraphExec);
  if (!e) return fail(CUDA_ERROR_INVALID_HANDLE, "cuGraphExecDestroy: invalid executable graph");
  g_execs.erase(e);
  e->magic = 0;
  delete e;  // launches still queued hold the nodes
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuGraphDestroy(CUgraph hGraph) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  Graph* g = graph_of(hGraph);
  if (!g) return fail(CUDA_ERROR_INVALID_HANDLE, "cuGraphDestroy: invalid graph");
  g_graphs.erase(g);
  g->magic = 0;
  delete g;
  return CUDA_SUCCESS;
}
