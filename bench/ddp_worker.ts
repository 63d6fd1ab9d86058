/**
 * One rank of `deno task bench ddp` (or one process): times the ReSSL training step of a case
 * (`bench/step_cases.ts`) on pre-made views, data-parallel when started under mpirun, and the
 * time each step spends inside the device communicator (gradient buckets, SyncBN and teacher
 * gathers). Also times a bare allreduce (average) of `--allreduce N` floats through the same
 * communicator. Rank 0 prints one JSON line `ddp-result {...}`.
 *
 * Usage: ddp_worker.ts --case b --threads 1 --steps 6 --warmup 2 [--bn-splits 1]
 *   [--no-overlap] [--allreduce 11200000]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createBackend } from "../src/backend/select.ts";
import type { Storage } from "../src/backend/backend.ts";
import { createComm } from "../src/dist/create.ts";
import type { DeviceComm } from "../src/dist/device_comm.ts";
import { createDeviceComm } from "../src/dist/device_comm_select.ts";
import { runWithComm } from "../src/dist/run_with_comm.ts";
import { foldIn, nameId, normalArray, rngKey } from "../src/random/philox.ts";
import { mergeConfig } from "../src/ressl/config.ts";
import { initTrainState, trainStepConfig } from "../src/ressl/state.ts";
import { createTrainStep, disposeTrainState } from "../src/ressl/step.ts";
import { broadcastState } from "../src/run/distributed.ts";
import { createContext } from "../src/tensor/mod.ts";
import { caseConfig, median, selectCases } from "./step_cases.ts";

/** A device communicator that adds the wall time of every call to `clock.ms`. */
function timed(dc: DeviceComm, clock: { ms: number }): DeviceComm {
  const time = <T>(f: () => T): T => {
    const t0 = performance.now();
    try {
      return f();
    } finally {
      clock.ms += performance.now() - t0;
    }
  };
  return {
    ...dc,
    allreduce: (b, op) => time(() => dc.allreduce(b, op)),
    allreduceStart: (b: Storage, op) => {
      const req = time(() => dc.allreduceStart(b, op));
      return { test: () => time(() => req.test()), wait: () => time(() => req.wait()) };
    },
    allgather: (s, r) => time(() => dc.allgather(s, r)),
    broadcast: (b, root) => time(() => dc.broadcast(b, root)),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      case: { type: "string", default: "b" },
      threads: { type: "string", default: "1" },
      steps: { type: "string", default: "6" },
      warmup: { type: "string", default: "2" },
      "bn-splits": { type: "string" },
      "no-overlap": { type: "boolean", default: false },
      allreduce: { type: "string" },
    },
  });
  await runWithComm(createComm(), (comm) => {
    const backend = createBackend("cpu", { threads: Number(values.threads), quiet: true });
    const ctx = createContext(backend);
    const clock = { ms: 0 };
    const dc = comm.size > 1 ? timed(createDeviceComm(comm, backend), clock) : undefined;
    const c = selectCases(values.case)[0];
    let config = caseConfig(c);
    if (values["bn-splits"]) {
      config = mergeConfig(config, { ressl: { bnSplits: Number(values["bn-splits"]) } }, "bench");
    }
    const step = createTrainStep(
      trainStepConfig(config, 100),
      dc ? { comm: dc, overlap: !values["no-overlap"] } : undefined,
    );
    let state = initTrainState(ctx, config);
    if (dc) state = broadcastState(state, dc);
    const local = config.batchSize / comm.size;
    const [ch, s] = [config.model.inChannels, config.image.size];
    const views = [0, 1].map((v) =>
      normalArray(foldIn(rngKey(3), nameId("view"), v * 100 + comm.rank), local * ch * s * s)
    );
    const times: number[] = [];
    const commMs: number[] = [];
    const total = Number(values.warmup) + Number(values.steps);
    for (let i = 0; i < total; i++) {
      clock.ms = 0;
      const t0 = performance.now();
      const current = state;
      const next = ctx.scope(() =>
        step(current, {
          weak: ctx.fromArray(views[0], [local, ch, s, s]),
          strong: ctx.fromArray(views[1], [local, ch, s, s]),
        }, foldIn(rngKey(1), nameId("step"), i))
      );
      next.metrics.loss.toArray(); // the step is done (a sync on GPUs)
      next.metrics.loss.dispose();
      disposeTrainState(state);
      state = next.state;
      if (i >= Number(values.warmup)) {
        times.push((performance.now() - t0) / 1000);
        commMs.push(clock.ms);
      }
    }
    disposeTrainState(state);
    let allreduceMs: number | undefined;
    if (values.allreduce && dc) {
      const n = Number(values.allreduce);
      const buf = backend.alloc("f32", n);
      backend.fill(buf, 1);
      const ms: number[] = [];
      for (let i = 0; i < 6; i++) {
        const t0 = performance.now();
        dc.allreduceStart(buf, "avg").wait();
        if (i > 0) ms.push(performance.now() - t0);
      }
      backend.free(buf);
      allreduceMs = median(ms);
    }
    if (comm.rank === 0) {
      const med = median(times);
      console.log(`ddp-result ${
        JSON.stringify({
          case: c.id,
          ranks: comm.size,
          threads: Number(values.threads),
          bnSplits: config.ressl.bnSplits,
          overlap: !values["no-overlap"],
          batch: config.batchSize,
          stepSeconds: med,
          imagesPerSecond: config.batchSize / med,
          commMsPerStep: comm.size > 1 ? median(commMs) : 0,
          allreduceMs,
          allreduceFloats: values.allreduce ? Number(values.allreduce) : undefined,
        })
      }`);
    }
    dc?.dispose();
    backend.dispose();
  });
}
