/**
 * A rank of the data-parallel equivalence test (run under `mpirun -np W`, or alone as the
 * one-process baseline): for each case (`bnSplits`, teacher shuffle) it trains a tiny ReSSL
 * (ResNet-18 of width 16 on 16x16 crops of a random 64-image dataset, global batch 16, queue 32)
 * for a few steps through the real loader (sharded by rank) and the real train step, and writes
 *
 * - `<out>/<case>.rank<r>.json` on every rank: the per-step losses (the ranks' average), the
 *   SHA-256 of the queue and of the whole state (identical on every rank if the ranks agree);
 * - `<out>/<case>.state.bin` on rank 0: every state tensor (f32, `flattenTree` order).
 *
 * Usage: equivalence_worker.ts <out> <backend: cpu|reference|cuda> <steps> <case>...
 * (a case is `s<bnSplits>` + `-shuffle` or `-plain`, e.g. `s1-shuffle`); `--no-overlap` starts the
 * gradient buckets after backward instead of during it, `--bucket-bytes N` sets their size.
 *
 * @module
 */

import { join } from "node:path";
import type { Backend } from "../../src/backend/backend.ts";
import { createBackend } from "../../src/backend/select.ts";
import { memoryDataset } from "../../src/data/datasets/dataset.ts";
import { Loader } from "../../src/data/loader.ts";
import { createComm } from "../../src/dist/create.ts";
import { createDeviceComm } from "../../src/dist/device_comm_select.ts";
import { runWithComm } from "../../src/dist/run_with_comm.ts";
import { foldIn, nameId, RandomStream, rngKey } from "../../src/random/philox.ts";
import { presetConfig, type TrainConfig, validateConfig } from "../../src/ressl/config.ts";
import { initTrainState, trainStepConfig } from "../../src/ressl/state.ts";
import { createTrainStep, disposeTrainState, type TrainState } from "../../src/ressl/step.ts";
import { broadcastState } from "../../src/run/distributed.ts";
import { trainViews } from "../../src/run/views.ts";
import { createContext } from "../../src/tensor/mod.ts";
import { flattenTree, type TensorTree } from "../../src/tensor/tree.ts";

/** The tiny configuration of a case. */
export function equivalenceConfig(bnSplits: number, shuffleTeacher: boolean): TrainConfig {
  const base = presetConfig("cifar10");
  return validateConfig({
    ...base,
    model: { ...base.model, width: 16 },
    head: { hidden: 16, out: 8 },
    image: { ...base.image, size: 16 },
    ressl: { ...base.ressl, queueSize: 32, bnSplits, shuffleTeacher },
    batchSize: 16,
    epochs: 2,
    seed: 7,
    knnEvery: 0,
  });
}

/** 64 random 10x10 RGB images. */
function dataset() {
  const rng = new RandomStream(rngKey(99));
  const images = Uint8Array.from({ length: 64 * 10 * 10 * 3 }, () => rng.int(256));
  return memoryDataset({ name: "random64", images, height: 10, width: 10, channels: 3 });
}

/** Every tensor of a state, in a fixed order. */
export function stateTensors(state: TrainState): [string, Float32Array][] {
  const tree = {
    student: state.student.params,
    studentBuffers: state.student.buffers,
    teacher: state.teacher.params,
    teacherBuffers: state.teacher.buffers,
    momentum: state.optimizer.momentum,
    queue: state.queue.data,
  } as unknown as TensorTree;
  return flattenTree(tree).map(([path, t]) => [path, t.toArray() as Float32Array]);
}

async function sha256(parts: Float32Array[]): Promise<string> {
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    bytes.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), at);
    at += p.byteLength;
  }
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function runCase(
  backend: Backend,
  dc: ReturnType<typeof createDeviceComm> | undefined,
  rank: number,
  size: number,
  name: string,
  steps: number,
  out: string,
  bucket: { overlap: boolean; bucketBytes?: number },
): Promise<void> {
  const m = /^s(\d+)-(shuffle|plain)$/.exec(name);
  if (!m) throw new Error(`Unknown case '${name}': expected s<splits>-shuffle or s<splits>-plain`);
  const config = equivalenceConfig(Number(m[1]), m[2] === "shuffle");
  const ctx = createContext(backend);
  const ds = dataset();
  const views = trainViews(config);
  const root = rngKey(config.seed);
  const loader = new Loader({
    dataset: ds,
    weak: views.weak,
    strong: views.strong,
    key: root,
    batchSize: config.batchSize,
    shard: { rank, count: size },
  });
  const spe = loader.batchesPerEpoch();
  const step = createTrainStep(
    trainStepConfig(config, spe),
    dc ? { comm: dc, ...bucket } : undefined,
  );
  let state = initTrainState(ctx, config);
  if (dc) state = broadcastState(state, dc);
  const losses: number[] = [];
  const [c, s] = [config.model.inChannels, config.image.size];
  try {
    for (let epoch = 0; state.step < steps; epoch++) {
      for await (const b of loader.epoch(epoch)) {
        if (state.step >= steps) break;
        const n = b.indices.length;
        const current = state;
        const next = ctx.scope(() => {
          const batch = {
            weak: ctx.fromArray(b.weak, [n, c, s, s]),
            strong: ctx.fromArray(b.strong, [n, c, s, s]),
          };
          return step(current, batch, foldIn(root, nameId("step"), current.step));
        });
        disposeTrainState(state);
        state = next.state;
        losses.push((next.metrics.loss.toArray() as Float32Array)[0]);
        next.metrics.loss.dispose();
      }
    }
    const tensors = stateTensors(state);
    const queue = tensors.find(([p]) => p === "queue")![1];
    await Deno.writeTextFile(
      join(out, `${name}.rank${rank}.json`),
      JSON.stringify({
        losses,
        queueHash: await sha256([queue]),
        stateHash: await sha256(tensors.map(([, a]) => a)),
        ptr: state.queue.ptr,
        step: state.step,
      }),
    );
    if (rank === 0) {
      const total = tensors.reduce((k, [, a]) => k + a.length, 0);
      const all = new Float32Array(total);
      let at = 0;
      const index: [string, number, number][] = [];
      for (const [p, a] of tensors) {
        all.set(a, at);
        index.push([p, at, a.length]);
        at += a.length;
      }
      await Deno.writeFile(join(out, `${name}.state.bin`), new Uint8Array(all.buffer));
      await Deno.writeTextFile(join(out, `${name}.index.json`), JSON.stringify(index));
    }
  } finally {
    disposeTrainState(state);
    await loader.close();
  }
}

if (import.meta.main) {
  const args = [...Deno.args];
  const overlap = !args.includes("--no-overlap");
  const bytesAt = args.indexOf("--bucket-bytes");
  const bucketBytes = bytesAt >= 0 ? Number(args[bytesAt + 1]) : undefined;
  const positional = args.filter((a, i) =>
    !a.startsWith("--") && (bytesAt < 0 || i !== bytesAt + 1)
  );
  const [out, backendName, stepsText, ...cases] = positional;
  const comm = createComm();
  await runWithComm(comm, async (comm) => {
    const backend = createBackend(backendName as "cpu", { threads: 1, quiet: true });
    const dc = comm.size > 1 ? createDeviceComm(comm, backend) : undefined;
    if (dc && comm.rank === 0) console.log(`device communicator: ${dc.kind}`);
    try {
      for (const name of cases) {
        await runCase(backend, dc, comm.rank, comm.size, name, Number(stepsText), out, {
          overlap,
          bucketBytes,
        });
      }
      if (backend.liveAllocations() !== 0) {
        throw new Error(`rank ${comm.rank}: ${backend.liveAllocations()} storages leaked`);
      }
    } finally {
      dc?.dispose();
      backend.dispose();
    }
  });
}
