/**
 * The cuBLAS stand-in's argument checks (as the library documents them) and its status names and
 * strings, which must be the real library's (compared with the real libcublas from the wheels,
 * which answers without a GPU).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { emulatorUnavailable, LIB_DIR, openEmu, runIsolated, skipNote } from "./emu_helpers.ts";
import {
  ALGO_DEFAULT,
  COMPUTE_32F,
  INVALID_VALUE,
  NOT_INITIALIZED,
  NOT_SUPPORTED,
  openCublas as open,
  R16BF,
  R16F,
  R32F,
} from "./cublas_reference.ts";
import { statusStrings } from "./library_probes.ts";

const ignore = emulatorUnavailable() !== undefined;
const note = skipNote();

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
