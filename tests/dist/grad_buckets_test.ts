/**
 * `GradientBuckets` without MPI: a recording device communicator (two simulated ranks whose
 * gradients are known) checks the bucket layout (reverse parameter order, size limit, the loss in
 * the last bucket), that buckets start in bucket order whatever order backward hands gradients
 * over, that `overlap: false` starts nothing before `finish`, that missing gradients count as
 * zeros, extras (the loss, BN buffers) averaged with the last bucket, the averages written back,
 * and the errors.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Storage } from "../../src/backend/backend.ts";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import type { CommRequest, ReduceOp } from "../../src/dist/comm.ts";
import type { DeviceComm } from "../../src/dist/device_comm.ts";
import { GradientBuckets } from "../../src/dist/grad_buckets.ts";
import { createSingleComm } from "../../src/dist/single.ts";
import { NO_LAUNCHER } from "../../src/dist/launch.ts";

/**
 * A device communicator that records every started allreduce (its length) and averages each
 * bucket with the same bucket of an imagined second rank whose values are `other(x) = 3 x + 1`.
 */
function recordingComm() {
  const be = createReferenceBackend();
  const started: number[] = [];
  const dc = {
    kind: "staged" as const,
    comm: createSingleComm(NO_LAUNCHER),
    backend: be,
    allreduce() {
      throw new Error("not used");
    },
    allreduceStart(buf: Storage, op: ReduceOp = "sum"): CommRequest {
      assert.equal(op, "avg");
      started.push(buf.length);
      const mine = be.download(buf) as Float32Array;
      return {
        test: () => true,
        wait: () => be.upload(buf, mine.map((x) => (x + 3 * x + 1) / 2)),
      };
    },
    allgather() {},
    broadcast() {},
    dispose() {},
  } satisfies DeviceComm;
  return { be, dc, started };
}

function upload(be: ReturnType<typeof createReferenceBackend>, a: number[]): Storage {
  const s = be.alloc("f32", a.length);
  be.upload(s, Float32Array.from(a));
  return s;
}

Deno.test("gradient buckets: reverse order, size limit, loss last, started in order, averages", () => {
  const { be, dc, started } = recordingComm();
  // Parameters of 3, 2, 5 and 1 elements; 16-byte buckets hold 4 floats.
  const sizes = [3, 2, 5, 1];
  const gb = new GradientBuckets(dc, sizes, { bucketBytes: 16 });
  // Reverse order, a new bucket when the next tensor would pass 4 floats: [p3], [p2], [p1],
  // [p0 + the loss].
  assert.equal(gb.count, 4);
  const grads = sizes.map((n, i) => upload(be, Array.from({ length: n }, (_, j) => i * 10 + j)));
  const loss = upload(be, [0.5]);
  // Backward hands p2 first: bucket 1 is complete but bucket 0 (p3) is not, so nothing starts.
  gb.ready(2, grads[2]);
  assert.deepEqual(started, []);
  gb.ready(3, grads[3]);
  assert.deepEqual(started, [1, 5]); // buckets 0 and 1, in order
  gb.ready(1, grads[1]);
  assert.deepEqual(started, [1, 5, 2]);
  gb.ready(0, grads[0]);
  assert.deepEqual(started, [1, 5, 2], "the last bucket waits for the loss");
  gb.finish(grads, [loss]);
  assert.deepEqual(started, [1, 5, 2, 4], "the last bucket: p0 and the loss");
  for (let i = 0; i < sizes.length; i++) {
    const want = Float32Array.from({ length: sizes[i] }, (_, j) => 2 * (i * 10 + j) + 0.5);
    assert.deepEqual(be.download(grads[i]), want, `gradient ${i}`);
  }
  assert.deepEqual(be.download(loss), new Float32Array([1.5]));
  for (const g of [...grads, loss]) be.free(g);
  assert.equal(be.liveAllocations(), 0, "finish frees the buckets");
});

Deno.test("gradient buckets: no overlap starts all in finish; missing gradients count as zeros", () => {
  const { be, dc, started } = recordingComm();
  const gb = new GradientBuckets(dc, [2, 2], { bucketBytes: 8, overlap: false });
  const grads = [upload(be, [1, 2]), upload(be, [0, 0])];
  const loss = upload(be, [2]);
  gb.ready(0, grads[0]);
  assert.deepEqual(started, []);
  gb.finish(grads, [loss]); // gradient 1 never handed over: its (zero) storage is taken
  assert.deepEqual(started, [2, 3]);
  assert.deepEqual(be.download(grads[1]), new Float32Array([0.5, 0.5]));
  assert.deepEqual(be.download(grads[0]), new Float32Array([2.5, 4.5]));
  for (const g of [...grads, loss]) be.free(g);
});

Deno.test("gradient buckets: extras of any length are averaged with the last bucket", () => {
  const { be, dc, started } = recordingComm();
  const gb = new GradientBuckets(dc, [2], { extra: 4 });
  const grads = [upload(be, [1, 1])];
  const extras = [upload(be, [1]), upload(be, [2, 4, 6])];
  gb.ready(0, grads[0]);
  gb.finish(grads, extras);
  assert.deepEqual(started, [6]);
  assert.deepEqual(be.download(extras[1]), new Float32Array([4.5, 8.5, 12.5]));
  assert.deepEqual(be.download(extras[0]), new Float32Array([2.5]));
  const again = new GradientBuckets(dc, [2], { extra: 4 });
  again.ready(0, grads[0]);
  assert.throws(
    () => again.finish(grads, [extras[0]]),
    /got 1 extra elements, the buckets were made for 4/,
  );
  again.dispose();
  for (const g of [...grads, ...extras]) be.free(g);
});

Deno.test("gradient buckets: errors name the gradient", () => {
  const { be, dc } = recordingComm();
  assert.throws(() => new GradientBuckets(dc, [1], { bucketBytes: 2 }), /expected >= 4/);
  const gb = new GradientBuckets(dc, [2, 3]);
  const a = upload(be, [1, 2]);
  assert.throws(
    () => gb.ready(0, upload(be, [1, 2, 3])),
    /Gradient 0 has 3 elements, its parameter 2/,
  );
  gb.ready(0, a);
  assert.throws(() => gb.ready(0, a), /Gradient 0 was handed over twice/);
  assert.throws(() => gb.finish([a], [a]), /finish\(\) got 1 gradients for 2/);
  gb.dispose();
});
