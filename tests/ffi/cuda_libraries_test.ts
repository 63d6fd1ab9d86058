/**
 * The real NVIDIA libraries from the wheels: every bound symbol exists (Deno.dlopen refuses a table
 * with a missing one, and no entry is `optional`), versions are the ones the bindings are written
 * for, calls that need a device fail cleanly with the library's own status name, and the calls that
 * need none (cuDNN descriptors, NVRTC compiles, NCCL version) return real values.
 */

import assert from "node:assert/strict";
import { createCublasHandle, loadCublas } from "../../ffi/cuda/cublas.ts";
import { CUBLAS_SYMBOLS } from "../../ffi/cuda/cublas_symbols.ts";
import { createCudnnHandle, createDescriptor, loadCudnn } from "../../ffi/cuda/cudnn.ts";
import { CUDNN_DATA, CUDNN_SYMBOLS, CUDNN_TENSOR } from "../../ffi/cuda/cudnn_symbols.ts";
import { DRIVER_SYMBOLS } from "../../ffi/cuda/driver_symbols.ts";
import { CudaLibraryError } from "../../ffi/cuda/errors.ts";
import { loadNccl, NCCL_SYMBOLS } from "../../ffi/cuda/nccl.ts";
import { NVRTC_SYMBOLS } from "../../ffi/cuda/nvrtc.ts";
import { driverInstalled, missingReason, realOptions } from "./cuda_helpers.ts";

function suffix(reason: string | undefined): string {
  return reason ? ` (${reason})` : "";
}

function assertAllBound(table: Record<string, unknown>, symbols: Record<string, unknown>): void {
  for (const [name, def] of Object.entries(table)) {
    assert.equal((def as { optional?: boolean }).optional, undefined, `${name} is optional`);
    assert.equal(typeof symbols[name], "function", `${name} is not bound`);
  }
}

function libraryError(status: number, name: string): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof CudaLibraryError, `expected CudaLibraryError, got ${e}`);
    assert.equal(e.status, status);
    assert.equal(e.statusName, name);
    assert.ok(e.message.includes(name), e.message);
    return true;
  };
}

Deno.test("symbol tables: no entry is optional and every table is non-empty", () => {
  for (
    const table of [DRIVER_SYMBOLS, CUBLAS_SYMBOLS, CUDNN_SYMBOLS, NVRTC_SYMBOLS, NCCL_SYMBOLS]
  ) {
    assert.ok(Object.keys(table).length > 5);
    for (const [name, def] of Object.entries(table)) {
      assert.ok(!("optional" in def), `${name} must not be optional`);
      assert.ok(!("nonblocking" in def), `${name} must run on the calling thread`);
    }
  }
});

const noCublas = missingReason("cublas");
Deno.test({
  name: "cuBLAS: all symbols bound, version 13, handle creation fails cleanly without a device" +
    suffix(noCublas),
  ignore: noCublas !== undefined,
  fn() {
    const lib = loadCublas(realOptions());
    try {
      assertAllBound(CUBLAS_SYMBOLS, lib.symbols);
      assert.match(lib.version, /^13\.\d+\.\d+$/);
      const [major, minor, patch] = lib.version.split(".").map(Number);
      assert.equal(lib.versionNumber, major * 10000 + minor * 100 + patch);
      assert.ok(lib.ltLocation?.path.endsWith("libcublasLt.so.13"), "cuBLASLt loaded first");
      assert.throws(() => lib.check(7, "test"), libraryError(7, "CUBLAS_STATUS_INVALID_VALUE"));
      if (driverInstalled()) {
        createCublasHandle(lib).destroy();
      } else {
        assert.throws(
          () => createCublasHandle(lib),
          libraryError(1, "CUBLAS_STATUS_NOT_INITIALIZED"),
        );
      }
    } finally {
      lib.close();
    }
  },
});

const noCudnn = missingReason("cudnn");
Deno.test({
  name: "cuDNN: all symbols bound, version 9, handle creation fails cleanly without a device" +
    suffix(noCudnn),
  ignore: noCudnn !== undefined,
  fn() {
    const lib = loadCudnn(realOptions());
    try {
      assertAllBound(CUDNN_SYMBOLS, lib.symbols);
      assert.match(lib.version, /^9\.\d+\.\d+$/);
      assert.throws(() => lib.check(2000, "test"), libraryError(2000, "CUDNN_STATUS_BAD_PARAM"));
      if (driverInstalled()) {
        createCudnnHandle(lib).destroy();
      } else {
        assert.throws(() => createCudnnHandle(lib), (e: unknown) => {
          libraryError(1001, "CUDNN_STATUS_NOT_INITIALIZED")(e);
          // cudnnGetLastErrorString's detail is part of the message.
          assert.match((e as Error).message, /cudaGetDeviceCount/);
          return true;
        });
      }
    } finally {
      lib.close();
    }
  },
});

Deno.test({
  name: "cuDNN: descriptors work without a device (output shapes, bad parameters rejected)" +
    suffix(noCudnn),
  ignore: noCudnn !== undefined,
  fn() {
    const lib = loadCudnn(realOptions());
    const s = lib.symbols;
    const x = createDescriptor(lib, (o) => s.cudnnCreateTensorDescriptor(o), "tensor");
    const w = createDescriptor(lib, (o) => s.cudnnCreateFilterDescriptor(o), "filter");
    const c = createDescriptor(lib, (o) => s.cudnnCreateConvolutionDescriptor(o), "convolution");
    try {
      const F = CUDNN_DATA.FLOAT;
      // [n, c, h, w, k, r, s, pad, stride, dilation] -> expected [n, k, p, q]
      const cases: [number[], number[]][] = [
        [[8, 3, 32, 32, 16, 3, 3, 1, 1, 1], [8, 16, 32, 32]],
        [[2, 64, 56, 56, 128, 1, 1, 0, 2, 1], [2, 128, 28, 28]],
        [[1, 3, 224, 224, 64, 7, 7, 3, 2, 1], [1, 64, 112, 112]],
        [[4, 8, 17, 9, 5, 3, 3, 2, 1, 2], [4, 5, 17, 9]],
      ];
      for (const [[n, ch, h, wd, k, r, sz, pad, str, dil], want] of cases) {
        lib.check(s.cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR.NCHW, F, n, ch, h, wd), "set x");
        lib.check(s.cudnnSetFilter4dDescriptor(w, F, CUDNN_TENSOR.NCHW, k, ch, r, sz), "set w");
        lib.check(s.cudnnSetConvolution2dDescriptor(c, pad, pad, str, str, dil, dil, 1, F), "c");
        const o = [0, 1, 2, 3].map(() => new Int32Array(1));
        lib.check(
          s.cudnnGetConvolution2dForwardOutputDim(c, x, w, o[0], o[1], o[2], o[3]),
          "output shape",
        );
        assert.deepEqual(o.map((a) => a[0]), want);
        // The framework formula agrees.
        const p = Math.floor((h + 2 * pad - dil * (r - 1) - 1) / str) + 1;
        assert.equal(p, want[2]);
      }
      assert.throws(
        () =>
          lib.check(
            s.cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR.NCHW, F, 0, 3, 8, 8),
            "describe an empty tensor",
          ),
        (e: unknown) =>
          e instanceof CudaLibraryError && e.statusName.startsWith("CUDNN_STATUS_BAD"),
      );
    } finally {
      s.cudnnDestroyConvolutionDescriptor(c);
      s.cudnnDestroyFilterDescriptor(w);
      s.cudnnDestroyTensorDescriptor(x);
      lib.close();
    }
  },
});

const noNccl = missingReason("nccl");
Deno.test({
  name: "NCCL: all symbols bound (ncclUniqueId by value), version 2.x, statuses named" +
    suffix(noNccl),
  ignore: noNccl !== undefined,
  fn() {
    const lib = loadNccl(realOptions());
    try {
      assertAllBound(NCCL_SYMBOLS, lib.symbols);
      assert.match(lib.version, /^2\.\d+\.\d+$/);
      assert.deepEqual(NCCL_SYMBOLS.ncclCommInitRank.parameters[2], {
        struct: Array(16).fill("u64"),
      });
      assert.throws(() => lib.check(4, "test"), libraryError(4, "ncclInvalidArgument"));
      assert.equal(lib.symbols.ncclGroupStart(), 0);
      assert.equal(lib.symbols.ncclGroupEnd(), 0);
    } finally {
      lib.close();
    }
  },
});
