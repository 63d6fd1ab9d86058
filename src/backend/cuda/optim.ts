/**
 * The multi-tensor optimiser and teacher kernels of the cuda backend (`optim.cu`): one launch
 * updates every parameter tensor (SGD with momentum, Nesterov, per-tensor weight decay, LARS with
 * its norms from one more launch just before), one launch makes the teacher's EMA. Their pointer
 * tables come from the content-keyed cache of `tensor_tables.ts`.
 *
 * @module
 */

import type { LarsSettings } from "../backend.ts";
import { BLOCK } from "./kernel_image.ts";
import type { CudaRuntime } from "./runtime.ts";
import type { CudaStorage } from "./storage.ts";
import { CHUNK_SIZE, type TensorTables } from "./tensor_tables.ts";

/** Options of {@link sgdUpdateMulti} with this backend's storages. */
export interface SgdCall {
  params: CudaStorage[];
  grads: CudaStorage[];
  momentumBufs: CudaStorage[];
  lr: number;
  momentum: number;
  weightDecay: number[];
  nesterov: boolean;
  lars?: LarsSettings | null;
}

/** One SGD (or LARS) step over every tensor, in place. */
export function sgdUpdateMulti(rt: CudaRuntime, tables: TensorTables, o: SgdCall): void {
  if (o.params.length === 0) return;
  const lars = o.lars ?? null;
  const tb = tables.get([o.params, o.grads, o.momentumBufs], o.weightDecay, lars?.adapt);
  if (tb.chunks === 0) return;
  const [params, grads, bufs] = tb.lists;
  let partials = 0n;
  try {
    if (lars) {
      partials = rt.scratch(2 * tb.chunks * 8); // f64 norm partials
      rt.kernels.launch("multi_sq_norm_partials_f32", tb.chunks, BLOCK, [
        params,
        grads,
        tb.sizes,
        tb.chunkStart,
        tb.count,
        CHUNK_SIZE,
        partials,
      ]);
    }
    rt.kernels.launch("sgd_update_multi_f32", tb.chunks, BLOCK, [
      params,
      grads,
      bufs,
      tb.sizes,
      tb.chunkStart,
      tb.count,
      CHUNK_SIZE,
      tb.weightDecay,
      lars ? tb.larsAdapt : 0n,
      partials,
      o.lr,
      o.momentum,
      o.nesterov ? 1 : 0,
      lars?.eta ?? 0,
      lars?.eps ?? 0,
      lars?.clip ? 1 : 0,
    ]);
  } finally {
    if (partials !== 0n) rt.release(partials);
  }
}

/** `out[i] = m teacher[i] + (1 - m) student[i]` for every tensor (`out[i]` may be `teacher[i]`). */
export function emaUpdateMulti(
  rt: CudaRuntime,
  tables: TensorTables,
  o: { teacher: CudaStorage[]; student: CudaStorage[]; out: CudaStorage[]; momentum: number },
): void {
  if (o.teacher.length === 0) return;
  const tb = tables.get([o.teacher, o.student, o.out]);
  if (tb.chunks === 0) return;
  const [teacher, student, out] = tb.lists;
  // The coefficients in f64, then rounded once each, as the reference's f64 EMA.
  rt.kernels.launch("ema_update_multi_f32", tb.chunks, BLOCK, [
    teacher,
    student,
    out,
    tb.sizes,
    tb.chunkStart,
    tb.count,
    CHUNK_SIZE,
    o.momentum,
    1 - o.momentum,
  ]);
}
