/**
 * The `cast` kernel of the cpu backend: f32 <-> bf16 as a TypeScript loop over the raw bits, with
 * exactly the rounding of `src/backend/bf16.ts` (nearest even, NaN stays a quiet NaN with its sign,
 * overflow becomes infinity, subnormals kept). oneDNN's f32 -> bf16 reorder is not used: it flushes
 * subnormal inputs to zero (measured on 2.6.3: 0x00400000 -> 0x0000 instead of 0x0040).
 *
 * A storage in a blocked layout stays in it: the output takes the same layout with the other
 * element type, and the loop runs over the physical elements (padding zeros cast to zeros).
 *
 * @module
 */

import type { MemDesc } from "./memdesc.ts";
import type { CpuRuntime } from "./runtime.ts";
import { type CpuStorage, ELEMENT_BYTES } from "./storage.ts";

/** y = x converted to y's dtype (f32 or bf16); the same dtype copies. */
export function cast(rt: CpuRuntime, x: CpuStorage, y: CpuStorage, n: number): void {
  if (n === 0) return;
  if (x.dtype === y.dtype) {
    rt.copyElements(x, y, n);
    return;
  }
  const blocked = x.length === n && y.length === n && x.md !== null ? x.md : null;
  const from: MemDesc = blocked ?? rt.mds.plain([n], x.dataType);
  const to = blocked ? rt.mds.withDataType(blocked, y.dataType) : rt.mds.plain([n], y.dataType);
  const count = blocked ? blocked.size / ELEMENT_BYTES[x.dtype] : n;
  const src = rt.layout(x, from);
  const dst = rt.output(y, to);
  if (x.dtype === "f32") f32BitsToBf16(src.u32, dst.u16, count);
  else bf16BitsToF32(src.u16, dst.u32, count);
}

/** bf16 bits of f32 bits, rounded to nearest even (as `f32ToBf16` in bf16.ts). */
export function f32BitsToBf16(src: Uint32Array, dst: Uint16Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const bits = src[i];
    if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0) {
      dst[i] = (bits >>> 16) | 0x0040; // quiet NaN, sign kept
    } else {
      dst[i] = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
    }
  }
}

/** f32 bits of bf16 bits (exact). */
export function bf16BitsToF32(src: Uint16Array, dst: Uint32Array, n: number): void {
  for (let i = 0; i < n; i++) dst[i] = src[i] << 16;
}
