/**
 * The bindings end to end on the emulated device (`RESSL_CUDA_EMULATION=1`, stand-ins built by
 * `bash emulator/build.sh`): driver memory, copies, memsets, streams, events, pinned memory and
 * graph capture; a row-major cuBLAS product and a cuDNN convolution plan against host references.
 * Kernel launches from the repository's modules are tested with the emulator itself.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ConvPlanCache } from "../../ffi/cuda/conv_plan_cache.ts";
import { createCublasHandle, loadCublas } from "../../ffi/cuda/cublas.ts";
import { createCudnnHandle, loadCudnn } from "../../ffi/cuda/cudnn.ts";
import { emulatorDir } from "../../ffi/cuda/discovery.ts";
import { loadDriver, openDevice } from "../../ffi/cuda/driver.ts";
import { rowMajorGemm } from "../../ffi/cuda/gemm.ts";
import * as mem from "../../ffi/cuda/memory.ts";
import * as st from "../../ffi/cuda/stream.ts";

const opts = { env: { ...Deno.env.toObject(), RESSL_CUDA_EMULATION: "1" } };
const built = (() => {
  try {
    return Deno.statSync(join(emulatorDir(opts), "libcuda.so.1")).isFile;
  } catch {
    return false;
  }
})();
const skip = built ? "" : " (skipped: emulator not built; run bash emulator/build.sh)";

function filled(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = ((s >>> 8) % 2001) / 1000 - 1;
  }
  return out;
}

function assertClose(got: Float32Array, want: Float64Array, tol: number, what: string): void {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    assert.ok(err <= tol * (1 + Math.abs(want[i])), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

Deno.test({
  name: "emulated driver: memory, copies, memsets, events, pinned staging and a captured graph" +
    skip,
  ignore: !built,
  fn() {
    const drv = loadDriver(opts);
    const dev = openDevice(drv, 0);
    const stream = st.createStream(drv);
    const n = 1024;
    const a = mem.memAlloc(drv, 4 * n);
    const b = mem.memAlloc(drv, 4 * n);
    try {
      assert.ok(drv.version >= 13000 && drv.deviceCount >= 1 && dev.name.length > 0);
      const src = filled(n, 1);
      mem.copyHtoD(drv, a, src);
      const back = new Float32Array(n);
      mem.copyDtoH(drv, back, a);
      assert.deepEqual(back, src);

      mem.memsetD32Async(drv, b, 0x3fc00000, n, stream); // 1.5f
      const e0 = st.createEvent(drv);
      const e1 = st.createEvent(drv);
      st.recordEvent(drv, e0, stream);
      mem.copyDtoDAsync(drv, a, b, 4 * 16, stream);
      st.recordEvent(drv, e1, stream);
      st.syncEvent(drv, e1);
      assert.ok(st.elapsedMs(drv, e0, e1) >= 0);
      st.destroyEvent(drv, e0);
      st.destroyEvent(drv, e1);
      mem.copyDtoH(drv, back, a);
      assert.deepEqual([...back.subarray(0, 17)], [...Array(16).fill(1.5), src[16]]);

      const pinned = mem.allocPinned(drv, 4 * n);
      const staged = new Float32Array(pinned.buffer);
      staged.set(filled(n, 2));
      mem.copyHtoDAsync(drv, b, pinned.pointer, 4 * n, stream);
      mem.memsetD8Async(drv, a, 0, 4 * n, stream);
      mem.copyDtoHAsync(drv, pinned.pointer, a, 4 * n, stream);
      st.syncStream(drv, stream);
      assert.ok(staged.every((v) => v === 0), "zeroed by memsetD8 then copied back");
      mem.copyDtoH(drv, back, b);
      assert.deepEqual(back, filled(n, 2));
      pinned.free();

      const graph = st.captureGraph(drv, stream, () => {
        mem.memsetD32Async(drv, a, 0x40000000, n, stream); // 2.0f
        mem.copyDtoDAsync(drv, b, a, 4 * n, stream);
      });
      mem.copyHtoD(drv, b, new Float32Array(n));
      graph.launch(stream);
      st.syncStream(drv, stream);
      mem.copyDtoH(drv, back, b);
      assert.ok(back.every((v) => v === 2), "the graph ran its memset and copy");
      graph.destroy();
      const info = mem.memGetInfo(drv);
      assert.ok(info.free <= info.total && info.total > 0n);
    } finally {
      mem.memFree(drv, a);
      mem.memFree(drv, b);
      st.destroyStream(drv, stream);
      dev.release();
      drv.close();
    }
  },
});

Deno.test({
  name: "emulated cuBLAS: row-major products (transposed, strided batch) match the host" + skip,
  ignore: !built,
  fn() {
    const drv = loadDriver(opts);
    const dev = openDevice(drv, 0);
    const lib = loadCublas(opts);
    const h = createCublasHandle(lib);
    const [m, n, k, batch] = [3, 4, 5, 2];
    const A = filled(batch * m * k, 3); // m x k each
    const B = filled(batch * n * k, 4); // stored n x k each (used transposed)
    const pa = mem.memAlloc(drv, 4 * A.length);
    const pb = mem.memAlloc(drv, 4 * B.length);
    const pc = mem.memAlloc(drv, 4 * batch * m * n);
    try {
      mem.copyHtoD(drv, pa, A);
      mem.copyHtoD(drv, pb, B);
      rowMajorGemm(h, {
        m,
        n,
        k,
        a: pa,
        b: pb,
        c: pc,
        transB: true,
        batch: { count: batch, strideA: m * k, strideB: n * k, strideC: m * n },
      });
      const C = new Float32Array(batch * m * n);
      mem.copyDtoH(drv, C, pc);
      const want = new Float64Array(C.length);
      for (let t = 0; t < batch; t++) {
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let l = 0; l < k; l++) s += A[t * m * k + i * k + l] * B[t * n * k + j * k + l];
            want[t * m * n + i * n + j] = s;
          }
        }
      }
      assertClose(C, want, 1e-5, "C");
    } finally {
      for (const p of [pa, pb, pc]) mem.memFree(drv, p);
      h.destroy();
      lib.close();
      dev.release();
      drv.close();
    }
  },
});

Deno.test({
  name: "emulated cuDNN: a cached convolution plan's three directions match the host" + skip,
  ignore: !built,
  fn() {
    const drv = loadDriver(opts);
    const dev = openDevice(drv, 0);
    const lib = loadCudnn(opts);
    const h = createCudnnHandle(lib);
    const s = { n: 2, c: 3, h: 6, w: 5, k: 4, r: 3, s: 3, padH: 1, padW: 0, strideH: 2 };
    const cache = new ConvPlanCache(h);
    const plan = cache.get(s);
    assert.equal(cache.get({ ...s, dilationH: 1 }), plan, "one search per shape");
    assert.equal(cache.size, 1);
    const [N, K, P, Q] = plan.outShape;
    assert.deepEqual([N, K, P, Q], [2, 4, 3, 3]);
    const x = filled(s.n * s.c * s.h * s.w, 5);
    const w = filled(s.k * s.c * s.r * s.s, 6);
    const dy = filled(N * K * P * Q, 7);
    const y = new Float64Array(dy.length);
    const dx = new Float64Array(x.length);
    const dw = new Float64Array(w.length);
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        for (let p = 0; p < P; p++) {
          for (let q = 0; q < Q; q++) {
            const o = ((n * K + k) * P + p) * Q + q;
            for (let c = 0; c < s.c; c++) {
              for (let r = 0; r < s.r; r++) {
                for (let t = 0; t < s.s; t++) {
                  const hh = p * 2 - 1 + r;
                  const ww = q + t;
                  if (hh < 0 || hh >= s.h || ww >= s.w) continue;
                  const xi = ((n * s.c + c) * s.h + hh) * s.w + ww;
                  const wi = ((k * s.c + c) * s.r + r) * s.s + t;
                  y[o] += x[xi] * w[wi];
                  dx[xi] += dy[o] * w[wi];
                  dw[wi] += dy[o] * x[xi];
                }
              }
            }
          }
        }
      }
    }
    const px = mem.memAlloc(drv, 4 * x.length);
    const pw = mem.memAlloc(drv, 4 * w.length);
    const py = mem.memAlloc(drv, 4 * dy.length);
    const ws = plan.workspaceBytes > 0 ? mem.memAlloc(drv, plan.workspaceBytes) : 0n;
    try {
      mem.copyHtoD(drv, px, x);
      mem.copyHtoD(drv, pw, w);
      plan.forward(px, pw, py, ws);
      const got = new Float32Array(dy.length);
      mem.copyDtoH(drv, got, py);
      assertClose(got, y, 1e-5, "y");
      mem.copyHtoD(drv, py, dy);
      plan.backwardData(pw, py, px, ws);
      const gx = new Float32Array(x.length);
      mem.copyDtoH(drv, gx, px);
      assertClose(gx, dx, 1e-5, "dx");
      mem.copyHtoD(drv, px, x);
      plan.backwardFilter(px, py, pw, ws);
      const gw = new Float32Array(w.length);
      mem.copyDtoH(drv, gw, pw);
      assertClose(gw, dw, 1e-5, "dw");
    } finally {
      for (const p of [px, pw, py]) mem.memFree(drv, p);
      if (ws !== 0n) mem.memFree(drv, ws);
      cache.destroy();
      h.destroy();
      lib.close();
      dev.release();
      drv.close();
    }
  },
});
