/**
 * The memory operations of the cuda backend that move or set bytes: `upload` (asynchronous, through
 * pinned staging), `download` (the synchronisation point), `fill` (driver memsets with the value's
 * bit pattern) and the `copy` kernel (device-to-device copies on the stream; overlapping ranges of
 * one storage go through scratch, as `copyWithin`).
 *
 * @module
 */

import type { HostArray } from "../backend.ts";
import { f64ToBf16 } from "../bf16.ts";
import { allocHostArray } from "../host.ts";
import { copyDtoDAsync, memsetD32Async, memsetD8Async } from "../../../ffi/cuda/memory.ts";
import type { CudaRuntime } from "./runtime.ts";
import { type CudaStorage, ELEMENT_BYTES, SHADOW_MAX_ELEMENTS } from "./storage.ts";

/** Queues the upload of `src` into `dst` at element `dstOffset`; keeps the shadow rule. */
export function upload(rt: CudaRuntime, dst: CudaStorage, src: HostArray, dstOffset: number): void {
  const whole = dstOffset === 0 && src.length === dst.length;
  dst.shadow = whole && dst.length <= SHADOW_MAX_ELEMENTS &&
      (src instanceof Float32Array || src instanceof Int32Array)
    ? src.slice()
    : null;
  if (src.length === 0) return;
  rt.staging.upload(dst.at(dstOffset), src);
}

/** Waits for queued work, then returns the storage's elements as a new host array. */
export function download(rt: CudaRuntime, src: CudaStorage): HostArray {
  const out = allocHostArray(src.dtype, src.length);
  if (src.length > 0) rt.staging.download(out, src.ptr);
  else rt.sync();
  return out;
}

/** The 32-bit pattern that fills `dst` with `value` (bf16: the pattern twice). */
function fillWord(dst: CudaStorage, value: number): number {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  switch (dst.dtype) {
    case "f32":
      f[0] = value;
      return u[0];
    case "i32":
      return value >>> 0;
    case "bf16": {
      const b = f64ToBf16(value);
      return ((b << 16) | b) >>> 0;
    }
    case "u8":
      return value & 0xff;
  }
}

/** Sets every element of `dst` to `value` (already checked to fit its dtype). */
export function fill(rt: CudaRuntime, dst: CudaStorage, value: number): void {
  dst.shadow = null;
  if (dst.length === 0) return;
  const word = fillWord(dst, value);
  if (dst.dtype === "u8") {
    memsetD8Async(rt.drv, dst.ptr, word, dst.length, rt.stream);
  } else if (dst.dtype === "bf16" && dst.length % 2 === 1) {
    // Whole words, then the last half-word through a byte memset of each of its two bytes.
    memsetD32Async(rt.drv, dst.ptr, word, (dst.length - 1) / 2, rt.stream);
    const last = dst.at(dst.length - 1);
    memsetD8Async(rt.drv, last, word & 0xff, 1, rt.stream);
    memsetD8Async(rt.drv, last + 1n, (word >>> 8) & 0xff, 1, rt.stream);
  } else {
    const words = dst.dtype === "bf16" ? dst.length / 2 : dst.length;
    memsetD32Async(rt.drv, dst.ptr, word, words, rt.stream);
  }
}

/** `dst[dstOffset..] = src[srcOffset..]`, `length` elements of one dtype. */
export function copy(
  rt: CudaRuntime,
  o: { src: CudaStorage; dst: CudaStorage; srcOffset: number; dstOffset: number; length: number },
): void {
  o.dst.shadow = null;
  if (o.length === 0) return;
  const bytes = o.length * ELEMENT_BYTES[o.src.dtype];
  const from = o.src.at(o.srcOffset);
  const to = o.dst.at(o.dstOffset);
  if (from === to) return;
  const overlap = o.src === o.dst && Math.abs(o.srcOffset - o.dstOffset) < o.length;
  if (!overlap) {
    copyDtoDAsync(rt.drv, to, from, bytes, rt.stream);
    return;
  }
  const tmp = rt.scratch(bytes);
  try {
    copyDtoDAsync(rt.drv, tmp, from, bytes, rt.stream);
    copyDtoDAsync(rt.drv, to, tmp, bytes, rt.stream);
  } finally {
    rt.release(tmp);
  }
}
