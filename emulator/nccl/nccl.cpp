/*
 * A stand-in libnccl.so.2 for the emulated device: the NCCL calls the project binds
 * (ffi/cuda/nccl.ts), compiled against NVIDIA's real nccl.h, doing their collectives between
 * processes over TCP, stream-ordered like NCCL's (each collective is host work on its CUDA
 * stream, run by the emulated driver when the stream runs: at a synchronisation or a query).
 *
 * Bootstrap as NCCL's: ncclGetUniqueId (rank 0) opens a listening socket and writes its address
 * into the 128-byte id; the id travels to the other ranks by the application's means (MPI_Bcast
 * here); ncclCommInitRank connects every rank to rank 0. With NCCL_COMM_ID=host:port set on every
 * rank, rank 0 listens there and no id needs to travel. Collectives go through rank 0 (a star):
 * rank 0 reduces in rank order, so every rank gets the same bits. Emulated device memory is host
 * memory: buffers are read and written in place (pointer ranges checked at execution).
 *
 * Failures never hang: every socket wait is bounded by RESSL_COMM_TIMEOUT_S (default 300 s); a
 * peer that exits, resets or times out makes the communicator's asynchronous error
 * ncclRemoteError (ncclCommGetAsyncError), and later collectives on it do nothing.
 */
#include <arpa/inet.h>
#include <cuda.h>
#include <errno.h>
#include <nccl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "../include/ressl_emu_api.h"

#define NCCL_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

constexpr uint32_t kIdMagic = 0x434e5352;    // "RSNC"
constexpr uint32_t kCommMagic = 0x4c434352;  // "RCCL"

struct IdLayout {
  uint32_t magic;
  uint32_t addr;   // IPv4, network order
  uint16_t port;   // network order
  uint16_t pad;
  uint64_t nonce;
};

struct Comm {
  uint32_t magic = kCommMagic;
  int rank = 0;
  int nranks = 1;
  uint64_t nonce = 0;
  std::vector<int> peers;  // rank 0: socket per rank (-1 for itself); others: [0] = rank 0
  std::atomic<int> async_error{ncclSuccess};
  std::string message;
};

std::mutex g_mu;
std::map<uint64_t, int> g_listeners;  // nonce -> listening socket (ids made in this process)

double timeout_s() {
  const char* v = getenv("RESSL_COMM_TIMEOUT_S");
  double t = v ? atof(v) : 0;
  return t > 0 ? t : 300;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/* Waits until fd is ready for `events` or the deadline passes; false on timeout or error. */
bool wait_fd(int fd, short events, double deadline) {
  for (;;) {
    double left = deadline - now_s();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, (int)std::min(left * 1000, 1000.0) + 1);
    if (r > 0) return (p.revents & (POLLERR | POLLNVAL)) == 0 || (p.revents & POLLIN);
    if (r < 0 && errno != EINTR) return false;
  }
}

bool send_all(int fd, const void* buf, size_t n, double deadline) {
  const char* p = (const char*)buf;
  while (n > 0) {
    if (!wait_fd(fd, POLLOUT, deadline)) return false;
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k <= 0) {
      if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      return false;
    }
    p += k;
    n -= (size_t)k;
  }
  return true;
}

bool recv_all(int fd, void* buf, size_t n, double deadline) {
  char* p = (char*)buf;
  while (n > 0) {
    if (!wait_fd(fd, POLLIN, deadline)) return false;
    ssize_t k = recv(fd, p, n, 0);
    if (k <= 0) {
      if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      return false;  // the peer closed or reset the connection
    }
    p += k;
    n -= (size_t)k;
  }
  return true;
}

void tune(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* NCCL_COMM_ID=host:port as an address, or false when unset or unreadable. */
bool comm_id_env(uint32_t* addr, uint16_t* port) {
  const char* v = getenv("NCCL_COMM_ID");
  if (!v || !*v) return false;
  std::string s(v);
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_INET;
  if (getaddrinfo(s.substr(0, colon).c_str(), nullptr, &hints, &res) != 0 || !res) return false;
  *addr = ((sockaddr_in*)res->ai_addr)->sin_addr.s_addr;
  freeaddrinfo(res);
  *port = htons((uint16_t)atoi(s.c_str() + colon + 1));
  return true;
}

int listen_on(uint32_t addr, uint16_t port, uint16_t* bound) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = addr;
  sa.sin_port = port;
  socklen_t len = sizeof sa;
  if (bind(fd, (sockaddr*)&sa, sizeof sa) != 0 || listen(fd, 128) != 0 ||
      getsockname(fd, (sockaddr*)&sa, &len) != 0) {
    close(fd);
    return -1;
  }
  *bound = sa.sin_port;
  return fd;
}

Comm* comm_of(ncclComm_t c) {
  Comm* p = (Comm*)c;
  return p && p->magic == kCommMagic ? p : nullptr;
}

void fail(Comm* c, ncclResult_t code, const std::string& what) {
  int expected = ncclSuccess;
  if (c->async_error.compare_exchange_strong(expected, code)) {
    c->message = what;
    if (getenv("NCCL_DEBUG")) fprintf(stderr, "NCCL stand-in rank %d: %s\n", c->rank, what.c_str());
  }
}

size_t type_size(ncclDataType_t t) {
  switch (t) {
    case ncclInt8:
    case ncclUint8: return 1;
    case ncclFloat16:
    case ncclBfloat16: return 2;
    case ncclInt32:
    case ncclUint32:
    case ncclFloat32: return 4;
    case ncclInt64:
    case ncclUint64:
    case ncclFloat64: return 8;
    default: return 0;
  }
}

/* One collective, run as host work on its stream. */
struct Op {
  enum Kind { kAllReduce, kAllGather, kBroadcast, kReduceScatter } kind;
  Comm* comm;
  const void* send;
  void* recv;
  size_t count;  // elements per rank's part (allgather, reduce-scatter) or of the buffer
  ncclDataType_t type;
  ncclRedOp_t op;
  int root;
};

template <typename T>
void reduce_into(T* acc, const T* x, size_t n, ncclRedOp_t op) {
  for (size_t i = 0; i < n; i++) {
    if (op == ncclMax) acc[i] = std::max(acc[i], x[i]);
    else if (op == ncclMin) acc[i] = std::min(acc[i], x[i]);
    else if (op == ncclProd) acc[i] = acc[i] * x[i];
    else acc[i] = acc[i] + x[i];
  }
}

template <typename T>
void finish_avg(T* acc, size_t n, int nranks) {
  for (size_t i = 0; i < n; i++) acc[i] = (T)(acc[i] / nranks);
}

/* acc = acc op x over n elements of type t (ncclAvg sums here; divided at the end). */
bool reduce_typed(void* acc, const void* x, size_t n, ncclDataType_t t, ncclRedOp_t op) {
  switch (t) {
    case ncclFloat32: reduce_into((float*)acc, (const float*)x, n, op); return true;
    case ncclFloat64: reduce_into((double*)acc, (const double*)x, n, op); return true;
    case ncclInt32: reduce_into((int32_t*)acc, (const int32_t*)x, n, op); return true;
    case ncclInt64: reduce_into((int64_t*)acc, (const int64_t*)x, n, op); return true;
    default: return false;
  }
}

void avg_typed(void* acc, size_t n, ncclDataType_t t, int nranks) {
  if (t == ncclFloat32) finish_avg((float*)acc, n, nranks);
  else if (t == ncclFloat64) finish_avg((double*)acc, n, nranks);
}

/* The buffer every rank ends with, computed by rank 0 from every rank's input (star). */
void run_op(void* p) {
  Op* o = (Op*)p;
  Comm* c = o->comm;
  if (c->async_error.load() != ncclSuccess) return;
  const size_t es = type_size(o->type);
  const int n = c->nranks;
  size_t in_bytes = o->count * es, out_bytes = in_bytes;
  if (o->kind == Op::kAllGather) out_bytes = in_bytes * n;
  if (o->kind == Op::kReduceScatter) in_bytes = out_bytes * n;
  if ((in_bytes && !ressl_emu_device_range_ok(o->send, in_bytes, 0)) ||
      (out_bytes && !ressl_emu_device_range_ok(o->recv, out_bytes, 0))) {
    ressl_emu_fault(CUDA_ERROR_ILLEGAL_ADDRESS, "NCCL stand-in: a buffer is not device memory");
    fail(c, ncclUnhandledCudaError, "a buffer is not device memory");
    return;
  }
  const double deadline = now_s() + timeout_s();
  // Every rank's contribution reaches rank 0: all of it for the reductions and the gather, the
  // root's buffer only for a broadcast.
  const bool bcast = o->kind == Op::kBroadcast;
  const size_t full = o->kind == Op::kAllGather ? out_bytes : in_bytes;
  std::vector<char> result(full);
  auto lost = [&](int peer) {
    fail(c, ncclRemoteError, "rank " + std::to_string(peer) + " exited, closed the connection "
                             "or did not answer within RESSL_COMM_TIMEOUT_S");
  };
  if (c->rank == 0) {
    std::vector<char> part(in_bytes);
    for (int r = 0; r < n; r++) {
      if (bcast && r != o->root) continue;
      char* dst = o->kind == Op::kAllGather ? result.data() + r * in_bytes
                  : (r == 0 || bcast)       ? result.data()
                                            : part.data();
      if (r == 0) memcpy(dst, o->send, in_bytes);
      else if (!recv_all(c->peers[r], dst, in_bytes, deadline)) return lost(r);
      if (!bcast && o->kind != Op::kAllGather && r > 0 &&
          !reduce_typed(result.data(), part.data(), o->count * (o->kind == Op::kReduceScatter ? n : 1), o->type, o->op)) {
        return fail(c, ncclInvalidArgument, "unsupported type");
      }
    }
    if (!bcast && o->kind != Op::kAllGather && o->op == ncclAvg) {
      avg_typed(result.data(), full / es, o->type, n);
    }
    for (int r = 1; r < n; r++) {
      if (!send_all(c->peers[r], result.data(), full, deadline)) return lost(r);
    }
  } else {
    if (!bcast || c->rank == o->root) {
      if (!send_all(c->peers[0], o->send, in_bytes, deadline)) return lost(0);
    }
    if (!recv_all(c->peers[0], result.data(), full, deadline)) return lost(0);
  }
  if (o->kind == Op::kReduceScatter) {
    memcpy(o->recv, result.data() + c->rank * out_bytes, out_bytes);
  } else {
    memcpy(o->recv, result.data(), out_bytes);
  }
}

ncclResult_t enqueue(const Op& op, cudaStream_t stream, const char* what) {
  Comm* c = op.comm;
  if (!c) return ncclInvalidArgument;
  if (type_size(op.type) == 0 || (op.kind != Op::kAllGather && op.kind != Op::kBroadcast &&
                                  (op.op < ncclSum || op.op > ncclAvg))) {
    return ncclInvalidArgument;
  }
  if (op.kind == Op::kBroadcast && (op.root < 0 || op.root >= c->nranks)) return ncclInvalidArgument;
  if (op.count > 0 && (!op.send || !op.recv)) return ncclInvalidArgument;
  if (c->async_error.load() != ncclSuccess) return (ncclResult_t)c->async_error.load();
  Op* p = new Op(op);
  int r = ressl_emu_enqueue_host((CUstream)stream, run_op, p, [](void* q) { delete (Op*)q; }, what);
  return r == CUDA_SUCCESS ? ncclSuccess : ncclUnhandledCudaError;
}

}  // namespace

NCCL_EXPORT ncclResult_t ncclGetVersion(int* version) {
  if (!version) return ncclInvalidArgument;
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

NCCL_EXPORT const char* ncclGetErrorString(ncclResult_t r) {
  switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    case ncclTimeout: return "timeout";
    default: return "unknown result code";
  }
}

NCCL_EXPORT ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  if (!id) return ncclInvalidArgument;
  IdLayout l{};
  l.magic = kIdMagic;
  uint64_t nonce = ((uint64_t)getpid() << 32) ^ (uint64_t)now_s() ^ (uint64_t)(uintptr_t)id;
  l.nonce = nonce ^ ((uint64_t)rand() << 16);
  uint32_t addr;
  uint16_t port;
  if (comm_id_env(&addr, &port)) {
    l.addr = addr;  // rank 0 listens there in ncclCommInitRank
    l.port = port;
  } else {
    uint16_t bound;
    int fd = listen_on(htonl(INADDR_ANY), 0, &bound);
    if (fd < 0) return ncclSystemError;
    char host[256];
    addrinfo hints{}, *res = nullptr;
    hints.ai_family = AF_INET;
    l.addr = htonl(INADDR_LOOPBACK);
    if (gethostname(host, sizeof host) == 0 && getaddrinfo(host, nullptr, &hints, &res) == 0 && res) {
      l.addr = ((sockaddr_in*)res->ai_addr)->sin_addr.s_addr;
      freeaddrinfo(res);
    }
    l.port = bound;
    std::lock_guard<std::mutex> lock(g_mu);
    g_listeners[l.nonce] = fd;
  }
  memset(id->internal, 0, sizeof id->internal);
  memcpy(id->internal, &l, sizeof l);
  return ncclSuccess;
}

NCCL_EXPORT ncclResult_t ncclCommInitRank(ncclComm_t* out, int nranks, ncclUniqueId commId, int rank) {
  if (!out || nranks < 1 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
  IdLayout l;
  memcpy(&l, commId.internal, sizeof l);
  if (l.magic != kIdMagic) return ncclInvalidArgument;
  const double deadline = now_s() + timeout_s();
  Comm* c = new Comm();
  c->rank = rank;
  c->nranks = nranks;
  c->nonce = l.nonce;
  c->peers.assign(nranks, -1);
  auto give_up = [&](ncclResult_t r) {
    for (int fd : c->peers) if (fd >= 0) close(fd);
    delete c;
    return r;
  };
  if (rank == 0) {
    int lfd = -1;
    {
      std::lock_guard<std::mutex> lock(g_mu);
      auto it = g_listeners.find(l.nonce);
      if (it != g_listeners.end()) {
        lfd = it->second;
        g_listeners.erase(it);
      }
    }
    uint16_t bound;
    if (lfd < 0) lfd = listen_on(l.addr, l.port, &bound);  // NCCL_COMM_ID: listen now
    if (lfd < 0) return give_up(ncclSystemError);
    for (int k = 1; k < nranks; k++) {
      if (!wait_fd(lfd, POLLIN, deadline)) {
        close(lfd);
        return give_up(ncclRemoteError);
      }
      int fd = accept(lfd, nullptr, nullptr);
      int32_t hello[3];
      if (fd < 0 || !recv_all(fd, hello, sizeof hello, deadline) ||
          (uint32_t)hello[0] != kIdMagic || hello[1] <= 0 || hello[1] >= nranks ||
          c->peers[hello[1]] >= 0 || hello[2] != nranks) {
        if (fd >= 0) close(fd);
        close(lfd);
        return give_up(ncclInvalidUsage);
      }
      tune(fd);
      c->peers[hello[1]] = fd;
    }
    close(lfd);
    for (int k = 1; k < nranks; k++) {
      int32_t ok = 1;
      if (!send_all(c->peers[k], &ok, sizeof ok, deadline)) return give_up(ncclRemoteError);
    }
  } else {
    int fd = -1;
    for (;;) {
      fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_addr.s_addr = l.addr;
      sa.sin_port = l.port;
      if (fd >= 0 && connect(fd, (sockaddr*)&sa, sizeof sa) == 0) break;
      if (fd >= 0) close(fd);
      if (now_s() > deadline) return give_up(ncclRemoteError);
      usleep(20000);  // rank 0 may not listen yet (NCCL_COMM_ID)
    }
    tune(fd);
    c->peers[0] = fd;
    int32_t hello[3] = {(int32_t)kIdMagic, rank, nranks};
    int32_t ok = 0;
    if (!send_all(fd, hello, sizeof hello, deadline) || !recv_all(fd, &ok, sizeof ok, deadline) ||
        ok != 1) {
      return give_up(ncclRemoteError);
    }
  }
  *out = (ncclComm_t)c;
  return ncclSuccess;
}

NCCL_EXPORT ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError) {
  Comm* c = comm_of(comm);
  if (!c || !asyncError) return ncclInvalidArgument;
  *asyncError = (ncclResult_t)c->async_error.load();
  return ncclSuccess;
}

static ncclResult_t release(Comm* c) {
  for (int fd : c->peers) if (fd >= 0) close(fd);
  c->magic = 0;
  delete c;
  return ncclSuccess;
}

NCCL_EXPORT ncclResult_t ncclCommAbort(ncclComm_t comm) {
  Comm* c = comm_of(comm);
  if (!c) return ncclInvalidArgument;
  // Work still queued must not use the sockets: mark the communicator failed first.
  fail(c, ncclRemoteError, "aborted");
  for (int& fd : c->peers) {
    if (fd >= 0) shutdown(fd, SHUT_RDWR);
  }
  return ncclSuccess;  // the object stays (queued host work may still hold it); sockets closed
}

NCCL_EXPORT ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  Comm* c = comm_of(comm);
  if (!c) return ncclInvalidArgument;
  cuCtxSynchronize();  // as the real one: pending work on the communicator completes first
  return release(c);
}

NCCL_EXPORT ncclResult_t ncclGroupStart() { return ncclSuccess; }
NCCL_EXPORT ncclResult_t ncclGroupEnd() { return ncclSuccess; }

NCCL_EXPORT ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                                       ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                                       cudaStream_t stream) {
  Op o{Op::kAllReduce, comm_of(comm), sendbuff, recvbuff, count, datatype, op, 0};
  return enqueue(o, stream, "ncclAllReduce");
}

NCCL_EXPORT ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                                       ncclDataType_t datatype, ncclComm_t comm,
                                       cudaStream_t stream) {
  Op o{Op::kAllGather, comm_of(comm), sendbuff, recvbuff, sendcount, datatype, ncclSum, 0};
  return enqueue(o, stream, "ncclAllGather");
}

NCCL_EXPORT ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count,
                                       ncclDataType_t datatype, int root, ncclComm_t comm,
                                       cudaStream_t stream) {
  Op o{Op::kBroadcast, comm_of(comm), sendbuff, recvbuff, count, datatype, ncclSum, root};
  return enqueue(o, stream, "ncclBroadcast");
}

NCCL_EXPORT ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                                           ncclDataType_t datatype, ncclRedOp_t op,
                                           ncclComm_t comm, cudaStream_t stream) {
  Op o{Op::kReduceScatter, comm_of(comm), sendbuff, recvbuff, recvcount, datatype, op, 0};
  return enqueue(o, stream, "ncclReduceScatter");
}
