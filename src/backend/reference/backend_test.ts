import assert from "node:assert/strict";
import { createReferenceBackend } from "./backend.ts";
import { assertClose, poisoned, randomArray, read, upload } from "./test_helpers.ts";

Deno.test("reference memory: alloc/free counting, upload with offset, download is a copy", () => {
  const b = createReferenceBackend();
  assert.equal(b.name, "reference");
  assert.deepEqual({ ...b.versions }, {});
  const s = b.alloc("f32", 5);
  const u = b.alloc("u8", 3);
  const i = b.alloc("i32", 2);
  assert.equal(b.liveAllocations(), 3);
  assert.equal(s.dtype, "f32");
  assert.equal(s.length, 5);
  assert.equal(s.backend, b);
  b.fill(s, 0);
  b.upload(s, new Float32Array([1, 2]), 3);
  const host = b.download(s);
  assert.deepEqual([...host], [0, 0, 0, 1, 2]);
  host[0] = 42;
  assert.equal(b.download(s)[0], 0, "download must return a copy");
  b.upload(u, new Uint8Array([7, 8, 255]));
  assert.ok(b.download(u) instanceof Uint8Array);
  assert.deepEqual([...b.download(u)], [7, 8, 255]);
  b.fill(i, -3);
  assert.ok(b.download(i) instanceof Int32Array);
  assert.deepEqual([...b.download(i)], [-3, -3]);
  b.free(s);
  b.free(u);
  assert.equal(b.liveAllocations(), 1);
  b.free(i);
  assert.equal(b.liveAllocations(), 0);
});

Deno.test("reference copy: offsets, and overlapping ranges within one storage", () => {
  const b = createReferenceBackend();
  const src = upload(b, [1, 2, 3, 4, 5]);
  const dst = upload(b, [0, 0, 0, 0, 0]);
  b.copy({ src, dst, srcOffset: 1, dstOffset: 2, length: 3 });
  assert.deepEqual([...read(b, dst)], [0, 0, 2, 3, 4]);
  b.copy({ src, dst: src, srcOffset: 0, dstOffset: 1, length: 4 });
  assert.deepEqual([...read(b, src)], [1, 1, 2, 3, 4]);
  assert.throws(
    () => b.copy({ src, dst, srcOffset: 3, dstOffset: 0, length: 3 }),
    /Cannot run copy: storage 'src' has 5 elements, expected at least 6/,
  );
});

Deno.test("reference errors: freed, foreign, wrong dtype, too short, aliasing, bad fill", () => {
  const b = createReferenceBackend();
  const other = createReferenceBackend();
  const x = upload(b, [1, 2, 3]);
  const y = b.alloc("f32", 3);
  const foreign = upload(other, [1, 2, 3]);
  const ints = b.alloc("i32", 3);
  assert.throws(
    () => b.relu({ x: foreign, y, n: 3 }),
    /Cannot run relu: storage 'x' does not belong to this reference backend/,
  );
  assert.throws(
    () => b.relu({ x: ints, y, n: 3 }),
    /storage 'x' has dtype i32, expected f32 or bf16/,
  );
  assert.throws(
    () => b.relu({ x, y, n: 4 }),
    /Cannot run relu: storage 'x' has 3 elements, expected at least 4/,
  );
  assert.throws(
    () => b.relu({ x, y: x, n: 3 }),
    /'y' is the same storage as 'x'; this kernel needs distinct storages/,
  );
  assert.throws(() => b.relu({ x, y, n: 1.5 }), /'n' is 1.5, expected an integer >= 0/);
  assert.throws(() => b.fill(ints, 0.5), /value 0.5 does not fit storage 'dst' of dtype i32/);
  assert.throws(() => b.upload(x, new Int32Array(3)), /storage 'dst' has dtype f32, expected i32/);
  assert.throws(() => b.upload(x, new Float32Array(2), 2), /has 3 elements, expected at least 4/);
  b.free(x);
  assert.throws(() => b.relu({ x, y, n: 3 }), /Cannot run relu: storage 'x' was freed/);
  assert.throws(() => b.download(x), /Cannot run download: storage 'src' was freed/);
  assert.throws(() => b.free(x), /Cannot run free: storage 'storage' was freed/);
  assert.throws(() => b.free(foreign), /does not belong to this reference backend/);
  assert.equal(b.liveAllocations(), 2);
  b.dispose();
  assert.throws(() => b.alloc("f32", 1), /this reference backend was disposed/);
  assert.throws(() => b.relu({ x: y, y: upload(other, [0, 0, 0]), n: 3 }), /was disposed/);
});

Deno.test("reference axpby: out = alpha x + beta y, also in place on x or y", () => {
  const b = createReferenceBackend();
  const xs = randomArray(1, 7);
  const ys = randomArray(2, 7);
  const expected = Array.from(xs, (v, i) => 0.9 * v + 0.1 * ys[i]);
  const x = upload(b, xs);
  const y = upload(b, ys);
  const out = poisoned(b, 7);
  b.axpby({ x, y, out, alpha: 0.9, beta: 0.1, n: 7 });
  assertClose(read(b, out), expected, 0, 1e-6, "axpby");
  b.axpby({ x, y, out: x, alpha: 0.9, beta: 0.1, n: 7 });
  assertClose(read(b, x), expected, 0, 1e-6, "axpby out === x");
  b.upload(x, xs);
  b.axpby({ x, y, out: y, alpha: 0.9, beta: 0.1, n: 7 });
  assertClose(read(b, y), expected, 0, 1e-6, "axpby out === y");
  // beta = 0 ignores y entirely (even NaN), as a scale.
  b.fill(out, NaN);
  b.axpby({ x, y: out, out: y, alpha: -2, beta: 0, n: 7 });
  assertClose(read(b, y), Array.from(xs, (v) => -2 * v), 0, 1e-7, "scale");
});

Deno.test("reference elementwise: mul, broadcastScalar, relu, reluBackward, sum", () => {
  const b = createReferenceBackend();
  const as = [1.5, -2, 0, 3, -0.5];
  const bs = [2, 4, -1, -3, 8];
  const a = upload(b, as);
  const c = upload(b, bs);
  const out = poisoned(b, 5);
  b.mul({ a, b: c, out, n: 5 });
  assert.deepEqual([...read(b, out)], [3, -8, -0, -9, -4]);
  b.broadcastScalar({ s: c, out, alpha: -0.5, n: 5 });
  assert.deepEqual([...read(b, out)], [-1, -1, -1, -1, -1]);
  const y = poisoned(b, 5);
  b.relu({ x: a, y, n: 5 });
  assert.deepEqual([...read(b, y)], [1.5, 0, 0, 3, 0]);
  const dx = poisoned(b, 5);
  b.reluBackward({ y, dy: c, dx, n: 5 });
  assert.deepEqual([...read(b, dx)], [2, 0, 0, -3, 0]);
  const total = poisoned(b, 1);
  b.sum({ x: a, out: total, alpha: 0.5, n: 5 });
  assert.equal(read(b, total)[0], 1);
  // f64 accumulation: 1e8 + 1 - 1e8 ones is exact in f64, not in f32.
  const big = upload(b, [1e8, 1, 1, 1, 1, -1e8]);
  b.sum({ x: big, out: total, alpha: 1, n: 6 });
  assert.equal(read(b, total)[0], 4);
});

// Expected values from torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.01) in PyTorch 1.13.
const SGD_GRADS = [[0.5, -0.25, 2.0], [0.1, 0.3, -1.0], [-0.7, 0.2, 0.05]];
const SGD_TORCH = {
  plain: [
    [0.9490000009536743, -1.9730000495910645, 0.2994999885559082],
    [0.8921509981155396, -1.97672700881958, 0.2187504768371582],
    [0.9100947380065918, -1.9981045722961426, 0.14085716009140015],
  ],
  nesterov: [
    [0.9031000137329102, -1.948699951171875, 0.11904997378587723],
    [0.8410741090774536, -1.9801274538040161, 0.14641878008842468],
    [0.9264655709266663, -2.0174038410186768, 0.0713796466588974],
  ],
};

for (const nesterov of [false, true]) {
  Deno.test(`reference sgdUpdateMulti matches torch.optim.SGD (nesterov ${nesterov})`, () => {
    const b = createReferenceBackend();
    const param = upload(b, [1, -2, 0.5]);
    const buf = upload(b, [0, 0, 0]);
    const expected = nesterov ? SGD_TORCH.nesterov : SGD_TORCH.plain;
    SGD_GRADS.forEach((g, step) => {
      const grad = upload(b, g);
      b.sgdUpdateMulti({
        params: [param],
        grads: [grad],
        momentumBufs: [buf],
        lr: 0.1,
        momentum: 0.9,
        weightDecay: [0.01],
        nesterov,
      });
      assertClose(read(b, param), expected[step], 1e-6, 1e-6, `step ${step}`);
    });
  });
}

Deno.test("reference sgdUpdateMulti: one step by hand", () => {
  const b = createReferenceBackend();
  const param = upload(b, [1]);
  const buf = upload(b, [0.2]);
  const grad = upload(b, [0.5]);
  const opts = {
    params: [param],
    grads: [grad],
    momentumBufs: [buf],
    lr: 0.1,
    momentum: 0.9,
    weightDecay: [0.01],
  };
  // g = 0.5 + 0.01 * 1 = 0.51; buf = 0.9 * 0.2 + 0.51 = 0.69; p = 1 - 0.1 * 0.69.
  b.sgdUpdateMulti({ ...opts, nesterov: false });
  assertClose(read(b, param), [0.931], 0, 1e-6, "param");
  assertClose(read(b, buf), [0.69], 0, 1e-6, "buf");
  b.upload(param, new Float32Array([1]));
  b.upload(buf, new Float32Array([0.2]));
  // nesterov: p = 1 - 0.1 * (0.51 + 0.9 * 0.69) = 0.8869.
  b.sgdUpdateMulti({ ...opts, nesterov: true });
  assertClose(read(b, param), [0.8869], 0, 1e-6, "param nesterov");
  assertClose(read(b, buf), [0.69], 0, 1e-6, "buf nesterov");
});

Deno.test("reference bf16 storages: upload/download raw bits, fill rounds once, cast both ways", () => {
  const b = createReferenceBackend();
  const s = b.alloc("bf16", 3);
  b.upload(s, new Uint16Array([0x3f80, 0xc000, 0x7fc0]));
  const host = b.download(s);
  assert.ok(host instanceof Uint16Array);
  assert.deepEqual([...host], [0x3f80, 0xc000, 0x7fc0]);
  // 1 + 2^-8 + 2^-40 rounds up to 1 + 2^-7 (0x3f81); through f32 first it would tie down to 1.
  b.fill(s, 1 + 2 ** -8 + 2 ** -40);
  assert.deepEqual([...b.download(s)], [0x3f81, 0x3f81, 0x3f81]);
  const f = b.alloc("f32", 3);
  b.cast({ x: s, y: f, n: 3 });
  assert.deepEqual([...b.download(f)], [1.0078125, 1.0078125, 1.0078125]);
  b.upload(f, new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -1e39]));
  b.cast({ x: f, y: s, n: 3 });
  assert.deepEqual([...b.download(s)], [0x3f80, 0x3f82, 0xff80]);
  assert.throws(
    () => b.upload(s, new Float32Array(3)),
    /storage 'dst' has dtype bf16, expected f32/,
  );
  b.free(s);
  b.free(f);
  assert.equal(b.liveAllocations(), 0);
});
