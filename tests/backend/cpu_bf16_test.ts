/**
 * bf16 on the cpu backend: which oneDNN implementations run (native `avx512_core_bf16` kernels
 * where the CPU has AVX512_BF16, never oneDNN's slow `ref:` fallbacks), casts of blocked
 * activations (layout kept, bits equal to `bf16.ts`), and large copies (a threaded oneDNN copy)
 * being exact.
 *
 * @module
 */

import assert from "node:assert/strict";
import { bf16ArrayToF32, f32ArrayToBf16 } from "../../src/backend/bf16.ts";
import { blockedActivation, cpuTest, layoutOf, lcg, upload } from "./cpu_test_util.ts";

const NATIVE_BF16 = ["avx512CoreBf16", "avx512CoreAmx"];

cpuTest("cpu: bf16 convolutions, batch norm, ReLU and gemm run on JIT kernels", (be) => {
  const [n, c, h, w] = [2, 16, 6, 6];
  const x = blockedActivation(be, "bf16", [n, c, h, w], 1); // conv forward on bf16
  const dy = blockedActivation(be, "bf16", [n, c, h, w], 2);
  const wt = be.alloc("bf16", c * c * 9), dx = be.alloc("bf16", n * c * h * w);
  const geom = { n, c, h, w, k: c, r: 3, s: 3, strideH: 1, strideW: 1, padH: 1, padW: 1 };
  const g = { ...geom, outH: h, outW: w };
  be.fill(wt, 0.5);
  be.conv2dBackwardData({ dy, w: wt, dx, geom: g });
  be.conv2dBackwardWeights({ x, dy, dw: wt, geom: g });
  const ones = upload(be, new Float32Array(c).fill(1));
  const m = be.alloc("f32", c), v = be.alloc("f32", c), y = be.alloc("bf16", n * c * h * w);
  const bn = { x, gamma: ones, beta: ones, y, mean: m, variance: v, eps: 1e-5 };
  be.batchNormForwardTraining({ ...bn, geom: { n, c, hw: h * w }, relu: true });
  be.batchNormForwardTraining({ ...bn, geom: { n, c, hw: h * w }, residual: dy, relu: true });
  be.relu({ x: dy, y: dx, n: n * c * h * w });
  const a = be.alloc("bf16", 64 * 32),
    b = be.alloc("bf16", 32 * 16),
    cm = be.alloc("bf16", 64 * 16);
  be.fill(a, 1);
  be.fill(b, 2);
  be.gemm({ a, b, c: cm, m: 64, n: 16, k: 32, transA: false, transB: false, alpha: 1, beta: 0 });
  assert.equal(be.download(cm)[0], 0x4280, "64 = 32 * 1 * 2 as bf16"); // 0x4280 is 64.0

  const isa = be.versions.onednnIsa;
  const impls = be.rt.implementations();
  for (const { what, impl } of impls) {
    if (what === "reorder" || what === "convert" || what === "copy") continue;
    assert.ok(!impl.startsWith("ref"), `${what} runs oneDNN's reference code (${impl})`);
    // bf16 batch norm with a residual normalises an f32 intermediate (one rounding): not checked.
    if (/convolution|matmul/.test(what) && NATIVE_BF16.includes(isa)) {
      assert.match(impl, /bf16/, `${what} on an AVX512_BF16 CPU (${isa}) should use bf16 kernels`);
    }
  }
  if (NATIVE_BF16.includes(isa)) {
    const bn = impls.filter((p) => p.what.startsWith("batch-norm")).map((p) => p.impl);
    assert.ok(bn.some((impl) => /bf16/.test(impl)), `bf16 batch norm kernels: ${bn}`);
  }
  for (const s of [x, dy, wt, dx, ones, m, v, y, a, b, cm]) be.free(s);
});

cpuTest("cpu: cast keeps a blocked activation blocked and rounds as bf16.ts", (be) => {
  const dims: [number, number, number, number] = [2, 24, 5, 5]; // 24 channels: padded blocks
  const count = dims.reduce((p, q) => p * q);
  const x = blockedActivation(be, "f32", dims, 3);
  const before = layoutOf(x);
  assert.equal(before.blocked, true);
  const b = be.alloc("bf16", count), back = be.alloc("f32", count);
  be.cast({ x, y: b, n: count });
  assert.equal(layoutOf(b).blocked, true, "the bf16 copy keeps the blocked layout");
  be.cast({ x: b, y: back, n: count });
  assert.deepEqual(layoutOf(back), before, "casting back gives the original layout");
  const xs = be.download(x) as Float32Array;
  const bits = be.download(b) as Uint16Array;
  assert.deepEqual(bits, f32ArrayToBf16(xs));
  assert.deepEqual(be.download(back), bf16ArrayToF32(bits));
  for (const s of [x, b, back]) be.free(s);
});

cpuTest("cpu: large copies (threaded oneDNN copy) are exact, whole or partial", (be) => {
  const dims: [number, number, number, number] = [4, 32, 48, 48]; // 1.2 MB: above the threshold
  const count = dims.reduce((p, q) => p * q);
  const x = blockedActivation(be, "f32", dims, 4);
  const want = be.download(x) as Float32Array;
  const whole = be.alloc("f32", count);
  be.copy({ src: x, dst: whole, srcOffset: 0, dstOffset: 0, length: count });
  assert.deepEqual(layoutOf(whole), layoutOf(x), "a whole copy keeps the layout");
  assert.deepEqual(be.download(whole), want);
  const part = upload(be, lcg(5, count + 7));
  const keep = be.download(part) as Float32Array;
  be.copy({ src: x, dst: part, srcOffset: 0, dstOffset: 0, length: count - 3 });
  const got = be.download(part) as Float32Array;
  assert.deepEqual(got.subarray(0, count - 3), want.subarray(0, count - 3));
  assert.deepEqual(got.subarray(count - 3), keep.subarray(count - 3), "elements past length stay");
  for (const s of [x, whole, part]) be.free(s);
});
