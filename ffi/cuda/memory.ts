/**
 * Device and pinned host memory through the driver: allocation (plain and stream-ordered), copies
 * (synchronous from typed arrays; asynchronous from pinned memory), memsets and the free/total
 * query. Device pointers are `bigint` (`CUdeviceptr`); a null stream is the legacy default stream.
 *
 * @module
 */

import type { CudaDriver } from "./driver.ts";

/** A stream handle (`CUstream`); null is the default stream. */
export type CudaStream = Deno.PointerValue;

function bytesOf(n: number | bigint, what: string): bigint {
  const ok = typeof n === "bigint" ? n >= 0n : Number.isSafeInteger(n) && n >= 0;
  if (!ok) throw new RangeError(`Cannot ${what}: ${n} is not a byte count`);
  return BigInt(n);
}

/** `cuMemAlloc_v2`: allocates `bytes` of device memory. */
export function memAlloc(drv: CudaDriver, bytes: number | bigint): bigint {
  const out = new BigUint64Array(1);
  drv.check(
    drv.symbols.cuMemAlloc_v2(out, bytesOf(bytes, "allocate device memory")),
    `allocate ${bytes} bytes of device memory`,
  );
  return out[0];
}

/** `cuMemFree_v2`. */
export function memFree(drv: CudaDriver, ptr: bigint): void {
  drv.check(drv.symbols.cuMemFree_v2(ptr), `free device memory at 0x${ptr.toString(16)}`);
}

/** `cuMemAllocAsync`: a stream-ordered allocation (usable by work later on `stream`). */
export function memAllocAsync(drv: CudaDriver, bytes: number | bigint, stream: CudaStream): bigint {
  const out = new BigUint64Array(1);
  drv.check(
    drv.symbols.cuMemAllocAsync(out, bytesOf(bytes, "allocate device memory"), stream),
    `allocate ${bytes} bytes of device memory on a stream`,
  );
  return out[0];
}

/** `cuMemFreeAsync`: frees once the work queued on `stream` so far is done. */
export function memFreeAsync(drv: CudaDriver, ptr: bigint, stream: CudaStream): void {
  drv.check(
    drv.symbols.cuMemFreeAsync(ptr, stream),
    `free device memory at 0x${ptr.toString(16)} on a stream`,
  );
}

/** `cuMemGetInfo_v2`: free and total device memory of the current context, in bytes. */
export function memGetInfo(drv: CudaDriver): { free: bigint; total: bigint } {
  const free = new BigUint64Array(1);
  const total = new BigUint64Array(1);
  drv.check(drv.symbols.cuMemGetInfo_v2(free, total), "query free device memory");
  return { free: free[0], total: total[0] };
}

/** `cuMemcpyHtoD_v2`: copies all of `src` to device address `dst` (synchronous). */
export function copyHtoD(drv: CudaDriver, dst: bigint, src: ArrayBufferView): void {
  drv.check(
    drv.symbols.cuMemcpyHtoD_v2(dst, src, BigInt(src.byteLength)),
    `copy ${src.byteLength} bytes to the device`,
  );
}

/** `cuMemcpyDtoH_v2`: fills all of `dst` from device address `src` (synchronous). */
export function copyDtoH(drv: CudaDriver, dst: ArrayBufferView, src: bigint): void {
  drv.check(
    drv.symbols.cuMemcpyDtoH_v2(dst, src, BigInt(dst.byteLength)),
    `copy ${dst.byteLength} bytes from the device`,
  );
}

/** `cuMemcpyDtoDAsync_v2` on `stream`. */
export function copyDtoDAsync(
  drv: CudaDriver,
  dst: bigint,
  src: bigint,
  bytes: number | bigint,
  stream: CudaStream,
): void {
  drv.check(
    drv.symbols.cuMemcpyDtoDAsync_v2(dst, src, bytesOf(bytes, "copy on the device"), stream),
    `copy ${bytes} bytes on the device`,
  );
}

/**
 * `cuMemcpyHtoDAsync_v2` from host memory at `src` (pinned memory from {@link allocPinned}, kept
 * alive and unchanged until the stream has run the copy).
 */
export function copyHtoDAsync(
  drv: CudaDriver,
  dst: bigint,
  src: Deno.PointerObject,
  bytes: number | bigint,
  stream: CudaStream,
): void {
  drv.check(
    drv.symbols.cuMemcpyHtoDAsync_v2(dst, src, bytesOf(bytes, "copy to the device"), stream),
    `queue a copy of ${bytes} bytes to the device`,
  );
}

/** `cuMemcpyDtoHAsync_v2` into host memory at `dst` (pinned; read it after synchronising). */
export function copyDtoHAsync(
  drv: CudaDriver,
  dst: Deno.PointerObject,
  src: bigint,
  bytes: number | bigint,
  stream: CudaStream,
): void {
  drv.check(
    drv.symbols.cuMemcpyDtoHAsync_v2(dst, src, bytesOf(bytes, "copy from the device"), stream),
    `queue a copy of ${bytes} bytes from the device`,
  );
}

/** `cuMemsetD32Async`: sets `count` 32-bit words at `dst` to `value` (a u32 bit pattern). */
export function memsetD32Async(
  drv: CudaDriver,
  dst: bigint,
  value: number,
  count: number | bigint,
  stream: CudaStream,
): void {
  drv.check(
    drv.symbols.cuMemsetD32Async(dst, value >>> 0, bytesOf(count, "set device memory"), stream),
    `set ${count} 32-bit words of device memory`,
  );
}

/** `cuMemsetD8Async`: sets `count` bytes at `dst` to `value`. */
export function memsetD8Async(
  drv: CudaDriver,
  dst: bigint,
  value: number,
  count: number | bigint,
  stream: CudaStream,
): void {
  drv.check(
    drv.symbols.cuMemsetD8Async(dst, value & 0xff, bytesOf(count, "set device memory"), stream),
    `set ${count} bytes of device memory`,
  );
}

/** Page-locked host memory for asynchronous copies. */
export interface PinnedBuffer {
  /** Its address. */
  readonly pointer: Deno.PointerObject;
  /** Its size in bytes. */
  readonly bytes: number;
  /** A view of its bytes (invalid after `free`). */
  readonly buffer: ArrayBuffer;
  /** `cuMemFreeHost`. */
  free(): void;
}

/** `cuMemHostAlloc`: allocates `bytes` of pinned host memory (flags: `CU_FLAGS.MEMHOSTALLOC_*`). */
export function allocPinned(drv: CudaDriver, bytes: number, flags = 0): PinnedBuffer {
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new RangeError(`Cannot allocate ${bytes} bytes of pinned memory: use a positive size`);
  }
  const out = new BigUint64Array(1);
  drv.check(
    drv.symbols.cuMemHostAlloc(out, BigInt(bytes), flags),
    `allocate ${bytes} bytes of pinned host memory`,
  );
  const pointer = Deno.UnsafePointer.create(out[0]);
  if (pointer === null) throw new Error("cuMemHostAlloc returned a null pointer");
  let freed = false;
  return {
    pointer,
    bytes,
    buffer: Deno.UnsafePointerView.getArrayBuffer(pointer, bytes),
    free(): void {
      if (freed) return;
      freed = true;
      drv.check(drv.symbols.cuMemFreeHost(pointer), `free ${bytes} bytes of pinned memory`);
    },
  };
}
