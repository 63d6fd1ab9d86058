/**
 * MetricsFlusher: one flush downloads the pending losses and writes one step record (last loss,
 * mean, lr, images/s), sums the epoch's losses, warns once about a loss pinned at ln K, stops on a
 * non-finite loss naming the step and the last good checkpoint, and disposes every loss it took.
 */
import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import type { MetricsRecord } from "../../src/io/metrics.ts";
import { MetricsFlusher } from "../../src/run/metrics_flusher.ts";
import { NonFiniteLossError } from "../../src/run/non_finite.ts";
import { createContext } from "../../src/tensor/mod.ts";

const ctx = createContext(createReferenceBackend());

function setup(lastCheckpoint?: string) {
  const records: MetricsRecord[] = [];
  const flusher = new MetricsFlusher({
    sink: { write: (r) => records.push(r) },
    batchSize: 4,
    epochs: 3,
    totalSteps: 30,
    startStep: 10,
    queueSize: 16,
    elapsed: () => 2,
    lastCheckpoint: () => lastCheckpoint,
  });
  const push = (step: number, loss: number, lr = 0.1) =>
    flusher.push(step, ctx.fromArray([loss], []), lr);
  return { records, flusher, push };
}

Deno.test("MetricsFlusher logs one step record per flush and the epoch's mean loss", () => {
  const live = ctx.liveTensors;
  const { records, flusher, push } = setup();
  flusher.flush(0);
  assert.equal(records.length, 0, "nothing pending: nothing written");
  flusher.beginEpoch();
  push(11, 3);
  push(12, 2);
  push(13, 1, 0.05);
  assert.equal(ctx.liveTensors, live + 3, "losses stay on the device until the flush");
  flusher.flush(1);
  assert.equal(ctx.liveTensors, live);
  assert.deepEqual(records, [{
    kind: "step",
    step: 13,
    epoch: 1,
    loss: 1,
    lossMean: 2,
    lr: 0.05,
    imagesPerSecond: (13 - 10) * 4 / 2,
    seconds: 2,
  }]);
  push(14, 6);
  flusher.flush(1);
  assert.equal(flusher.lastLoss, 6);
  assert.equal(flusher.epochLoss(), (3 + 2 + 1 + 6) / 4);
  flusher.beginEpoch();
  assert.equal(flusher.epochLoss(), 6, "an epoch with no flush reports the last loss");
});

Deno.test("MetricsFlusher warns once when the loss stays at ln K", () => {
  const { records, flusher, push } = setup();
  for (let step = 1; step <= 14; step++) {
    push(step, Math.log(16));
    flusher.flush(0);
  }
  const events = records.filter((r) => r.kind === "event");
  assert.equal(events.length, 1);
  assert.equal(events[0].event, "collapse");
  assert.match(String(events[0].message), /ln K = 2\.7726 since step 1/);
});

Deno.test("MetricsFlusher stops on a non-finite loss and disposes what it held", () => {
  const live = ctx.liveTensors;
  const { records, flusher, push } = setup("runs/x/checkpoint-000000008.safetensors");
  push(11, 1);
  push(12, NaN);
  push(13, 2);
  assert.throws(
    () => flusher.flush(0),
    (e: Error) =>
      e instanceof NonFiniteLossError &&
      /the loss became NaN at step 12; the last good checkpoint is 'runs\/x\/checkpoint-000000008\.safetensors'/
        .test(e.message),
  );
  assert.equal(records.length, 0);
  assert.equal(ctx.liveTensors, live);
  push(14, 1);
  flusher.dispose();
  assert.equal(ctx.liveTensors, live);
});
