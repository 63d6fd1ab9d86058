import assert from "node:assert/strict";
import fc from "fast-check";
import { backendTest, forEachBackend } from "../backends.ts";
import { rngKey } from "../../src/random/philox.ts";
import { checkQueueBatch, enqueue, initQueue } from "../../src/ressl/queue.ts";
import { createContext } from "../../src/tensor/mod.ts";

forEachBackend("ressl queue", (b) => {
  const ctx = createContext(b.create());
  const test = backendTest(b);

  function rows(data: Float32Array, d: number): number[][] {
    return Array.from(
      { length: data.length / d },
      (_, i) => Array.from(data.subarray(i * d, i * d + d)),
    );
  }

  test("initQueue: unit-norm rows, deterministic per key, different across keys", () => {
    const a = initQueue(ctx, { size: 64, dim: 16, key: rngKey(7) });
    const b = initQueue(ctx, { size: 64, dim: 16, key: rngKey(7) });
    const c = initQueue(ctx, { size: 64, dim: 16, key: rngKey(8) });
    const av = a.data.toFloat32();
    assert.equal(a.ptr, 0);
    assert.deepEqual(a.data.shape, [64, 16]);
    for (const r of rows(av, 16)) {
      assert.ok(Math.abs(Math.hypot(...r) - 1) < 1e-6, `row norm ${Math.hypot(...r)}`);
    }
    assert.deepEqual(av, b.data.toFloat32());
    assert.notDeepEqual(av, c.data.toFloat32());
    // Gaussian directions: coordinates average near 0 with variance near 1/D.
    const mean = av.reduce((s, v) => s + v, 0) / av.length;
    const variance = av.reduce((s, v) => s + v * v, 0) / av.length;
    assert.ok(Math.abs(mean) < 0.03 && Math.abs(variance - 1 / 16) < 1e-6, `${mean} ${variance}`);
    [a, b, c].forEach((q) => q.data.dispose());
  });

  test("enqueue is FIFO: writes at ptr, wraps around, keeps the other rows, input unchanged", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 12 }),
        (b, blocks, d, steps) => {
          const k = b * blocks;
          let queue = initQueue(ctx, { size: k, dim: d, key: rngKey(b * 100 + k), batchSize: b });
          const model = rows(queue.data.toFloat32(), d);
          let ptr = 0;
          for (let s = 0; s < steps; s++) {
            const keys = Float32Array.from({ length: b * d }, (_, i) => s * 1000 + i);
            const kt = ctx.fromArray(keys, [b, d]);
            const before = queue.data.toFloat32();
            const next = enqueue(queue, kt);
            assert.deepEqual(queue.data.toFloat32(), before, "the input queue is unchanged");
            for (let i = 0; i < b; i++) {
              model[ptr + i] = Array.from(keys.subarray(i * d, i * d + d));
            }
            ptr = (ptr + b) % k;
            assert.equal(next.ptr, ptr);
            assert.deepEqual(rows(next.data.toFloat32(), d), model.map((r) => r.map(Math.fround)));
            queue.data.dispose();
            kt.dispose();
            queue = next;
          }
          queue.data.dispose();
        },
      ),
      { numRuns: 50 },
    );
    assert.equal(ctx.liveTensors, 0);
  });

  test("after K/B steps the queue holds exactly the last K keys, oldest first from ptr 0", () => {
    let queue = initQueue(ctx, { size: 6, dim: 1, key: rngKey(1) });
    for (let s = 0; s < 5; s++) {
      const keys = ctx.fromArray([2 * s, 2 * s + 1], [2, 1]);
      const next = enqueue(queue, keys);
      queue.data.dispose();
      keys.dispose();
      queue = next;
    }
    // Steps 0..4 with K = 6, B = 2: rows 0-1 hold step 3, rows 2-3 step 4, rows 4-5 step 2.
    assert.deepEqual(Array.from(queue.data.toFloat32()), [6, 7, 8, 9, 4, 5]);
    assert.equal(queue.ptr, 4);
    queue.data.dispose();
  });

  test("K % B != 0 and wrong key shapes fail with clear errors", () => {
    assert.throws(
      () => checkQueueBatch(4000, 256),
      /Cannot build the queue: K=4000 is not a multiple of the batch size 256/,
    );
    assert.throws(
      () => initQueue(ctx, { size: 10, dim: 2, key: rngKey(0), batchSize: 4 }),
      /K=10 is not a multiple of the batch size 4/,
    );
    const q = initQueue(ctx, { size: 8, dim: 2, key: rngKey(0) });
    ctx.scope(() => {
      assert.throws(
        () => enqueue(q, ctx.zeros([3, 2])),
        /K=8 is not a multiple of the batch size 3/,
      );
      assert.throws(() => enqueue(q, ctx.zeros([2, 3])), /queue holds f32 rows of dimension 2/);
      assert.throws(() => enqueue({ ...q, ptr: 2 }, ctx.zeros([4, 2])), /ptr must be a multiple/);
    });
    assert.throws(() => initQueue(ctx, { size: 0, dim: 2, key: rngKey(0) }), /size K is 0/);
    q.data.dispose();
  });
});
