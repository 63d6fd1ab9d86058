/*
 * cuModuleLoadData and friends: the real image built by nvcc is validated and parsed (image.cpp)
 * for the list of kernels it contains; each one is bound to its host build (kernel_libs.cpp),
 * whose parameter layout must match the image's. cuModuleGetFunction answers
 * CUDA_ERROR_NOT_FOUND for a name the image does not contain. A kernel that is in the image but
 * has no host build fails the load with CUDA_ERROR_NO_BINARY_FOR_GPU (the device has no code for
 * it), printing which kernel and where the emulator looked.
 */
#include <set>

#include "module.h"

namespace emu {
namespace {

constexpr int kDeviceSm = 90;
constexpr int kDefaultSharedLimit = 48 * 1024;
constexpr int kOptinSharedLimit = 232448;

std::set<Module*> g_modules;
std::map<Function*, std::weak_ptr<Function>> g_functions;

std::string layout_text(const std::vector<unsigned>& offsets, const std::vector<unsigned>& sizes) {
  std::string s = "(";
  for (size_t i = 0; i < offsets.size(); ++i)
    s += (i ? ", " : "") + std::to_string(sizes[i]) + "B@" + std::to_string(offsets[i]);
  return s + ")";
}

/* Binds an image kernel to its host build; returns an empty string or the reason it cannot. */
std::string bind(Function& f, const HostKernel* host) {
  const ressl_emu_kernel* k = host->kernel;
  f.host = host;
  unsigned off = 0;
  std::vector<unsigned> sizes;
  for (unsigned i = 0; i < k->num_params; ++i) {
    unsigned a = k->param_align[i] ? k->param_align[i] : 1;
    off = (off + a - 1) / a * a;
    f.offsets.push_back(off);
    sizes.push_back(k->param_size[i]);
    off += k->param_size[i];
  }
  f.param_bytes = off;
  if (!f.image.has_layout) return "";
  bool same = f.image.params.size() == k->num_params;
  std::vector<unsigned> image_offsets, image_sizes;
  for (size_t i = 0; i < f.image.params.size(); ++i) {
    image_offsets.push_back(f.image.params[i].offset);
    image_sizes.push_back(f.image.params[i].size);
    if (same && (f.image.params[i].offset != f.offsets[i] || f.image.params[i].size != sizes[i]))
      same = false;
  }
  if (same) return "";
  return "kernel " + f.image.name + ": the image's parameters " +
         layout_text(image_offsets, image_sizes) + " differ from the host build's " +
         layout_text(f.offsets, sizes) + " in " + host->library + " (built from " + host->source +
         "; rebuild with emulator/build.sh)";
}

}  // namespace

FunctionPtr function_of(CUfunction h) {
  auto it = g_functions.find((Function*)h);
  if (it == g_functions.end()) return nullptr;
  FunctionPtr f = it->second.lock();
  return f && f->magic == kFuncMagic && f->module ? f : nullptr;
}

}  // namespace emu

using namespace emu;

EMU_EXPORT CUresult cuModuleLoadData(CUmodule* module, const void* image) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  if (!module || !image) return fail(CUDA_ERROR_INVALID_VALUE, "cuModuleLoadData: null argument");
  Image img;
  std::string why;
  if (CUresult r = parse_image(image, kDeviceSm, &img, &why))
    return fail(r, "cuModuleLoadData: %s", why.c_str());
  auto m = std::make_unique<Module>();
  m->source = img.source;
  std::string missing, mismatched, problems;
  for (const ImageKernel& k : img.kernels) {
    std::vector<const HostKernel*> hosts = find_host_kernels(k.name, &problems);
    if (hosts.empty()) {
      missing += " " + k.name;
      continue;
    }
    auto f = std::make_shared<Function>();
    f->module = m.get();
    f->image = k;
    f->max_dynamic_shared = kDefaultSharedLimit - (int)k.static_shared;
    std::string reason = bind(*f, hosts.front());
    if (!reason.empty()) mismatched += "\n  " + reason;
    m->functions.push_back(f);
  }
  if (!missing.empty())
    return fail_loud(CUDA_ERROR_NO_BINARY_FOR_GPU,
                     "cuModuleLoadData: the image (%s) has kernel(s)%s with no host build in %s: "
                     "add their .cu file to ffi/cuda/kernels/ and run emulator/build.sh%s",
                     img.source.c_str(), missing.c_str(), kernel_search_path().c_str(),
                     problems.empty() ? "" : ("; libraries skipped:" + problems).c_str());
  if (!mismatched.empty())
    return fail_loud(CUDA_ERROR_NO_BINARY_FOR_GPU, "cuModuleLoadData:%s", mismatched.c_str());
  for (FunctionPtr& f : m->functions) g_functions[f.get()] = f;
  g_modules.insert(m.get());
  *module = (CUmodule)m.release();
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuModuleUnload(CUmodule hmod) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  Module* m = (Module*)hmod;
  if (!g_modules.count(m)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuModuleUnload: invalid module");
  for (FunctionPtr& f : m->functions) {
    g_functions.erase(f.get());
    f->module = nullptr;  // queued launches and graphs keep the function itself alive
  }
  g_modules.erase(m);
  m->magic = 0;
  delete m;
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuModuleGetFunction(CUfunction* hfunc, CUmodule hmod, const char* name) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  Module* m = (Module*)hmod;
  if (!g_modules.count(m)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuModuleGetFunction: invalid module");
  if (!hfunc || !name) return fail(CUDA_ERROR_INVALID_VALUE, "cuModuleGetFunction: null argument");
  for (FunctionPtr& f : m->functions) {
    if (f->image.name == name) {
      *hfunc = (CUfunction)f.get();
      return CUDA_SUCCESS;
    }
  }
  return fail(CUDA_ERROR_NOT_FOUND, "cuModuleGetFunction: no kernel '%s' in the module (%s)", name,
              m->source.c_str());
}

EMU_EXPORT CUresult cuFuncGetAttribute(int* pi, CUfunction_attribute attrib, CUfunction hfunc) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  FunctionPtr f = function_of(hfunc);
  if (!f) return fail(CUDA_ERROR_INVALID_HANDLE, "cuFuncGetAttribute: invalid function");
  if (!pi) return fail(CUDA_ERROR_INVALID_VALUE, "cuFuncGetAttribute: pi is null");
  switch (attrib) {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *pi = (int)f->image.max_threads; break;
    case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: *pi = (int)f->image.static_shared; break;
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: *pi = f->max_dynamic_shared; break;
    case CU_FUNC_ATTRIBUTE_PTX_VERSION:
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *pi = kDeviceSm; break;
    default:
      return fail(CUDA_ERROR_INVALID_VALUE, "cuFuncGetAttribute: attribute %d is not emulated",
                  (int)attrib);
  }
  return CUDA_SUCCESS;
}

EMU_EXPORT CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value) {
  Lock lock(g_mu);
  if (CUresult r = require_context()) return r;
  FunctionPtr f = function_of(hfunc);
  if (!f) return fail(CUDA_ERROR_INVALID_HANDLE, "cuFuncSetAttribute: invalid function");
  if (attrib == CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) {
    if (value < 0 || value > kOptinSharedLimit - (int)f->image.static_shared)
      return fail(CUDA_ERROR_INVALID_VALUE,
                  "cuFuncSetAttribute: %d bytes of dynamic shared memory exceed the %d-byte limit",
                  value, kOptinSharedLimit - (int)f->image.static_shared);
    f->max_dynamic_shared = value;
    return CUDA_SUCCESS;
  }
  if (attrib == CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT) {
    if (value < -1 || value > 100)
      return fail(CUDA_ERROR_INVALID_VALUE, "cuFuncSetAttribute: carveout %d", value);
    return CUDA_SUCCESS;
  }
  return fail(CUDA_ERROR_INVALID_VALUE, "cuFuncSetAttribute: attribute %d is not emulated",
              (int)attrib);
}
