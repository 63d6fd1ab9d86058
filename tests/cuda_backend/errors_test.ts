/**
 * Error paths of the cuda backend, each in a child process whose environment selects the failure
 * (`cases.ts`): no driver, no device, a missing library, a cuDNN folder missing a sub-library,
 * out of device memory (the emulated device refuses large allocations), and, in this process, a
 * kernel image that lacks a kernel. Each must fail at once with a message naming what is wrong and
 * what to do, and `auto` must fall back with one line.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CUDA_LIBRARIES } from "../../ffi/cuda/discovery.ts";
import { checkCudnnFolder } from "../../ffi/cuda/cudnn_sublibs.ts";
import { createCudaBackend } from "../../src/backend/cuda/backend.ts";
import { driverInstalled, realLibraryDir } from "../ffi/cuda_helpers.ts";
import { emulatedEnv, EMULATOR_LIB, emulatorSkip, runCase } from "./helpers.ts";

const skip = emulatorSkip();

/** Asserts a case failed with `name` and a message matching every pattern. */
function assertFailed(r: Awaited<ReturnType<typeof runCase>>, name: string, ...res: RegExp[]) {
  assert.equal(r.ok, false, `expected a failure, got ${JSON.stringify(r)}`);
  if (r.ok) return;
  assert.equal(r.name, name, r.message);
  for (const re of res) assert.match(r.message, re);
}

Deno.test({
  name:
    "cuda errors: no driver fails at once naming libcuda.so.1 and the emulator; auto falls back" +
    (driverInstalled() ? " (skipped: this machine has a CUDA driver)" : ""),
  ignore: driverInstalled(),
  async fn() {
    const env = { RESSL_CUDA_EMULATION: "0" };
    assertFailed(
      await runCase("create", env),
      "CudaUnavailableError",
      /Cannot load the CUDA driver \(libcuda\.so\.1\)/,
      /no NVIDIA driver here/,
      /RESSL_CUDA_EMULATION=1/,
    );
    const auto = await runCase("auto", env);
    assert.ok(auto.ok, JSON.stringify(auto));
    const v = auto.value as { name: string; lines: string[] };
    assert.notEqual(v.name, "cuda");
    assert.equal(v.lines.length, 1);
    assert.match(v.lines[0], /no NVIDIA driver here/);
  },
});

Deno.test("cuda errors: a driver override that is not a file is named", async () => {
  assertFailed(
    await runCase("create", { RESSL_CUDA_EMULATION: "0", RESSL_LIBCUDA: "/nonexistent/libcuda" }),
    "CudaUnavailableError",
    /RESSL_LIBCUDA='\/nonexistent\/libcuda' is not a file/,
  );
});

Deno.test({
  name: "cuda errors: a driver without a device, and a missing cuBLAS stand-in" + skip,
  ignore: skip !== "",
  async fn() {
    assertFailed(
      await runCase("create", emulatedEnv({ RESSL_EMU_DEVICES: "0" })),
      "CudaUnavailableError",
      /reports no CUDA device: cuInit returned CUDA_ERROR_NO_DEVICE/,
    );
    const dir = Deno.makeTempDirSync({ prefix: "ressl_cuda_nolib_" });
    try {
      Deno.symlinkSync(join(EMULATOR_LIB, "libcuda.so.1"), join(dir, "libcuda.so.1"));
      assertFailed(
        await runCase("create", emulatedEnv({ RESSL_CUDA_EMULATOR_DIR: dir })),
        "CudaUnavailableError",
        /stand-in for cuBLAS .*libcublas\.so\.13.* is not built/,
        /bash emulator\/build\.sh/,
      );
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

const cudnnDir = realLibraryDir("cudnn");
const cublasDir = realLibraryDir("cublas");
const realSkip = skip ||
  (cudnnDir === null || cublasDir === null
    ? " (skipped: NVIDIA's cuBLAS/cuDNN wheels are not installed; run bash scripts/setup_cuda.sh)"
    : "");

Deno.test({
  name: "cuda errors: a cuDNN folder missing a sub-library is refused before cuDNN is opened" +
    realSkip,
  ignore: realSkip !== "",
  async fn() {
    // The emulated driver stands in for a real one; cuBLAS and cuDNN are NVIDIA's, the cuDNN
    // folder a copy (links) without libcudnn_cnn (libcudnn.so.9 would abort the process).
    const dir = Deno.makeTempDirSync({ prefix: "ressl_cudnn_partial_" });
    try {
      const have = checkCudnnFolder(cudnnDir!);
      assert.deepEqual(have.missing, [], "the installed cuDNN folder is complete");
      for (const e of Deno.readDirSync(cudnnDir!)) {
        if (e.name.startsWith("libcudnn_cnn")) continue;
        Deno.symlinkSync(join(cudnnDir!, e.name), join(dir, e.name));
      }
      const r = await runCase("create", {
        RESSL_CUDA_EMULATION: "0",
        RESSL_LIBCUDA: join(EMULATOR_LIB, "libcuda.so.1"),
        RESSL_LIBCUBLAS: join(cublasDir!, CUDA_LIBRARIES.cublas.file),
        RESSL_LIBCUDNN: join(dir, CUDA_LIBRARIES.cudnn.file),
      });
      assertFailed(r, "CudaUnavailableError", /lacks libcudnn_cnn\.so\.9/, /setup_cuda\.sh/);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "cuda errors: out of device memory is reported after the cache is released" + skip,
  ignore: skip !== "",
  async fn() {
    const r = await runCase(
      "outOfMemory",
      emulatedEnv({ RESSL_EMU_FAIL_ALLOC: "above:100000000" }),
    );
    assert.ok(r.ok, JSON.stringify(r));
    const v = r.value as {
      error: { name: string; message: string } | null;
      cachedBefore: number;
      cachedAfter: number;
      relu: number[];
      live: number;
    };
    assert.ok(v.error !== null, "the large allocation failed");
    assert.equal(v.error.name, "CudaOutOfMemoryError");
    assert.match(v.error.message, /Cannot allocate 256\.0 MiB of device memory on .*out of memory/);
    assert.match(v.error.message, /smaller batch size/);
    assert.ok(v.cachedBefore > 0 && v.cachedAfter === 0, "cached blocks were released first");
    assert.deepEqual(v.relu, [1, 0, 3, 0], "the backend keeps working");
    assert.equal(v.live, 0);
  },
});

/** PTX text with one entry point, relu_f32, and nothing else. */
const PARTIAL_PTX = `.version 8.0
.target sm_80
.address_size 64
.visible .entry relu_f32(.param .u64 x, .param .u64 y, .param .u32 n)
{
  ret;
}
`;

Deno.test({
  name: "cuda errors: a kernel missing from the image is named with the rebuild command" + skip,
  ignore: skip !== "",
  fn() {
    const be = createCudaBackend({
      env: emulatedEnv(),
      kernels: { bytes: new TextEncoder().encode(PARTIAL_PTX), label: "partial.ptx" },
    });
    try {
      const x = be.alloc("f32", 3), y = be.alloc("f32", 3);
      be.upload(x, new Float32Array([1, 2, 3]));
      assert.throws(
        () => be.softmax({ x, y, rows: 1, cols: 3 }),
        /kernel 'softmax_f32': the kernel image 'partial\.ptx' does not contain it.*build\.sh/,
      );
      be.free(x);
      be.free(y);
    } finally {
      be.dispose();
    }
  },
});
