/**
 * The cuda backend's own machinery, beyond the kernel results the conformance suite compares:
 * pinned staging (many uploads in flight, chunked large uploads), the caching allocator (a
 * repeated sequence makes no driver allocation; blocks back to baseline), the content-keyed
 * pointer tables of the multi-tensor kernels, host shadows (indices and crop boxes checked on the
 * host), fills and overlapping copies, measured convolution search, TF32, and dispose. On the
 * emulated device (or a GPU with RESSL_CUDA_EMULATION=0).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Storage } from "../../src/backend/backend.ts";
import { AUGMENT_PARAM_COUNT } from "../../src/backend/augment_layout.ts";
import type { CudaBackend } from "../../src/backend/cuda/backend.ts";
import { STAGING_CHUNK, STAGING_SLOTS } from "../../src/backend/cuda/staging.ts";
import { normalArray, rngKey } from "../../src/random/philox.ts";
import {
  createTrainStep,
  disposeTrainState,
  initTrainState,
  trainStepConfig,
} from "../../src/ressl/mod.ts";
import { createContext } from "../../src/tensor/mod.ts";
import { parityConfig } from "../../tasks/gpu_check_parity.ts";
import { emulatorSkip, testBackend } from "./helpers.ts";

const skip = emulatorSkip();
const test = (name: string, fn: (be: CudaBackend) => void) =>
  Deno.test({
    name: `cuda backend: ${name}${skip}`,
    ignore: skip !== "",
    fn() {
      const be = testBackend();
      try {
        fn(be);
      } finally {
        be.dispose();
      }
    },
  });

const up = (be: CudaBackend, a: Float32Array | Int32Array | Uint8Array | Uint16Array) => {
  const s = be.alloc(
    a instanceof Float32Array
      ? "f32"
      : a instanceof Int32Array
      ? "i32"
      : a instanceof Uint8Array
      ? "u8"
      : "bf16",
    a.length,
  );
  be.upload(s, a);
  return s;
};

test("uploads stay in flight through the staging ring; a large one goes in chunks", (be) => {
  const n = 3 * STAGING_SLOTS;
  const host = Array.from(
    { length: n },
    (_, i) => Float32Array.from({ length: 100 }, (_, j) => i * 1000 + j),
  );
  const stores = host.map((h) => up(be, h));
  host.forEach((h) => h.fill(-1)); // the host may reuse its arrays at once
  stores.forEach((s, i) => {
    const got = be.download(s) as Float32Array;
    assert.equal(got[0], i * 1000);
    assert.equal(got[99], i * 1000 + 99);
  });
  const big = Float32Array.from({ length: STAGING_CHUNK / 4 + 12345 }, (_, i) => i % 7919);
  const b = up(be, big);
  assert.deepEqual(be.download(b), big);
  const st = be.stats().staging;
  assert.ok(st.uploads >= n + 2, `uploads ${st.uploads}`);
  assert.ok(st.pinnedBytes <= (STAGING_SLOTS + 1) * STAGING_CHUNK, "pinned memory stays bounded");
  for (const s of [...stores, b]) be.free(s);
  assert.equal(be.liveAllocations(), 0);
});

test("the caching allocator: a repeated sequence makes no driver allocation; trim to baseline", (be) => {
  const baseline = be.stats().allocator.deviceAllocations; // the cuBLAS workspace
  const sequence = () => {
    const x = up(be, Float32Array.from({ length: 5000 }, (_, i) => Math.sin(i)));
    const y = be.alloc("f32", 5000);
    const s = be.alloc("f32", 1);
    be.relu({ x, y, n: 5000 });
    be.sum({ x: y, out: s, alpha: 1, n: 5000 }); // scratch partials from the allocator
    const total = (be.download(s) as Float32Array)[0];
    for (const t of [x, y, s]) be.free(t);
    return total;
  };
  const first = sequence();
  const calls = be.stats().allocator.driverAllocCalls;
  for (let i = 0; i < 3; i++) assert.equal(sequence(), first);
  const st = be.stats().allocator;
  assert.equal(st.driverAllocCalls, calls, "no driver allocation after the first run");
  assert.equal(st.liveBlocks, 1, "only the cuBLAS workspace is handed out");
  assert.equal(be.liveAllocations(), 0);
  be.trimCache();
  assert.equal(be.stats().allocator.deviceAllocations, baseline);
});

test("multi-tensor pointer tables are cached by content (clones that reuse blocks hit)", (be) => {
  const sizes = [10, 20000, 3];
  let params = sizes.map((n) => up(be, new Float32Array(n).fill(1)));
  const grads = sizes.map((n) => up(be, new Float32Array(n).fill(0.5)));
  const bufs = sizes.map((n) => up(be, new Float32Array(n)));
  const step = () =>
    be.sgdUpdateMulti({
      params,
      grads,
      momentumBufs: bufs,
      lr: 0.1,
      momentum: 0.9,
      weightDecay: [0, 0, 0],
      nesterov: false,
    });
  for (let i = 0; i < 8; i++) {
    // As the optimiser: clone, update the clone, free the old storages. The allocator's last-in
    // first-out buckets swap the two 512-byte tensors every other step: pointer sets of period 4.
    const next = params.map((p) => {
      const c = be.alloc("f32", p.length);
      be.copy({ src: p, dst: c, srcOffset: 0, dstOffset: 0, length: p.length });
      return c;
    });
    params.forEach((p) => be.free(p));
    params = next;
    step();
  }
  const tables = be.stats().tables;
  assert.deepEqual(tables, { uploads: 4, hits: 4 });
  let p = 1, buf = 0;
  for (let i = 0; i < 8; i++) [buf, p] = [0.9 * buf + 0.5, p - 0.1 * (0.9 * buf + 0.5)];
  const got = be.download(params[1]) as Float32Array;
  assert.ok(Math.abs(got[19999] - p) < 1e-6, `${got[19999]} vs ${p}`);
  for (const s of [...params, ...grads, ...bufs]) be.free(s);
});

test("host shadows: indices and crop boxes from the host are checked without a download", (be) => {
  const x = up(be, new Float32Array(6)), y = be.alloc("f32", 6);
  const bad = up(be, Int32Array.from([0, 2]));
  assert.throws(
    () => be.gatherRows({ x, index: bad, y, rows: 2, cols: 3 }),
    /gatherRows: index\[1\] is 2, expected 0 <= index < 2/,
  );
  const images = up(be, new Uint8Array(2 * 8 * 8).fill(100));
  const rows = new Float32Array(2 * AUGMENT_PARAM_COUNT);
  for (let i = 0; i < 2; i++) rows.set([0, 0, 8, 8], i * AUGMENT_PARAM_COUNT); // whole image
  rows.set([4, 4, 8, 8], AUGMENT_PARAM_COUNT); // sample 1's box leaves the 8x8 image
  const params = up(be, rows);
  const out = be.alloc("f32", 2 * 4 * 4);
  const call = (p: Storage) => () =>
    be.augmentViews({
      images,
      params: p,
      out,
      geom: { n: 2, h: 8, w: 8, c: 1, size: 4 },
      steps: [],
      blurKernel: 1,
      mean: [0],
      std: [1],
    });
  const syncs = be.stats().staging;
  assert.throws(call(params), /params of sample 1: crop box top 4 left 4 8x8 does not fit/);
  // Rows written on the device (here: copied) have no shadow: they are downloaded and checked.
  const copied = be.alloc("f32", rows.length);
  be.copy({ src: params, dst: copied, srcOffset: 0, dstOffset: 0, length: rows.length });
  assert.throws(call(copied), /params of sample 1: crop box/);
  be.upload(params, rows.map((v, i) => (i === AUGMENT_PARAM_COUNT ? 0 : i === 17 ? 0 : v)));
  call(params)();
  const views = be.download(out) as Float32Array;
  assert.ok(views.every((v) => Math.abs(v - 100 / 255) < 1e-6), "a flat image stays flat");
  assert.equal(syncs.uploads + 1, be.stats().staging.uploads);
  for (const s of [x, y, bad, images, params, out, copied]) be.free(s);
});

test("fill (f32, odd-length bf16, u8, i32) and copies within one storage (as copyWithin)", (be) => {
  const f = be.alloc("f32", 5), h = be.alloc("bf16", 7), u = be.alloc("u8", 9);
  const i = be.alloc("i32", 3);
  be.fill(f, -1.5);
  be.fill(h, 3);
  be.fill(u, 200);
  be.fill(i, -7);
  assert.deepEqual(be.download(f), new Float32Array(5).fill(-1.5));
  assert.deepEqual(be.download(h), new Uint16Array(7).fill(0x4040));
  assert.deepEqual(be.download(u), new Uint8Array(9).fill(200));
  assert.deepEqual(be.download(i), new Int32Array(3).fill(-7));
  const a = Float32Array.from({ length: 10 }, (_, k) => k);
  const s = up(be, a);
  be.copy({ src: s, dst: s, srcOffset: 0, dstOffset: 3, length: 6 });
  assert.deepEqual(be.download(s), a.slice().copyWithin(3, 0, 6));
  for (const t of [f, h, u, i, s]) be.free(t);
});

test("measured convolution search (cuDNN Find) plans once per shape, same results", (be) => {
  const geom = {
    n: 2,
    c: 3,
    h: 6,
    w: 6,
    k: 4,
    r: 3,
    s: 3,
    strideH: 1,
    strideW: 1,
    padH: 1,
    padW: 1,
    outH: 6,
    outW: 6,
  };
  const x = Float32Array.from({ length: 2 * 3 * 36 }, (_, k) => Math.cos(k));
  const w = Float32Array.from({ length: 4 * 3 * 9 }, (_, k) => Math.sin(k));
  const run = (b: CudaBackend) => {
    const [xs, ws, ys] = [up(b, x), up(b, w), b.alloc("f32", 2 * 4 * 36)];
    b.conv2dForward({ x: xs, w: ws, y: ys, geom });
    b.conv2dForward({ x: xs, w: ws, y: ys, geom });
    const out = b.download(ys) as Float32Array;
    for (const t of [xs, ws, ys]) b.free(t);
    return out;
  };
  const measured = testBackend({ convSearch: "measure" });
  try {
    assert.equal(measured.versions.convSearch, "measure");
    const a = run(measured), b = run(be);
    a.forEach((v, k) => assert.ok(Math.abs(v - b[k]) <= 1e-5 * (1 + Math.abs(b[k])), `${k}`));
    assert.equal(measured.stats().convPlans, 1);
  } finally {
    measured.dispose();
  }
});

test("TF32 is off by default and reaches cuBLAS when enabled", (be) => {
  const a = new Float32Array([1 + 2 ** -12]), b = new Float32Array([1]);
  const product = (x: CudaBackend) => {
    const [as, bs, cs] = [up(x, a), up(x, b), x.alloc("f32", 1)];
    x.gemm({
      a: as,
      b: bs,
      c: cs,
      m: 1,
      n: 1,
      k: 1,
      transA: false,
      transB: false,
      alpha: 1,
      beta: 0,
    });
    const v = (x.download(cs) as Float32Array)[0];
    for (const t of [as, bs, cs]) x.free(t);
    return v;
  };
  assert.equal(be.versions.tf32, "false");
  assert.equal(product(be), 1 + 2 ** -12, "full f32 precision");
  const tf32 = testBackend({ tf32: true });
  try {
    assert.equal(tf32.versions.tf32, "true");
    const p = product(tf32);
    if (tf32.versions.emulated === "true") assert.equal(p, 1, "TF32 keeps 10 mantissa bits");
    // A GPU's cuBLAS may still pick a full-precision kernel for a 1x1x1 product.
    else assert.ok(p === 1 || p === 1 + 2 ** -12, `${p}`);
  } finally {
    tf32.dispose();
  }
});

test("a warm training step: no driver allocation, no new plan, few uploads", (be) => {
  const config = parityConfig();
  const ctx = createContext(be);
  const step = createTrainStep(trainStepConfig(config, 100));
  const [n, c, s] = [config.batchSize, 3, config.image.size];
  const view = (k: number) =>
    ctx.keep(ctx.fromArray(normalArray(rngKey(k), n * c * s * s), [n, c, s, s]));
  const batch = { weak: view(1), strong: view(2) };
  let state = initTrainState(ctx, config);
  const run = (i: number) => {
    const r = ctx.scope(() => step(state, batch, rngKey(i)));
    disposeTrainState(state);
    state = r.state;
    return r.metrics.loss;
  };
  for (let i = 0; i < 3; i++) run(i).dispose(); // plans, blocks and tables of this shape
  const before = be.stats();
  for (let i = 3; i < 6; i++) {
    const loss = run(i);
    assert.ok(Number.isFinite(loss.item()));
    loss.dispose();
  }
  const after = be.stats();
  assert.equal(after.allocator.driverAllocCalls, before.allocator.driverAllocCalls);
  // The staging ring holds two steps' uploads: the host runs up to two steps ahead of the device.
  const perStep = (after.staging.uploads - before.staging.uploads) / 3;
  assert.ok(perStep <= STAGING_SLOTS / 2, `${perStep} uploads per step`);
  assert.equal(after.convPlans, before.convPlans, "no new convolution plan");
  disposeTrainState(state);
  batch.weak.dispose();
  batch.strong.dispose();
  assert.equal(be.liveAllocations(), 0);
});

Deno.test({
  name: `cuda backend: dispose gives every device block back and refuses later work${skip}`,
  ignore: skip !== "",
  fn() {
    const be = testBackend();
    const s = be.alloc("f32", 1000);
    be.fill(s, 1);
    be.dispose();
    assert.equal(be.stats().allocator.deviceAllocations, 0);
    assert.throws(() => be.alloc("f32", 1), /this cuda backend was disposed/);
    assert.throws(() => be.relu({ x: s, y: s, n: 1 }), /disposed/);
    be.dispose(); // twice is harmless
  },
});
