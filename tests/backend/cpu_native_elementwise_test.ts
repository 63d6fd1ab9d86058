/**
 * The cpu backend's own elementwise kernels (`ffi/cpu/kernels/elementwise.c`): the SGD (plain,
 * Nesterov, weight decay, LARS) and EMA updates are bit-identical to the TypeScript loops they
 * replace (`nativeKernels: false`) and to the reference backend, on 1 and 2 threads; the f64 sum
 * equals the TypeScript sum to f64 rounding and does not depend on the thread count; log-softmax
 * is within f32 rounding of the reference's f64 one (oneDNN's was ~4e-6 off) with the reference's
 * NaN and infinity semantics.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Backend, Storage } from "../../src/backend/backend.ts";
import { createCpuBackend } from "../../src/backend/cpu/backend.ts";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { lcg, ownKernelsTest } from "./cpu_test_util.ts";

/** The backends compared: own kernels on 2 and 1 threads, TypeScript loops, reference. */
function backends(): { name: string; be: Backend }[] {
  const two = createCpuBackend({ threads: 2, tuning: { parallelMinBytes: 0 } });
  assert.ok(two.rt.kernels !== null, `own kernels did not load: ${two.versions.ownKernels}`);
  return [
    { name: "own kernels, 2 threads", be: two },
    { name: "own kernels, 1 thread", be: createCpuBackend({ threads: 1 }) },
    {
      name: "TypeScript loops",
      be: createCpuBackend({ threads: 2, tuning: { nativeKernels: false } }),
    },
    { name: "reference", be: createReferenceBackend() },
  ];
}

function put(be: Backend, a: Float32Array): Storage {
  const s = be.alloc("f32", a.length);
  be.upload(s, a);
  return s;
}

// Sizes: a tail below 8, a tensor above the 1 MiB parallel threshold, a small one.
const SIZES = [5, 300_001, 1000];

ownKernelsTest(
  "cpu own SGD and EMA: bit-identical to the TypeScript loops and the reference",
  () => {
    const sides = backends();
    try {
      for (const nesterov of [false, true]) {
        for (const lars of [false, true]) {
          const results = sides.map(({ be }) => {
            const params = SIZES.map((n, i) => put(be, lcg(10 + i, n)));
            const grads = SIZES.map((n, i) => put(be, lcg(20 + i, n, 0.1)));
            const bufs = SIZES.map((n, i) => put(be, lcg(30 + i, n, 0.01)));
            be.sgdUpdateMulti({
              params,
              grads,
              momentumBufs: bufs,
              lr: 0.05,
              momentum: 0.9,
              nesterov,
              weightDecay: [5e-4, 0, 1e-4],
              lars: lars
                ? { eta: 0.02, eps: 1e-8, clip: false, adapt: [true, false, true] }
                : undefined,
            });
            const teacher = SIZES.map((n, i) => put(be, lcg(40 + i, n)));
            const out = SIZES.map((n) => be.alloc("f32", n));
            be.emaUpdateMulti({ teacher, student: params, out, momentum: 0.996 });
            // In place too (out = teacher).
            be.emaUpdateMulti({ teacher, student: grads, out: teacher, momentum: 0.99 });
            const read = (ss: Storage[]) => ss.map((s) => be.download(s) as Float32Array);
            return {
              params: read(params),
              bufs: read(bufs),
              out: read(out),
              teacher: read(teacher),
            };
          });
          for (let k = 1; k < sides.length; k++) {
            for (const key of ["params", "bufs", "out", "teacher"] as const) {
              results[k][key].forEach((a, i) =>
                assert.deepEqual(
                  results[0][key][i],
                  a,
                  `nesterov ${nesterov} lars ${lars}: '${key}'[${i}] vs ${sides[k].name}`,
                )
              );
            }
          }
        }
      }
    } finally {
      for (const { be } of sides) be.dispose();
    }
  },
);

ownKernelsTest("cpu own sum: the f64 sum to rounding, independent of the thread count", () => {
  const sides = backends();
  try {
    for (const n of [4096, 4097, 1_000_003]) {
      const x = lcg(7, n, 3).map((v, i) => v + (i % 3 === 0 ? 1e3 : 0));
      const sums = sides.map(({ be }) => {
        const xs = put(be, x), out = be.alloc("f32", 1);
        be.sum({ x: xs, out, alpha: 0.5, n });
        return (be.download(out) as Float32Array)[0];
      });
      let exact = 0;
      for (const v of x) exact += v;
      const want = Math.fround(0.5 * exact);
      assert.equal(sums[0], sums[1], `n ${n}: 2 vs 1 threads`);
      for (const [k, s] of sums.entries()) {
        assert.ok(
          Math.abs(s - want) <= 2 ** -22 * Math.abs(want),
          `n ${n}: ${sides[k].name} gives ${s}, the f64 sum ${want}`,
        );
      }
    }
  } finally {
    for (const { be } of sides) be.dispose();
  }
});

ownKernelsTest(
  "cpu own log-softmax: within f32 rounding of the reference, its special values too",
  () => {
    const sides = backends();
    try {
      // Rows: random widths (8-wide loop and tail), a dominant entry (y near 0), NaN, -inf, +inf.
      const shapes: [number, number][] = [[5, 3], [4, 8], [3, 4099], [2, 1]];
      for (const [rows, cols] of shapes) {
        const x = lcg(rows * 31 + cols, rows * cols, 6);
        if (cols >= 3) {
          x[0] = 40; // row 0: one entry far above the others
          if (rows >= 4) {
            x[cols] = NaN; // row 1
            x.fill(-Infinity, 2 * cols, 3 * cols); // row 2
            x[3 * cols + 1] = Infinity; // row 3
          }
        }
        const ys = sides.map(({ be }) => {
          const xs = put(be, x), y = be.alloc("f32", rows * cols);
          be.logSoftmax({ x: xs, y, rows, cols });
          return be.download(y) as Float32Array;
        });
        const want = ys[3];
        for (const [k, got] of ys.entries()) {
          for (let i = 0; i < want.length; i++) {
            const ok = Number.isNaN(want[i])
              ? Number.isNaN(got[i])
              : Math.abs(got[i] - want[i]) <= 4e-7 * (1 + Math.abs(want[i]));
            assert.ok(
              ok,
              `[${rows}, ${cols}] element ${i}: ${sides[k].name} ${got[i]}, reference ${want[i]}`,
            );
          }
        }
        assert.deepEqual(ys[0], ys[1], `[${rows}, ${cols}]: 2 vs 1 threads`);
      }
    } finally {
      for (const { be } of sides) be.dispose();
    }
  },
);
