/*
 * What the emulated driver (libcuda.so.1) offers the cuBLAS and cuDNN stand-ins: stream-ordered
 * host work, device pointer checks, device faults. All return/take CUresult values as int.
 */
#ifndef RESSL_EMU_API_H
#define RESSL_EMU_API_H

#include <cuda.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 0 when cuInit succeeded with a device and this thread has a current context. */
int ressl_emu_context_status(void);
/* 0 when the stream handle is valid (0 / CU_STREAM_LEGACY mean the legacy stream). */
int ressl_emu_stream_status(CUstream stream);
/* Enqueues fn(ctx) on the stream (or records it into the stream's capture); free_ctx(ctx) runs
 * once the work and every graph holding it are gone. Returns a CUresult. */
int ressl_emu_enqueue_host(CUstream stream, void (*fn)(void* ctx), void* ctx,
                           void (*free_ctx)(void* ctx), const char* what);
/* 1 when [p, p + bytes) lies inside one live device allocation (pinned host memory too when
 * allow_pinned). Call it from host work, at execution time. */
int ressl_emu_device_range_ok(const void* p, size_t bytes, int allow_pinned);
/* Reports a device fault from host work: becomes the context's sticky error. */
void ressl_emu_fault(int cuda_error, const char* message);
/* Runs all work queued on the stream (cuStreamSynchronize); returns a CUresult. */
int ressl_emu_stream_synchronize(CUstream stream);
/* The emulator's most recent failure message. */
const char* ressl_emu_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
