/*
 * cuInit, the device queries (one emulated sm_90 device, or none with RESSL_EMU_DEVICES=0) and
 * the primary context.
 */
#include <stdio.h>
#include <string.h>

#include "state.h"

namespace emu {

bool g_initialized = false;
Context g_primary = {kContextMagic, 0};

namespace {
thread_local CUcontext t_current = nullptr;
CUresult g_init_result = CUDA_SUCCESS;
bool g_init_tried = false;

const char kDeviceName[] = "NVIDIA H100 80GB HBM3 (ressl emulated device)";

/* Device attributes of an H100 SXM (sm_90); attributes not listed are refused. */
struct Attr {
  CUdevice_attribute attr;
  int value;
};
const Attr kAttributes[] = {
    {CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 1024},
    {CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, 1024},
    {CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, 1024},
    {CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, 64},
    {CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, 2147483647},
    {CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, 65535},
    {CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, 65535},
    {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 49152},
    {CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY, 65536},
    {CU_DEVICE_ATTRIBUTE_WARP_SIZE, 32},
    {CU_DEVICE_ATTRIBUTE_MAX_PITCH, 2147483647},
    {CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK, 65536},
    {CU_DEVICE_ATTRIBUTE_CLOCK_RATE, 1980000},
    {CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT, 512},
    {CU_DEVICE_ATTRIBUTE_GPU_OVERLAP, 1},
    {CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 132},
    {CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT, 0},
    {CU_DEVICE_ATTRIBUTE_INTEGRATED, 0},
    {CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY, 1},
    {CU_DEVICE_ATTRIBUTE_COMPUTE_MODE, CU_COMPUTEMODE_DEFAULT},
    {CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS, 1},
    {CU_DEVICE_ATTRIBUTE_ECC_ENABLED, 1},
    {CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, 0},
    {CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, 0},
    {CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, 0},
    {CU_DEVICE_ATTRIBUTE_TCC_DRIVER, 0},
    {CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, 2619000},
    {CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, 5120},
    {CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, 52428800},
    {CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, 2048},
    {CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT, 3},
    {CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, 1},
    {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 9},
    {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0},
    {CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED, 1},
    {CU_DEVICE_ATTRIBUTE_GLOBAL_L1_CACHE_SUPPORTED, 1},
    {CU_DEVICE_ATTRIBUTE_LOCAL_L1_CACHE_SUPPORTED, 1},
    {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, 233472},
    {CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR, 65536},
    {CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY, 1},
    {CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD, 0},
    {CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH, 1},
    {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 232448},
    {CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR, 32},
    {CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK, 1024},
    {CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED, 1},
    {CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH, 1},
};
}  // namespace

CUresult require_init() {
  if (!g_initialized) return fail(CUDA_ERROR_NOT_INITIALIZED, "cuInit has not been called");
  return CUDA_SUCCESS;
}

CUresult require_context() {
  if (CUresult r = require_init()) return r;
  if (t_current == nullptr || g_primary.refcount == 0) {
    return fail(CUDA_ERROR_INVALID_CONTEXT,
                "no current context on this thread (cuDevicePrimaryCtxRetain + cuCtxSetCurrent "
                "first; CUDA's current context is per host thread)");
  }
  if (g_sticky != CUDA_SUCCESS) return g_sticky;
  return CUDA_SUCCESS;
}

}  // namespace emu

using namespace emu;

EMU_EXPORT CUresult cuInit(unsigned int Flags) {
  Lock lock(g_mu);
  if (Flags != 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuInit: Flags must be 0");
  if (!g_init_tried) {
    g_init_tried = true;
    std::string error;
    if (!load_config(&error)) {
      g_init_result = fail_loud(CUDA_ERROR_INVALID_VALUE, "cuInit: %s", error.c_str());
    } else if (g_config.devices == 0) {
      g_init_result = fail(CUDA_ERROR_NO_DEVICE, "cuInit: RESSL_EMU_DEVICES=0 (no device)");
    } else {
      g_initialized = true;
    }
  }
  return g_init_result;
}

EMU_EXPORT CUresult cuDriverGetVersion(int* driverVersion) {
  if (!driverVersion) return CUDA_ERROR_INVALID_VALUE;
  *driverVersion = CUDA_VERSION;
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuDeviceGetCount(int* count) {
  Lock lock(g_mu);
  if (CUresult r = require_init()) return r;
  if (!count) return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceGetCount: count is null");
  *count = g_config.devices;
  return CUDA_SUCCESS;
}

static CUresult check_device(CUdevice dev, const char* what) {
  if (CUresult r = require_init()) return r;
  if (dev < 0 || dev >= g_config.devices)
    return fail(CUDA_ERROR_INVALID_DEVICE, "%s: device %d does not exist (%d device(s))", what,
                dev, g_config.devices);
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuDeviceGet(CUdevice* device, int ordinal) {
  Lock lock(g_mu);
  if (CUresult r = require_init()) return r;
  if (!device) return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceGet: device is null");
  if (CUresult r = check_device(ordinal, "cuDeviceGet")) return r;
  *device = ordinal;
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuDeviceGetName(char* name, int len, CUdevice dev) {
  Lock lock(g_mu);
  if (CUresult r = check_device(dev, "cuDeviceGetName")) return r;
  if (!name || len <= 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceGetName: bad buffer");
  snprintf(name, (size_t)len, "%s", kDeviceName);
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuDeviceGetAttribute(int* pi, CUdevice_attribute attrib, CUdevice dev) {
  Lock lock(g_mu);
  if (CUresult r = check_device(dev, "cuDeviceGetAttribute")) return r;
  if (!pi) return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceGetAttribute: pi is null");
  for (const Attr& a : kAttributes) {
    if (a.attr == attrib) {
      *pi = a.value;
      return CUDA_SUCCESS;
    }
  }
  return fail(CUDA_ERROR_INVALID_VALUE,
              "cuDeviceGetAttribute: attribute %d is not emulated (add it to "
              "emulator/driver/device.cpp with the H100 value)",
              (int)attrib);
}

EMU_EXPORT CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
  Lock lock(g_mu);
  if (CUresult r = check_device(dev, "cuDeviceTotalMem_v2")) return r;
  if (!bytes) return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceTotalMem_v2: bytes is null");
  *bytes = g_config.device_memory;
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  Lock lock(g_mu);
  if (CUresult r = check_device(dev, "cuDevicePrimaryCtxRetain")) return r;
  if (!pctx) return fail(CUDA_ERROR_INVALID_VALUE, "cuDevicePrimaryCtxRetain: pctx is null");
  g_primary.refcount++;
  *pctx = (CUcontext)&g_primary;
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  Lock lock(g_mu);
  if (CUresult r = check_device(dev, "cuDevicePrimaryCtxRelease_v2")) return r;
  if (g_primary.refcount == 0)
    return fail(CUDA_ERROR_INVALID_CONTEXT, "cuDevicePrimaryCtxRelease_v2: not retained");
  if (--g_primary.refcount == 0) {
    // The primary context is destroyed: its work, streams and memory go with it.
    if (g_sticky == CUDA_SUCCESS) drain_all();
    destroy_all_streams();
    release_all_memory();
    g_sticky = CUDA_SUCCESS;
  }
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuCtxSetCurrent(CUcontext ctx) {
  Lock lock(g_mu);
  if (CUresult r = require_init()) return r;
  if (ctx != nullptr && ctx != (CUcontext)&g_primary)
    return fail(CUDA_ERROR_INVALID_CONTEXT, "cuCtxSetCurrent: unknown context %p", (void*)ctx);
  t_current = ctx;
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuCtxGetCurrent(CUcontext* pctx) {
  Lock lock(g_mu);
  if (CUresult r = require_init()) return r;
  if (!pctx) return fail(CUDA_ERROR_INVALID_VALUE, "cuCtxGetCurrent: pctx is null");
  *pctx = t_current;
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuCtxGetDevice(CUdevice* device) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  if (!device) return fail(CUDA_ERROR_INVALID_VALUE, "cuCtxGetDevice: device is null");
  *device = 0;
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuCtxSynchronize(void) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  if (any_capture_active())
    return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                "cuCtxSynchronize while a stream is capturing");
  drain_all();
  return g_sticky;
}
