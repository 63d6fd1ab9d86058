/**
 * The cuBLAS stand-in against naive loops: every transpose combination, leading dimensions above
 * the minimum, alpha/beta blending (beta = 0 never reads C), bf16 inputs with f32 or bf16 output,
 * strided batches, TF32 rounding where the math mode or compute type allows it, and the checks the
 * library documents. Inputs are small multiples of 1/4, so the f32 products are exact and results
 * compare bit for bit.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Emu,
  emulatorUnavailable,
  LIB_DIR,
  openEmu,
  runIsolated,
  skipNote,
} from "./emu_helpers.ts";
import { statusStrings } from "./library_probes.ts";

const ignore = emulatorUnavailable() !== undefined;
const note = skipNote();

const SYMBOLS = {
  cublasCreate_v2: { parameters: ["buffer"], result: "i32" },
  cublasDestroy_v2: { parameters: ["pointer"], result: "i32" },
  cublasSetStream_v2: { parameters: ["pointer", "pointer"], result: "i32" },
  cublasSetWorkspace_v2: { parameters: ["pointer", "u64", "usize"], result: "i32" },
  cublasSetMathMode: { parameters: ["pointer", "i32"], result: "i32" },
  cublasGetVersion_v2: { parameters: ["pointer", "buffer"], result: "i32" },
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
  cublasGemmEx: {
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
      "i32",
      "u64",
      "i32",
      "i32",
      "buffer",
      "u64",
      "i32",
      "i32",
      "i32",
      "i32",
    ],
    result: "i32",
  },
  cublasGemmStridedBatchedEx: {
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
      "i32",
      "i64",
      "u64",
      "i32",
      "i32",
      "i64",
      "buffer",
      "u64",
      "i32",
      "i32",
      "i64",
      "i32",
      "i32",
      "i32",
    ],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

const R32F = 0, R16F = 2, R16BF = 14, COMPUTE_32F = 68, FAST_TF32 = 77, ALGO_DEFAULT = -1;
const INVALID_VALUE = 7, NOT_SUPPORTED = 15, NOT_INITIALIZED = 1;

/** Column-major op(X)(r, c) for X stored with leading dimension ld. */
function at(x: ArrayLike<number>, ld: number, trans: number, r: number, c: number): number {
  return trans === 0 ? x[r + c * ld] : x[c + r * ld];
}

/** C = alpha op(A) op(B) + beta C in f64 (beta = 0: C not read). */
function naive(
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: ArrayLike<number>,
  lda: number,
  ta: number,
  b: ArrayLike<number>,
  ldb: number,
  tb: number,
  beta: number,
  c: ArrayLike<number>,
  ldc: number,
): number[] {
  const out = Array.from(c);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += at(a, lda, ta, i, p) * at(b, ldb, tb, p, j);
      out[i + j * ldc] = alpha * s + (beta === 0 ? 0 : beta * c[i + j * ldc]);
    }
  }
  return out;
}

function quarters(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => (((i * 7 + seed * 13) % 17) - 8) / 4);
}
function bf16Bits(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}
function tf32(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer);
  u[0] = (u[0] + 0x1000) & 0xffffe000;
  return new Float32Array(u.buffer)[0];
}

function open(emu: Emu) {
  const lib = Deno.dlopen(join(LIB_DIR, "libcublas.so.13"), SYMBOLS);
  const out = new BigUint64Array(1);
  assert.equal(lib.symbols.cublasCreate_v2(out), 0);
  const h = Deno.UnsafePointer.create(out[0]);
  const stream = emu.stream();
  assert.equal(lib.symbols.cublasSetStream_v2(h, stream), 0);
  return { lib, s: lib.symbols, h, stream };
}

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

Deno.test({
  name: "cuBLAS stand-in: the documented argument checks" + note,
  ignore,
  fn() {
    const emu = openEmu();
    const { lib, s, h } = open(emu);
    try {
      const d = emu.alloc(4096);
      const one = new Float32Array([1]);
      const sgemm = (ta: number, m: number, lda: number) =>
        s.cublasSgemm_v2(h, ta, 0, m, 4, 4, one, d, lda, d, 4, one, d, Math.max(m, 1));
      assert.equal(sgemm(0, -1, 4), INVALID_VALUE, "m < 0");
      assert.equal(sgemm(0, 8, 4), INVALID_VALUE, "lda < m");
      assert.equal(sgemm(1, 8, 4), 0, "lda >= k for op T");
      assert.equal(sgemm(5, 4, 4), INVALID_VALUE, "unknown operation");
      assert.equal(
        s.cublasGemmEx(
          h,
          0,
          0,
          4,
          4,
          4,
          one,
          d,
          R16F,
          4,
          d,
          R16F,
          4,
          one,
          d,
          R16F,
          4,
          COMPUTE_32F,
          ALGO_DEFAULT,
        ),
        NOT_SUPPORTED,
        "f16 is not emulated",
      );
      assert.equal(
        s.cublasGemmEx(
          h,
          0,
          0,
          4,
          4,
          4,
          one,
          d,
          R32F,
          4,
          d,
          R32F,
          4,
          one,
          d,
          R16BF,
          4,
          COMPUTE_32F,
          ALGO_DEFAULT,
        ),
        NOT_SUPPORTED,
        "f32 in, bf16 out",
      );
      assert.equal(
        s.cublasGemmEx(
          h,
          0,
          0,
          4,
          4,
          4,
          one,
          d,
          R32F,
          4,
          d,
          R32F,
          4,
          one,
          d,
          R32F,
          4,
          COMPUTE_32F,
          42,
        ),
        INVALID_VALUE,
        "unknown algorithm",
      );
      assert.equal(
        s.cublasSetWorkspace_v2(h, d + 4n, 1024n),
        INVALID_VALUE,
        "workspace not 256-byte aligned",
      );
      assert.equal(s.cublasSetWorkspace_v2(h, d, 1024n), 0);
      assert.equal(
        s.cublasSgemm_v2(null, 0, 0, 4, 4, 4, one, d, 4, d, 4, one, d, 4),
        NOT_INITIALIZED,
        "no handle",
      );
      const v = new Int32Array(1);
      assert.equal(s.cublasGetVersion_v2(h, v), 0);
      assert.equal(v[0], 130101);
      emu.ok(emu.s.cuCtxSynchronize(), "sync");
    } finally {
      s.cublasDestroy_v2(h);
      lib.close();
      emu.close();
    }
  },
});

Deno.test({
  name: "cuBLAS/cuDNN stand-ins: status names and strings are the real libraries' (no GPU needed)" +
    note,
  ignore,
  async fn() {
    const real = await runIsolated("realStatusStrings");
    const ours = statusStrings(join(LIB_DIR, "libcublas.so.13"), join(LIB_DIR, "libcudnn.so.9"));
    assert.deepEqual(ours, real);
  },
});
