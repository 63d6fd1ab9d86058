/**
 * The cuBLAS stand-in against naive loops: every transpose combination, leading dimensions above
 * the minimum, alpha/beta blending (beta = 0 never reads C), bf16 inputs with f32 or bf16 output,
 * strided batches, TF32 rounding where the math mode or compute type allows it. Inputs are small
 * multiples of 1/4, so the f32 products are exact and results compare bit for bit.
 */

import assert from "node:assert/strict";
import { emulatorUnavailable, openEmu, skipNote } from "./emu_helpers.ts";
import {
  ALGO_DEFAULT,
  bf16Bits,
  COMPUTE_32F,
  FAST_TF32,
  naive,
  openCublas as open,
  quarters,
  R16BF,
  R32F,
  tf32,
} from "./cublas_reference.ts";

const ignore = emulatorUnavailable() !== undefined;
const note = skipNote();

Deno.test({
  name: "cuBLAS stand-in: Sgemm, all transposes, padded leading dimensions, alpha/beta" + note,
  ignore,
  fn() {
    const emu = openEmu();
    const { lib, s, h, stream } = open(emu);
    try {
      const m = 5, n = 7, k = 3;
      for (const ta of [0, 1]) {
        for (const tb of [0, 1]) {
          const lda = (ta ? k : m) + 2, ldb = (tb ? n : k) + 1, ldc = m + 3;
          const a = quarters(lda * (ta ? m : k), 1),
            b = quarters(ldb * (tb ? k : n), 2),
            c = quarters(ldc * n, 3);
          const dA = emu.upload(a), dB = emu.upload(b), dC = emu.upload(c);
          const r = s.cublasSgemm_v2(
            h,
            ta,
            tb,
            m,
            n,
            k,
            new Float32Array([1.5]),
            dA,
            lda,
            dB,
            ldb,
            new Float32Array([0.5]),
            dC,
            ldc,
          );
          assert.equal(r, 0);
          emu.ok(emu.s.cuStreamSynchronize(stream), "sync");
          assert.deepEqual(
            [...emu.download(dC, new Float32Array(ldc * n))],
            naive(m, n, k, 1.5, a, lda, ta, b, ldb, tb, 0.5, c, ldc),
            `op ${ta}${tb}`,
          );
        }
      }
      // beta = 0 does not read C (NaN stays out); alpha = 0 with beta = 1 leaves C alone.
      const a = quarters(16, 4), b = quarters(16, 5);
      const dC = emu.upload(new Float32Array(16).fill(NaN));
      assert.equal(
        s.cublasSgemm_v2(
          h,
          0,
          0,
          4,
          4,
          4,
          new Float32Array([1]),
          emu.upload(a),
          4,
          emu.upload(b),
          4,
          new Float32Array([0]),
          dC,
          4,
        ),
        0,
      );
      emu.ok(emu.s.cuStreamSynchronize(stream), "sync");
      assert.deepEqual(
        [...emu.download(dC, new Float32Array(16))],
        naive(4, 4, 4, 1, a, 4, 0, b, 4, 0, 0, new Float32Array(16), 4),
      );
    } finally {
      s.cublasDestroy_v2(h);
      lib.close();
      emu.close();
    }
  },
});

Deno.test({
  name: "cuBLAS stand-in: GemmEx bf16 -> f32/bf16, strided batches, TF32 only when allowed" + note,
  ignore,
  fn() {
    const emu = openEmu();
    const { lib, s, h, stream } = open(emu);
    try {
      const m = 6, n = 4, k = 5;
      const a = quarters(m * k, 6), b = quarters(k * n, 7);
      const toBf16 = (x: Float32Array) => Uint16Array.from(x, bf16Bits);
      const dA = emu.upload(toBf16(a)), dB = emu.upload(toBf16(b));
      const want = naive(m, n, k, 1.25, a, k, 1, b, k, 0, 0, new Float32Array(m * n), m);
      const c32 = emu.alloc(4 * m * n), c16 = emu.alloc(2 * m * n);
      const one = new Float32Array([1.25]), zero = new Float32Array([0]);
      assert.equal(
        s.cublasGemmEx(
          h,
          1,
          0,
          m,
          n,
          k,
          one,
          dA,
          R16BF,
          k,
          dB,
          R16BF,
          k,
          zero,
          c32,
          R32F,
          m,
          COMPUTE_32F,
          ALGO_DEFAULT,
        ),
        0,
      );
      assert.equal(
        s.cublasGemmEx(
          h,
          1,
          0,
          m,
          n,
          k,
          one,
          dA,
          R16BF,
          k,
          dB,
          R16BF,
          k,
          zero,
          c16,
          R16BF,
          m,
          COMPUTE_32F,
          ALGO_DEFAULT,
        ),
        0,
      );
      emu.ok(emu.s.cuStreamSynchronize(stream), "sync");
      assert.deepEqual([...emu.download(c32, new Float32Array(m * n))], want);
      assert.deepEqual([...emu.download(c16, new Uint16Array(m * n))], want.map(bf16Bits));

      const batch = 3, sa = m * k + 3, sb = k * n + 1, sc = m * n + 2;
      const A = quarters(sa * batch, 8), B = quarters(sb * batch, 9), C = quarters(sc * batch, 10);
      const dC = emu.upload(C);
      assert.equal(
        s.cublasGemmStridedBatchedEx(
          h,
          0,
          1,
          m,
          n,
          k,
          new Float32Array([2]),
          emu.upload(A),
          R32F,
          m,
          BigInt(sa),
          emu.upload(B),
          R32F,
          n,
          BigInt(sb),
          new Float32Array([-1]),
          dC,
          R32F,
          m,
          BigInt(sc),
          batch,
          COMPUTE_32F,
          ALGO_DEFAULT,
        ),
        0,
      );
      emu.ok(emu.s.cuStreamSynchronize(stream), "sync");
      const got = emu.download(dC, new Float32Array(sc * batch));
      for (let i = 0; i < batch; i++) {
        const w = naive(
          m,
          n,
          k,
          2,
          A.subarray(i * sa),
          m,
          0,
          B.subarray(i * sb),
          n,
          1,
          -1,
          C.subarray(i * sc, i * sc + m * n),
          m,
        );
        assert.deepEqual([...got.subarray(i * sc, i * sc + m * n)], w, `batch ${i}`);
        assert.deepEqual([...got.subarray(i * sc + m * n, (i + 1) * sc)], [
          ...C.subarray(i * sc + m * n, (i + 1) * sc),
        ], "gap untouched");
      }

      // Low mantissa bits survive in full precision and are rounded away in TF32.
      const fine = Float32Array.from({ length: 16 }, (_, i) => 1 + (i + 1) * 2 ** -20);
      const ones = new Float32Array(16).fill(1);
      const run = (compute: number) => {
        const out = emu.alloc(64);
        assert.equal(
          s.cublasGemmEx(
            h,
            0,
            0,
            4,
            4,
            4,
            new Float32Array([1]),
            emu.upload(fine),
            R32F,
            4,
            emu.upload(ones),
            R32F,
            4,
            zero,
            out,
            R32F,
            4,
            compute,
            ALGO_DEFAULT,
          ),
          0,
        );
        emu.ok(emu.s.cuStreamSynchronize(stream), "sync");
        return [...emu.download(out, new Float32Array(16))];
      };
      const exact = naive(4, 4, 4, 1, fine, 4, 0, ones, 4, 0, 0, new Float32Array(16), 4).map(
        Math.fround,
      );
      const rounded = naive(
        4,
        4,
        4,
        1,
        Array.from(fine, tf32),
        4,
        0,
        ones,
        4,
        0,
        0,
        new Float32Array(16),
        4,
      );
      assert.notDeepEqual(exact, rounded);
      assert.deepEqual(run(COMPUTE_32F), exact);
      assert.deepEqual(run(FAST_TF32), rounded);
      assert.equal(s.cublasSetMathMode(h, 3), 0); // CUBLAS_TF32_TENSOR_OP_MATH
      assert.deepEqual(run(COMPUTE_32F), rounded);
      assert.equal(s.cublasSetMathMode(h, 0), 0);
    } finally {
      s.cublasDestroy_v2(h);
      lib.close();
      emu.close();
    }
  },
});
