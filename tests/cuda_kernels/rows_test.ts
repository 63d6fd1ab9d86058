/**
 * rows.cu and relation_loss.cu on the emulated device against f64 oracles: add_row_vector,
 * sum_rows (columns not a multiple of 32), gather_rows (a bad index gives NaN), the softmax and
 * log-softmax pairs (large logits, a -inf entry, rows longer than a block), l2 normalise and its
 * gradient (including a zero row and a row below eps), and the fused relation loss against its
 * definition (RESSL_SPEC.md section 2).
 */

import assert from "node:assert/strict";
import { assertClose, BLOCK, grid1, rand } from "./helpers.ts";
import { type KernelRig, rigUnavailable, withRig } from "./rig.ts";

const skip = rigUnavailable();
const test = (name: string, fn: () => void) =>
  Deno.test({ name: name + (skip ? ` (${skip})` : ""), ignore: skip !== undefined, fn });

/** Applies `f` to each row of a [rows, cols] matrix, returning the f64 results. */
function perRow(
  x: ArrayLike<number>,
  rows: number,
  cols: number,
  f: (row: number[], r: number) => number[],
): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const row = Array.from({ length: cols }, (_, j) => x[r * cols + j]);
    out.set(f(row, r), r * cols);
  }
  return out;
}

const softmax = (row: number[]) => {
  const m = Math.max(...row.filter((v) => !Number.isNaN(v)));
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};
const logSoftmax = (row: number[]) => {
  const m = Math.max(...row);
  const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
  return row.map((v) => v - lse);
};

/** Runs a one-row-per-block kernel on [rows, cols] inputs; returns the f32 output. */
function rowKernel(
  rig: KernelRig,
  name: Parameters<KernelRig["launch"]>[0],
  inputs: Float32Array[],
  rows: number,
  cols: number,
  extra: number[] = [],
): Float32Array {
  const ptrs = inputs.map((a) => rig.upload(a));
  const out = rig.alloc(4 * rows * cols);
  rig.launch(name, Math.min(rows, 5), BLOCK, [...ptrs, out, rows, cols, ...extra]);
  return rig.download(out, new Float32Array(rows * cols));
}

test("add_row_vector, sum_rows and gather_rows", () => {
  const [rows, cols] = [37, 45];
  const x = rand(1, rows * cols), bias = rand(2, cols);
  withRig((rig) => {
    const px = rig.upload(x), pb = rig.upload(bias), y = rig.alloc(4 * rows * cols);
    rig.launch("add_row_vector_f32", grid1(rows * cols), BLOCK, [px, pb, y, rows, cols]);
    const want = Float32Array.from(x, (v, i) => v + bias[i % cols]);
    assertClose(rig.download(y, new Float32Array(rows * cols)), want, 0, 0, "add_row_vector");

    const out = rig.alloc(4 * cols);
    rig.launch("sum_rows_f32", Math.ceil(cols / 32), [32, 8], [px, out, rows, cols]);
    const sums = new Float64Array(cols);
    x.forEach((v, i) => (sums[i % cols] += v));
    assertClose(rig.download(out, new Float32Array(cols)), sums, 1e-6, 1e-5, "sum_rows");

    const index = Int32Array.from({ length: rows }, (_, i) => (i * 7 + 3) % rows);
    index[4] = rows; // out of range: a row of NaN
    const pi = rig.upload(index);
    rig.launch("gather_rows_f32", grid1(rows * cols), BLOCK, [px, pi, y, rows, cols]);
    const got = rig.download(y, new Float32Array(rows * cols));
    const wantG = perRow(
      x,
      rows,
      cols,
      (_, r) =>
        index[r] < rows
          ? Array.from(x.subarray(index[r] * cols, (index[r] + 1) * cols))
          : new Array(cols).fill(NaN),
    );
    assertClose(got, wantG, 0, 0, "gather_rows");
  });
});

test("softmax and log-softmax, forward and backward, on long rows with extreme logits", () => {
  const [rows, cols] = [6, 1000];
  const x = rand(3, rows * cols, -20, 20);
  x[7] = 80; // dominates row 0
  x[cols + 3] = -Infinity;
  const dy = rand(4, rows * cols);
  withRig((rig) => {
    const y = rowKernel(rig, "softmax_f32", [x], rows, cols);
    assertClose(y, perRow(x, rows, cols, softmax), 1e-12, 1e-5, "softmax");
    const dx = rowKernel(rig, "softmax_backward_f32", [y, dy], rows, cols);
    const wantDx = perRow(y, rows, cols, (yr, r) => {
      const dr = Array.from(dy.subarray(r * cols, (r + 1) * cols));
      const dot = yr.reduce((s, v, j) => s + v * dr[j], 0);
      return yr.map((v, j) => v * (dr[j] - dot));
    });
    assertClose(dx, wantDx, 1e-9, 1e-4, "softmax backward");

    const ly = rowKernel(rig, "log_softmax_f32", [x], rows, cols);
    assertClose(ly, perRow(x, rows, cols, logSoftmax), 1e-5, 1e-6, "log_softmax");
    const ldx = rowKernel(rig, "log_softmax_backward_f32", [ly, dy], rows, cols);
    const wantL = perRow(ly, rows, cols, (lr, r) => {
      const dr = Array.from(dy.subarray(r * cols, (r + 1) * cols));
      const s = dr.reduce((a, b) => a + b, 0);
      return lr.map((v, j) => dr[j] - Math.exp(v) * s);
    });
    assertClose(ldx, wantL, 1e-5, 1e-5, "log_softmax backward");
  });
});

test("l2 normalise and its gradient: ordinary rows, a zero row, a row below eps", () => {
  const [rows, cols, eps] = [5, 300, 1e-3];
  const x = rand(5, rows * cols, -2, 2);
  x.fill(0, cols, 2 * cols); // row 1: zero
  for (let j = 0; j < cols; j++) x[2 * cols + j] *= 1e-6; // row 2: norm below eps
  const dy = rand(6, rows * cols);
  const norm = (row: number[]) => Math.sqrt(row.reduce((s, v) => s + v * v, 0));
  withRig((rig) => {
    const y = rowKernel(rig, "l2_normalize_f32", [x], rows, cols, [eps]);
    const want = perRow(x, rows, cols, (row) => row.map((v) => v / Math.max(norm(row), eps)));
    assertClose(y, want, 1e-9, 1e-5, "l2_normalize");
    const dx = rowKernel(rig, "l2_normalize_backward_f32", [x, dy], rows, cols, [eps]);
    const wantDx = perRow(x, rows, cols, (row, r) => {
      const d = Array.from(dy.subarray(r * cols, (r + 1) * cols));
      const nrm = norm(row);
      if (!(nrm >= eps && nrm > 0)) return d.map((v) => v / eps);
      const dot = row.reduce((s, v, j) => s + v * d[j], 0);
      return row.map((v, j) => d[j] / nrm - v * dot / nrm ** 3);
    });
    assertClose(dx, wantDx, 1e-6, 1e-4, "l2_normalize backward");
  });
});

test("relation loss: -sum p_t log p_s per row and (p_s - p_t) / (tau_s B), fused", () => {
  const [rows, cols, tauS, tauT] = [4, 700, 0.1, 0.04];
  const s = rand(7, rows * cols), t = rand(8, rows * cols);
  withRig((rig) => {
    const ps = rig.upload(s), pt = rig.upload(t);
    const loss = rig.alloc(4 * rows), ds = rig.alloc(4 * rows * cols);
    const scale = 1 / (tauS * rows);
    rig.launch("relation_loss_f32", 3, BLOCK, [
      ps,
      pt,
      loss,
      ds,
      rows,
      cols,
      1 / tauS,
      1 / tauT,
      scale,
    ]);
    const wantLoss: number[] = [];
    const wantDs = perRow(s, rows, cols, (sr, r) => {
      const tr = Array.from(t.subarray(r * cols, (r + 1) * cols));
      const pT = softmax(tr.map((v) => v / tauT));
      const logPs = logSoftmax(sr.map((v) => v / tauS));
      wantLoss.push(-pT.reduce((a, p, j) => a + p * logPs[j], 0));
      return logPs.map((l, j) => (Math.exp(l) - pT[j]) * scale);
    });
    assertClose(rig.download(loss, new Float32Array(rows)), wantLoss, 1e-5, 1e-5, "loss rows");
    assertClose(rig.download(ds, new Float32Array(rows * cols)), wantDs, 1e-8, 1e-4, "ds");
    rig.launch("relation_loss_f32", 3, BLOCK, [ps, pt, loss, 0, rows, cols, 1 / tauS, 1 / tauT, 1]);
    assertClose(rig.download(loss, new Float32Array(rows)), wantLoss, 1e-5, 1e-5, "no ds");
    assert.ok(wantLoss.every((v) => v > 0));
  });
});
