/**
 * Cases that change or break the whole emulated device: its configuration from the environment
 * (RESSL_EMU_FAIL_ALLOC, RESSL_EMU_DEVICE_MEMORY, RESSL_EMU_DEVICES, RESSL_EMU_SYNC) and sticky
 * device faults. Each runs in its own process (isolated.ts, from faults_test.ts, which sets the
 * environment).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CU, DRIVER_SYMBOLS, fatbin, LIB_DIR, openEmu } from "./emu_helpers.ts";

const MB = 1n << 20n;

/** RESSL_EMU_FAIL_ALLOC=nth:3,above:4M and RESSL_EMU_DEVICE_MEMORY=64M. */
export function outOfMemory(): void {
  const emu = openEmu(false);
  const out = new BigUint64Array(1);
  const alloc = (bytes: bigint) => emu.s.cuMemAlloc_v2(out, bytes);
  assert.equal(alloc(MB), CU.SUCCESS);
  assert.equal(alloc(MB), CU.SUCCESS);
  assert.equal(alloc(MB), CU.OUT_OF_MEMORY, "the third allocation fails");
  assert.match(emu.lastError(), /allocation #3 .*RESSL_EMU_FAIL_ALLOC/);
  assert.equal(alloc(MB), CU.SUCCESS, "only the third");
  assert.equal(alloc(8n * MB), CU.OUT_OF_MEMORY, "above 4 MiB");
  assert.equal(emu.s.cuMemAllocAsync(out, 5n * MB, null), CU.OUT_OF_MEMORY, "async too");
  const free = new BigUint64Array(1), total = new BigUint64Array(1);
  emu.ok(emu.s.cuMemGetInfo_v2(free, total), "cuMemGetInfo_v2");
  assert.equal(total[0], 64n * MB);
  assert.equal(free[0], 61n * MB, "three 1 MiB allocations in use");
  const held: bigint[] = [];
  while (alloc(3n * MB) === CU.SUCCESS) held.push(out[0]);
  assert.equal(held.length, 20, "61 MiB hold twenty 3 MiB allocations");
  assert.match(emu.lastError(), /RESSL_EMU_DEVICE_MEMORY/);
  emu.ok(emu.s.cuMemFree_v2(held.pop()!), "cuMemFree_v2");
  assert.equal(alloc(3n * MB), CU.SUCCESS, "room again after a free");
  const bytes = new BigUint64Array(1);
  emu.ok(emu.s.cuDeviceTotalMem_v2(bytes, 0), "cuDeviceTotalMem_v2");
  assert.equal(bytes[0], 64n * MB);
}

/** RESSL_EMU_DEVICES=0: a machine with the driver but no device. */
export function noDevice(): void {
  const lib = Deno.dlopen(join(LIB_DIR, "libcuda.so.1"), DRIVER_SYMBOLS);
  assert.equal(lib.symbols.cuInit(0), CU.NO_DEVICE);
  assert.equal(lib.symbols.cuInit(0), CU.NO_DEVICE, "every time");
  const name = new BigUint64Array(1);
  assert.equal(lib.symbols.cuGetErrorString(CU.NO_DEVICE, name), CU.SUCCESS);
  assert.equal(
    Deno.UnsafePointerView.getCString(Deno.UnsafePointer.create(name[0])!),
    "no CUDA-capable device is detected",
  );
  assert.equal(lib.symbols.cuDeviceGetCount(new Int32Array(1)), CU.NOT_INITIALIZED);
  const blas = Deno.dlopen(join(LIB_DIR, "libcublas.so.13"), {
    cublasCreate_v2: { parameters: ["buffer"], result: "i32" },
  });
  assert.equal(
    blas.symbols.cublasCreate_v2(new BigUint64Array(1)),
    1,
    "CUBLAS_STATUS_NOT_INITIALIZED",
  );
  const dnn = Deno.dlopen(join(LIB_DIR, "libcudnn.so.9"), {
    cudnnCreate: { parameters: ["buffer"], result: "i32" },
    cudnnGetVersion: { parameters: [], result: "usize" },
  });
  assert.equal(
    dnn.symbols.cudnnCreate(new BigUint64Array(1)),
    1001,
    "CUDNN_STATUS_NOT_INITIALIZED",
  );
  assert.equal(Number(dnn.symbols.cudnnGetVersion()), 92400);
}

/** RESSL_EMU_DEVICES=two: a malformed setting fails cuInit with a message naming it. */
export function badSetting(): void {
  const lib = Deno.dlopen(join(LIB_DIR, "libcuda.so.1"), DRIVER_SYMBOLS);
  assert.equal(lib.symbols.cuInit(0), CU.INVALID_VALUE);
  assert.match(
    Deno.UnsafePointerView.getCString(lib.symbols.ressl_emu_last_error()!),
    /RESSL_EMU_DEVICES='two'/,
  );
}

/** A host pointer given to a kernel faults when the launch runs: a sticky illegal address. */
export function stickyIllegalAddress(): void {
  const emu = openEmu(false);
  const axpby = emu.fn(emu.module(fatbin("tests/emulator/kernels/emu_plain.cu")), "emu_axpby");
  const host = new Float32Array(64);
  const hostPtr = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(host)));
  const x = emu.alloc(256);
  emu.launch(axpby, [1], [64], [{ ptr: hostPtr }, { ptr: x }, { f32: 1 }, { f32: 1 }, { i32: 64 }]);
  assert.equal(emu.s.cuCtxSynchronize(), CU.ILLEGAL_ADDRESS, "reported at synchronisation");
  assert.match(emu.lastError(), /emu_axpby: pointer argument #0 .* is not in device memory/);
  assert.equal(
    emu.s.cuMemAlloc_v2(new BigUint64Array(1), 16n),
    CU.ILLEGAL_ADDRESS,
    "and from then on",
  );
  assert.equal(emu.s.cuStreamSynchronize(null), CU.ILLEGAL_ADDRESS);
}

/** __trap() ends the launch with CUDA_ERROR_ILLEGAL_INSTRUCTION, naming the thread. */
export function trap(): void {
  const emu = openEmu(false);
  const f = emu.fn(emu.module(fatbin("tests/emulator/kernels/emu_plain.cu")), "emu_trap");
  const touched = emu.alloc(4 * 128);
  emu.launch(f, [4], [32], [{ i32: 37 }, { ptr: touched }]);
  assert.equal(emu.s.cuCtxSynchronize(), CU.ILLEGAL_INSTRUCTION);
  assert.match(emu.lastError(), /emu_trap: thread \(5,0,0\) of block \(1,0,0\) trapped/);
}

/** Work freed in stream order (cuMemFreeAsync) is gone for later work of the stream. */
export function useAfterFreeAsync(): void {
  const emu = openEmu(false);
  const axpby = emu.fn(emu.module(fatbin("tests/emulator/kernels/emu_plain.cu")), "emu_axpby");
  const s = emu.stream();
  const out = new BigUint64Array(1);
  emu.ok(emu.s.cuMemAllocAsync(out, 256n, s), "cuMemAllocAsync");
  const p = out[0];
  emu.ok(emu.s.cuMemFreeAsync(p, s), "cuMemFreeAsync");
  emu.launch(axpby, [1], [64], [{ ptr: p }, { ptr: p }, { f32: 1 }, { f32: 1 }, { i32: 64 }], s);
  assert.equal(emu.s.cuStreamSynchronize(s), CU.ILLEGAL_ADDRESS);
}

/** RESSL_EMU_SYNC=1: work runs as it is enqueued (for debugging). */
export function syncMode(): void {
  const emu = openEmu(false);
  const y = emu.upload(new Float32Array([1, 2, 3, 4]));
  const s = emu.stream();
  const host = new Float32Array(4);
  emu.ok(emu.s.cuMemcpyDtoHAsync_v2(Deno.UnsafePointer.of(host), y, 16n, s), "DtoH");
  assert.deepEqual([...host], [1, 2, 3, 4], "done before any synchronisation");
  assert.equal(emu.s.cuStreamQuery(s), CU.SUCCESS);
}

/** Releasing the primary context for the last time destroys its memory and streams. */
export function primaryContextRelease(): void {
  const emu = openEmu(false);
  const p = emu.alloc(64);
  const lib = Deno.dlopen(join(LIB_DIR, "libcuda.so.1"), {
    cuDevicePrimaryCtxRelease_v2: { parameters: ["i32"], result: "i32" },
  });
  emu.ok(lib.symbols.cuDevicePrimaryCtxRelease_v2(0), "release");
  assert.equal(emu.s.cuMemAlloc_v2(new BigUint64Array(1), 16n), 201, "CUDA_ERROR_INVALID_CONTEXT");
  assert.equal(lib.symbols.cuDevicePrimaryCtxRelease_v2(0), 201, "not retained");
  const ctx = new BigUint64Array(1);
  emu.ok(emu.s.cuDevicePrimaryCtxRetain(ctx, 0), "retain again");
  emu.ok(emu.s.cuCtxSetCurrent(Deno.UnsafePointer.create(ctx[0])), "set current");
  assert.equal(emu.s.cuMemFree_v2(p), CU.INVALID_VALUE, "the old allocation went with the context");
}

/** The cuBLAS stand-in faults like a kernel when a matrix is not in device memory. */
export function cublasHostPointer(): void {
  const emu = openEmu(false);
  const blas = Deno.dlopen(join(LIB_DIR, "libcublas.so.13"), {
    cublasCreate_v2: { parameters: ["buffer"], result: "i32" },
    cublasSgemm_v2: {
      parameters: [
        "pointer",
        "i32",
        "i32",
        "i32",
        "i32",
        "i32",
        "buffer",
        "u64",
        "i32",
        "u64",
        "i32",
        "buffer",
        "u64",
        "i32",
      ],
      result: "i32",
    },
  });
  const out = new BigUint64Array(1);
  assert.equal(blas.symbols.cublasCreate_v2(out), 0);
  const h = Deno.UnsafePointer.create(out[0]);
  const host = new Float32Array(16);
  const hostPtr = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(host)));
  const d = emu.alloc(64);
  const one = new Float32Array([1]);
  assert.equal(
    blas.symbols.cublasSgemm_v2(h, 0, 0, 4, 4, 4, one, hostPtr, 4, d, 4, one, d, 4),
    0,
    "accepted",
  );
  assert.equal(emu.s.cuCtxSynchronize(), CU.ILLEGAL_ADDRESS, "faults when it runs");
  assert.match(emu.lastError(), /cublasSgemm_v2: A .* is not inside device memory/);
}
