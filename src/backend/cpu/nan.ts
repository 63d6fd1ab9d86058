/**
 * NaN semantics of the cpu backend (issue 14, case 6). oneDNN 2.6.3 computes ReLU as `max(x, 0)`
 * (eltwise, the fused BN ReLU and the ReLU post-op of the residual add), which returns 0 for NaN,
 * its ReLU backward multiplies by the mask (NaN or infinity times 0 is NaN), and its max pooling
 * skips NaN. The contract (the reference backend, PyTorch) propagates NaN: relu(NaN) = NaN, a NaN
 * wins its pooling window, a masked-off gradient is 0.
 *
 * The fast paths stay; each kernel that could differ detects the cases cheaply and runs the call
 * exactly on the reference backend then (`viaReference`, rare: only when NaN or infinity is about):
 * - statistics a kernel computes anyway: batch norm's mean and variance are NaN or infinite when
 *   its input holds NaN or infinity, its backward's dgamma and dbeta when the masked gradient does;
 * - otherwise a scan of the input (`holdsNaN`), skipped when the storage is known to be NaN-free:
 *   `CpuStorage.nanFree` is set by a scan that found none or by a kernel whose output cannot hold
 *   NaN given its inputs, and cleared whenever the storage may be written (`runtime.ts`), so it is
 *   a fact about the current contents, never a memory of earlier calls.
 *
 * @module
 */

import type { KernelName, Opts, Storage } from "../backend.ts";
import { kernelSpec } from "../kernels.ts";
import type { CpuRuntime } from "./runtime.ts";
import { type CpuStorage, ELEMENT_BYTES } from "./storage.ts";
import { cpu } from "./validate.ts";

/** Whether the first `n` elements of a float array (f32 values or bf16 bits) hold a NaN. */
function scanNaN(a: Float32Array | Uint16Array, n: number): boolean {
  if (a instanceof Float32Array) {
    for (let i = 0; i < n; i++) if (a[i] !== a[i]) return true;
  } else {
    for (let i = 0; i < n; i++) if ((a[i] & 0x7fff) > 0x7f80) return true;
  }
  return false;
}

/** Whether the first `n` elements of a float array (f32 values or bf16 bits) are all finite. */
function scanFinite(a: Float32Array | Uint16Array, n: number): boolean {
  if (a instanceof Float32Array) {
    for (let i = 0; i < n; i++) if (a[i] - a[i] !== 0) return false;
  } else {
    for (let i = 0; i < n; i++) if ((a[i] & 0x7f80) === 0x7f80) return false;
  }
  return true;
}

/** The float view of `s`'s bytes holding its first `n` logical elements, and how many to scan. */
function floatView(rt: CpuRuntime, s: CpuStorage, n: number): [Float32Array | Uint16Array, number] {
  if (n === s.length && s.buf !== null && s.md !== null) {
    // Blocked: scan the physical elements (oneDNN keeps the padding zero).
    const buf = s.buf;
    return [s.dtype === "f32" ? buf.f32 : buf.u16, s.md.size / ELEMENT_BYTES[s.dtype]];
  }
  const buf = rt.plain(s);
  return [s.dtype === "f32" ? buf.f32 : buf.u16, n];
}

/**
 * Whether the first `n` elements of float storage `s` hold a NaN: false at once when `s.nanFree`,
 * else a scan (~0.8 ns per element on one core), whose "none" is remembered on the storage.
 */
export function holdsNaN(rt: CpuRuntime, s: CpuStorage, n: number): boolean {
  if (n === 0 || s.nanFree) return false;
  const [a, count] = floatView(rt, s, n);
  const found = scanNaN(a, count);
  if (!found && n === s.length) s.nanFree = true;
  return found;
}

/** Whether the first `n` elements of float storage `s` are all finite (a scan). */
export function allFinite(rt: CpuRuntime, s: CpuStorage, n: number): boolean {
  if (n === 0) return true;
  const [a, count] = floatView(rt, s, n);
  const finite = scanFinite(a, count);
  if (finite && n === s.length) s.nanFree = true;
  return finite;
}

/** Whether every value of a small f32 storage (per-channel vectors) is finite. */
export function vectorFinite(rt: CpuRuntime, s: CpuStorage, n: number): boolean {
  return allFinite(rt, s, n);
}

/**
 * Runs `kernel` exactly as the reference backend does: every storage of the call is copied to a
 * reference storage (outputs too, so elements beyond what the kernel writes are kept), the
 * reference kernel runs, and its outputs and in-place storages are copied back (plain layout).
 * Only for calls that hold NaN or infinity; costs a few ns per element and copies.
 */
export function viaReference<K extends KernelName>(rt: CpuRuntime, kernel: K, o: Opts<K>): void {
  const ref = rt.reference();
  const spec = kernelSpec(kernel);
  const be = rt.backend;
  const opts: Record<string, unknown> = { ...(o as Record<string, unknown>) };
  const written: [CpuStorage, Storage][] = [];
  const temps: Storage[] = [];
  try {
    const roles = [
      [spec.inputs, false],
      [spec.outputs, true],
      [spec.inouts ?? {}, true],
    ] as const;
    for (const [args, writes] of roles) {
      for (const name of Object.keys(args)) {
        const s = (o as Record<string, unknown>)[name] as Storage | null | undefined;
        if (s === null || s === undefined) continue;
        const c = cpu(s);
        const r = ref.alloc(c.dtype, c.length);
        temps.push(r);
        if (c.length > 0) ref.upload(r, be.download(c));
        opts[name] = r;
        if (writes) written.push([c, r]);
      }
    }
    (ref[kernel] as (o: unknown) => void)(opts);
    for (const [c, r] of written) if (c.length > 0) be.upload(c, ref.download(r));
  } finally {
    for (const t of temps) ref.free(t);
  }
}
