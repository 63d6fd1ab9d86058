/*
 * Trampolines from the driver's launch description to a kernel's C++ signature. The kernel's
 * parameter types come from template deduction on the kernel's address, so the generator only
 * has to know the kernel names (gen_kernel_module.sh appends one describe<...>() per kernel).
 */
#ifndef RESSL_EMU_REGISTER_H
#define RESSL_EMU_REGISTER_H

#include <string.h>

#include <tuple>
#include <type_traits>
#include <utility>

extern "C" __attribute__((weak)) RESSL_EMU_HIDDEN const int ressl_emu_rt_fiber_ops_linked;

namespace ressl_emu_reg {

template <typename F, F Fn>
struct Kernel;

template <typename... A, void (*Fn)(A...)>
struct Kernel<void (*)(A...), Fn> {
  using Tuple = std::tuple<A...>;
  static_assert((std::is_trivially_copyable<A>::value && ...),
                "kernel parameters must be trivially copyable");
  static constexpr unsigned short sizes[sizeof...(A) + 1] = {(unsigned short)sizeof(A)..., 0};
  static constexpr unsigned short aligns[sizeof...(A) + 1] = {(unsigned short)alignof(A)..., 0};
  static constexpr unsigned char pointers[sizeof...(A) + 1] = {
      (unsigned char)std::is_pointer<A>::value..., 0};
  static const char* name;

  static void one_thread(void* args) { std::apply(Fn, *static_cast<Tuple*>(args)); }

  template <std::size_t... I>
  static Tuple unpack(void* const* params, std::index_sequence<I...>) {
    Tuple t;
    ((void)memcpy(&std::get<I>(t), params[I], sizeof(A)), ...);
    return t;
  }

  static int run(const ressl_emu_launch* l) {
    Tuple args = unpack(l->params, std::index_sequence_for<A...>{});
    return ressl_emu_rt_run(l, &one_thread, &args, name);
  }
};

template <typename... A, void (*Fn)(A...)>
const char* Kernel<void (*)(A...), Fn>::name = "";

template <typename F, F Fn>
ressl_emu_kernel describe(const char* name) {
  using K = Kernel<F, Fn>;
  K::name = name;
  return ressl_emu_kernel{(const void*)Fn, name, (unsigned)(sizeof(K::sizes) / 2 - 1), K::sizes,
                          K::aligns, K::pointers, &K::run};
}

inline const ressl_emu_module_info* module(const char* path, const ressl_emu_kernel* kernels,
                                            unsigned n) {
  static ressl_emu_module_info t;
  t.abi_version = RESSL_EMU_ABI_VERSION;
  t.uses_fibers = &ressl_emu_rt_fiber_ops_linked != nullptr;
  t.num_kernels = n;
  t.kernels = kernels;
  t.source_path = path;
  return &t;
}

}  // namespace ressl_emu_reg

#endif
