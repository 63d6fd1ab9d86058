/**
 * The driver's "CUDA is unusable" answers, which need a driver to produce: a tiny fake
 * `libcuda.so.1` (compiled here; every bound symbol exported, `cuInit`, `cuDriverGetVersion`,
 * `cuDeviceGetCount` and `cuGetErrorName` answering what the test sets) makes `loadDriver` meet no
 * device, the toolkit's stub, a pre-CUDA-13 driver and a zero device count, each of which must be a
 * `CudaUnavailableError` naming the cause; and a failing call is reported with the driver's name.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { loadDriver } from "../../ffi/cuda/driver.ts";
import { DRIVER_SYMBOLS } from "../../ffi/cuda/driver_symbols.ts";
import { memAlloc, memsetD8Async } from "../../ffi/cuda/memory.ts";
import { CudaLibraryError, CudaUnavailableError } from "../../ffi/cuda/errors.ts";
import { cCompiler } from "./cuda_header_parse.ts";
import { isolated } from "./cuda_helpers.ts";

const SPECIAL = new Set(["cuInit", "cuDriverGetVersion", "cuDeviceGetCount", "cuGetErrorName"]);

const FAKE = `#include <stdlib.h>
static int env(const char* k, int d) { const char* v = getenv(k); return v ? atoi(v) : d; }
int cuInit(unsigned f) { (void)f; return env("FAKE_CU_INIT", 0); }
int cuDriverGetVersion(int* v) { *v = env("FAKE_CU_VERSION", 13000); return 0; }
int cuDeviceGetCount(int* n) { *n = env("FAKE_CU_COUNT", 1); return 0; }
int cuGetErrorName(int s, const char** p) {
  switch (s) {
    case 1: *p = "CUDA_ERROR_INVALID_VALUE"; return 0;
    case 34: *p = "CUDA_ERROR_STUB_LIBRARY"; return 0;
    case 100: *p = "CUDA_ERROR_NO_DEVICE"; return 0;
    default: return 1;
  }
}
${
  Object.keys(DRIVER_SYMBOLS).filter((n) => !SPECIAL.has(n)).map((n) =>
    `int ${n}(void) { return 0; }`
  )
    .join("\n")
}
`;

function buildFake(dir: string): string {
  const src = join(dir, "fake_cuda.c");
  const lib = join(dir, "libcuda.so.1");
  Deno.writeTextFileSync(src, FAKE);
  const out = new Deno.Command(cCompiler()!, {
    args: ["-shared", "-fPIC", "-o", lib, src],
    stderr: "piped",
  }).outputSync();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return lib;
}

const noCc = cCompiler() === null ? " (skipped: no C compiler to build the fake driver)" : "";

Deno.test({
  name: "driver: no device, stub library, old driver and zero devices are CudaUnavailableError" +
    noCc,
  ignore: noCc !== "",
  fn() {
    const dir = Deno.makeTempDirSync({ prefix: "ressl_fake_cuda_" });
    const saved = ["FAKE_CU_INIT", "FAKE_CU_VERSION", "FAKE_CU_COUNT"].map((k) => Deno.env.get(k));
    try {
      const lib = buildFake(dir);
      const opts = isolated({ RESSL_LIBCUDA: lib });
      const unavailable = (env: Record<string, string>, ...parts: string[]) => {
        for (const k of ["FAKE_CU_INIT", "FAKE_CU_VERSION", "FAKE_CU_COUNT"]) Deno.env.delete(k);
        for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
        assert.throws(() => loadDriver(opts), (e: unknown) => {
          assert.ok(e instanceof CudaUnavailableError, String(e));
          for (const p of parts) assert.ok(e.message.includes(p), `'${e.message}' lacks '${p}'`);
          return true;
        });
      };
      unavailable({ FAKE_CU_INIT: "100" }, "reports no CUDA device", "CUDA_ERROR_NO_DEVICE", lib);
      unavailable({ FAKE_CU_INIT: "34" }, "is the CUDA toolkit's stub library", lib);
      unavailable({ FAKE_CU_INIT: "999" }, "Cannot initialise", "CUDA_ERROR_UNKNOWN_STATUS_999");
      unavailable({ FAKE_CU_VERSION: "12080" }, "supports CUDA 12.8", "need CUDA 13.0 or newer");
      unavailable({ FAKE_CU_COUNT: "0" }, "reports no CUDA device");

      for (const k of ["FAKE_CU_INIT", "FAKE_CU_VERSION", "FAKE_CU_COUNT"]) Deno.env.delete(k);
      const drv = loadDriver(opts);
      try {
        assert.equal(drv.deviceCount, 1);
        assert.equal(drv.version, 13000);
        assert.equal(drv.location.source, "RESSL_LIBCUDA");
        assert.throws(
          () => drv.check(1, "allocate 4 bytes"),
          (e: unknown) =>
            e instanceof CudaLibraryError && e.statusName === "CUDA_ERROR_INVALID_VALUE" &&
            e.message.startsWith("Cannot allocate 4 bytes: CUDA_ERROR_INVALID_VALUE"),
        );
        drv.check(0, "nothing");
        // Sizes are checked before any call.
        assert.throws(() => memAlloc(drv, 1.5), /allocate device memory: 1.5 is not a byte count/);
        assert.throws(() => memAlloc(drv, -1n), /-1 is not a byte count/);
        assert.throws(() => memsetD8Async(drv, 0n, 0, -4, null), /-4 is not a byte count/);
      } finally {
        drv.close();
      }
    } finally {
      ["FAKE_CU_INIT", "FAKE_CU_VERSION", "FAKE_CU_COUNT"].forEach((k, i) =>
        saved[i] === undefined ? Deno.env.delete(k) : Deno.env.set(k, saved[i]!)
      );
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
