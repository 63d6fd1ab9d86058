/**
 * NVRTC from the wheel compiles CUDA C++ to PTX here (no GPU needed): the bound symbols exist, the
 * builtins are preloaded, the PTX has the kernel with the parameters declared, and a compile error
 * carries NVRTC's own status name and log.
 */

import assert from "node:assert/strict";
import { CudaLibraryError } from "../../ffi/cuda/errors.ts";
import { compileToPtx, loadNvrtc, NVRTC_SYMBOLS } from "../../ffi/cuda/nvrtc.ts";
import { missingReason, realOptions } from "./cuda_helpers.ts";

const skip = missingReason("nvrtc");
const suffix = skip ? ` (${skip})` : "";

const AXPBY = `extern "C" __global__ void axpby(float a, const float* x, float b, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + b * y[i];
}`;

Deno.test({
  name: "NVRTC: all symbols bound, version 13, builtins preloaded, PTX for sm_90" + suffix,
  ignore: skip !== undefined,
  fn() {
    const lib = loadNvrtc(realOptions());
    try {
      for (const name of Object.keys(NVRTC_SYMBOLS)) {
        assert.equal(typeof (lib.symbols as Record<string, unknown>)[name], "function", name);
      }
      assert.match(lib.version, /^13\.\d+$/);
      assert.match(lib.builtins ?? "", /libnvrtc-builtins\.so\.13/);
      const { ptx, log } = compileToPtx(lib, AXPBY, {
        name: "axpby.cu",
        options: ["--gpu-architecture=compute_90"],
      });
      assert.equal(ptx[ptx.length - 1], 0, "PTX is NUL-terminated for cuModuleLoadData");
      const text = new TextDecoder().decode(ptx.subarray(0, ptx.length - 1));
      assert.match(text, /\.target sm_90/);
      assert.match(text, /\.visible \.entry axpby\(/);
      // Five parameters in order: f32, u64 pointer, f32, u64 pointer, u32/s32.
      const params = [...text.matchAll(/\.param \.(\w+) axpby_param_(\d)/g)].map((m) => m[1]);
      assert.deepEqual(params, ["f32", "u64", "f32", "u64", "u32"]);
      assert.equal(typeof log, "string");
    } finally {
      lib.close();
    }
  },
});

Deno.test({
  name: "NVRTC: a compile error reports NVRTC_ERROR_COMPILATION with the log" + suffix,
  ignore: skip !== undefined,
  fn() {
    const lib = loadNvrtc(realOptions());
    try {
      assert.throws(
        () => compileToPtx(lib, `extern "C" __global__ void k(float* x) { x[0] = y; }`),
        (e: unknown) => {
          assert.ok(e instanceof CudaLibraryError);
          assert.equal(e.statusName, "NVRTC_ERROR_COMPILATION");
          assert.match(e.message, /identifier "y" is undefined/);
          assert.match(e.message, /Cannot compile 'kernel\.cu'/);
          return true;
        },
      );
    } finally {
      lib.close();
    }
  },
});
