/**
 * Row-wise kernels of the cuda backend (`rows.cu`, row-major `[rows, cols]` f32): bias add, column
 * sums, row gathers, softmax and log-softmax with their backward, L2 normalisation with its
 * backward. Row kernels run one block per row (blocks stride over rows beyond the grid).
 *
 * @module
 */

import { BLOCK, gridFor } from "./kernel_image.ts";
import type { CudaRuntime } from "./runtime.ts";
import type { CudaStorage } from "./storage.ts";

/** Most blocks of a row launch (blocks stride over the remaining rows). */
const MAX_ROW_BLOCKS = 65535;
/** `sum_rows_f32`'s block: 32 columns by 8 row lanes. */
const SUM_ROWS_BLOCK = [32, 8] as const;

const rowGrid = (rows: number) => Math.min(rows, MAX_ROW_BLOCKS);

/** `y[r, j] = x[r, j] + bias[j]`. */
export function addRowVector(
  rt: CudaRuntime,
  o: { x: CudaStorage; bias: CudaStorage; y: CudaStorage; rows: number; cols: number },
): void {
  const n = o.rows * o.cols;
  if (n === 0) return;
  rt.kernels.launch("add_row_vector_f32", gridFor(n), BLOCK, [
    o.x.ptr,
    o.bias.ptr,
    o.y.ptr,
    o.rows,
    o.cols,
  ]);
}

/** `out[j] = sum_r x[r, j]` (zero rows give zeros). */
export function sumRows(
  rt: CudaRuntime,
  o: { x: CudaStorage; out: CudaStorage; rows: number; cols: number },
): void {
  if (o.cols === 0) return;
  const grid = Math.ceil(o.cols / SUM_ROWS_BLOCK[0]);
  rt.kernels.launch("sum_rows_f32", grid, SUM_ROWS_BLOCK, [o.x.ptr, o.out.ptr, o.rows, o.cols]);
}

/**
 * `y[i, :] = x[index[i], :]`. Indices uploaded from the host are checked there first (the kernel
 * writes a row of NaN for an index out of range; the reference throws).
 */
export function gatherRows(
  rt: CudaRuntime,
  o: { x: CudaStorage; index: CudaStorage; y: CudaStorage; rows: number; cols: number },
): void {
  const host = o.index.shadow;
  if (host !== null) {
    for (let i = 0; i < o.rows; i++) {
      const r = host[i];
      if (!(r >= 0 && r < o.rows)) {
        throw new RangeError(
          `Cannot run gatherRows: index[${i}] is ${r}, expected 0 <= index < ${o.rows}`,
        );
      }
    }
  }
  const n = o.rows * o.cols;
  if (n === 0) return;
  rt.kernels.launch("gather_rows_f32", gridFor(n), BLOCK, [
    o.x.ptr,
    o.index.ptr,
    o.y.ptr,
    o.rows,
    o.cols,
  ]);
}

type Rows = { rows: number; cols: number };

/** Row-wise softmax (`log` false) or log-softmax (`log` true). */
export function softmax(
  rt: CudaRuntime,
  log: boolean,
  o: Rows & { x: CudaStorage; y: CudaStorage },
): void {
  if (o.rows * o.cols === 0) return;
  const name = log ? "log_softmax_f32" : "softmax_f32";
  rt.kernels.launch(name, rowGrid(o.rows), BLOCK, [o.x.ptr, o.y.ptr, o.rows, o.cols]);
}

/** Backward of softmax (`log` false) or log-softmax (`log` true), `y` the forward's output. */
export function softmaxBackward(
  rt: CudaRuntime,
  log: boolean,
  o: Rows & { y: CudaStorage; dy: CudaStorage; dx: CudaStorage },
): void {
  if (o.rows * o.cols === 0) return;
  const name = log ? "log_softmax_backward_f32" : "softmax_backward_f32";
  rt.kernels.launch(name, rowGrid(o.rows), BLOCK, [o.y.ptr, o.dy.ptr, o.dx.ptr, o.rows, o.cols]);
}

/** `y = x / max(|x|, eps)` per row. */
export function l2Normalize(
  rt: CudaRuntime,
  o: Rows & { x: CudaStorage; y: CudaStorage; eps: number },
): void {
  if (o.rows * o.cols === 0) return;
  rt.kernels.launch("l2_normalize_f32", rowGrid(o.rows), BLOCK, [
    o.x.ptr,
    o.y.ptr,
    o.rows,
    o.cols,
    o.eps,
  ]);
}

/** Gradient of {@link l2Normalize} with respect to `x`. */
export function l2NormalizeBackward(
  rt: CudaRuntime,
  o: Rows & { x: CudaStorage; dy: CudaStorage; dx: CudaStorage; eps: number },
): void {
  if (o.rows * o.cols === 0) return;
  rt.kernels.launch("l2_normalize_backward_f32", rowGrid(o.rows), BLOCK, [
    o.x.ptr,
    o.dy.ptr,
    o.dx.ptr,
    o.rows,
    o.cols,
    o.eps,
  ]);
}
