/**
 * The training run: epochs of {@link createTrainStep} steps over a {@link Loader}, with metrics
 * (`metrics.jsonl`, through a {@link MetricsFlusher}), progress, the online kNN monitor,
 * checkpoints every epoch (through a {@link Checkpointer}: atomic, last N kept), exact resume
 * (mid-epoch too; never over newer checkpoints), the run folder locked for the run's duration (a
 * second trainer is refused, see `run_folder.ts`), a stop request (SIGINT/SIGTERM) that
 * checkpoints first, and a stop with a clear error on a non-finite loss (no checkpoint is written
 * after it).
 *
 * Speed is measured on training steps only: the clock behind images/s pauses while the kNN
 * monitor runs and checkpoints are written, and the ETA adds the time those are still expected
 * to take (measured the last time each ran). Both show a sign of life on the progress display.
 *
 * Step `s` uses the key `foldIn(root, "step", s)` and batch `s % stepsPerEpoch` of epoch
 * `floor(s / stepsPerEpoch)`, whose images and views depend only on the seed: a resumed run repeats
 * the uninterrupted one step for step.
 *
 * @module
 */

import { join } from "node:path";
import type { ImageDataset } from "../data/datasets/mod.ts";
import { Loader } from "../data/loader.ts";
import { foldIn, nameId, rngKey } from "../random/philox.ts";
import { MetricsLog, type MetricsRecord } from "../io/metrics.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import type { Progress } from "../io/progress.ts";
import type { Context } from "../tensor/mod.ts";
import type { TrainConfig } from "../ressl/config.ts";
import { initTrainState, trainStepConfig } from "../ressl/state.ts";
import { createTrainStep, disposeTrainState, type TrainState } from "../ressl/step.ts";
import { Checkpointer } from "./checkpointer.ts";
import { type KnnData, knnMonitor } from "./knn_monitor.ts";
import { MetricsFlusher } from "./metrics_flusher.ts";
import { resumeMetrics } from "./resume.ts";
import { claimRunFolder } from "./run_folder.ts";
import { trainViews } from "./views.ts";
import { deviceBatchViews } from "./device_views.ts";
import {
  agreeStop,
  broadcastState,
  isWriter,
  NO_METRICS,
  runComm,
  type TrainParallel,
} from "./distributed.ts";

/** How much faster the kNN monitor encodes images than training steps take them (for the ETA). */
export const KNN_SPEEDUP = 8;

/** Options of {@link runTraining}. */
export interface TrainRunOptions {
  /** The context (backend) the run computes on. */
  ctx: Context;
  /** The run's configuration. */
  config: TrainConfig;
  /** The images to pretrain on (labels unused). */
  dataset: ImageDataset;
  /** Labelled train and test sets for the kNN monitor (needed when `config.knnEvery > 0`). */
  knnData?: KnnData;
  /** The run folder (config.json, metrics.jsonl, checkpoints). */
  outDir: string;
  /** Resume from this checkpoint; "" = the newest checkpoint of `outDir`. */
  resume?: string;
  /** Stop after this many steps in total (a checkpoint is written there). */
  maxSteps?: number;
  /** Augmentation workers (default 0; host views only). */
  workers?: number;
  /**
   * Where the augmented views are made: `device` (the backend's `augmentViews` from the u8 batch
   * and host-drawn parameters) or `host` (the loader, optionally in workers). Default: `device`
   * on the cuda backend, else `host`.
   */
  viewsOn?: "host" | "device";
  /** Progress display (step lines, messages). */
  progress?: Progress;
  /** Set to request a stop: the run checkpoints at the current step and returns. */
  stop?: { requested: boolean };
  /**
   * Applied to the fresh state of a new run (not on resume), e.g. loading pretrained backbone
   * weights (`train --init`, `loadBackboneInit`).
   */
  initialize?: (state: TrainState) => Promise<TrainState>;
  /** Written into config.json beside the config (backend, library versions, command line). */
  runInfo?: Record<string, unknown>;
  /**
   * Data-parallel training over several processes (`distributed.ts`): each rank takes its slice
   * of every global batch; rank 0 alone writes the run folder. Absent: one process.
   */
  parallel?: TrainParallel;
}

/** What a run did. */
export interface TrainRunResult {
  /** Steps done in total (including those before a resume). */
  steps: number;
  /** Steps done by this call. */
  stepsThisRun: number;
  /** The last logged loss. */
  finalLoss: number;
  /** Images per second of this call's training steps (kNN monitor and checkpoints excluded). */
  imagesPerSecond: number;
  /** Seconds this call took (from the first step). */
  wallSeconds: number;
  /** Seconds of `wallSeconds` spent in training steps (the rest: kNN monitor, checkpoints). */
  trainSeconds: number;
  /** Why the run stopped: its last epoch, `maxSteps`, or a stop request. */
  stoppedBy: "end" | "max-steps" | "signal";
  /** The last checkpoint this call wrote. */
  lastCheckpoint?: string;
}

/** Runs (or resumes) a training run; see the module doc. */
export async function runTraining(opts: TrainRunOptions): Promise<TrainRunResult> {
  const { outDir } = opts;
  if (!isWriter(opts.parallel)) return await runLocked(opts); // rank 0 holds the lock
  const claim = await claimRunFolder(outDir); // the lock: one trainer per run folder
  try {
    for (const m of claim.messages) opts.progress?.message(m);
    return await runLocked(opts);
  } finally {
    claim.release();
  }
}

async function runLocked(opts: TrainRunOptions): Promise<TrainRunResult> {
  const { ctx, config, outDir } = opts;
  const metricsPath = join(outDir, "metrics.jsonl");
  const root = rngKey(config.seed);
  const views = trainViews(config);
  const viewsOn = opts.viewsOn ?? (ctx.backend.name === "cuda" ? "device" : "host");
  const loader = new Loader({
    dataset: opts.dataset,
    weak: views.weak,
    strong: views.strong,
    extra: views.extra,
    key: root,
    batchSize: config.batchSize,
    workers: opts.workers ?? 0,
    viewsOn,
    shard: opts.parallel
      ? { rank: opts.parallel.comm.comm.rank, count: opts.parallel.comm.comm.size }
      : undefined,
  });
  const writer = isWriter(opts.parallel);
  const comm = runComm(opts.parallel);
  try {
    const spe = loader.batchesPerEpoch();
    if (spe === 0) {
      throw new RangeError(
        `Cannot train on '${opts.dataset.name}': ${opts.dataset.length} images make no full batch of ${config.batchSize}`,
      );
    }
    const totalSteps = config.epochs * spe;
    const limit = Math.min(totalSteps, opts.maxSteps ?? Infinity);
    const checkpointer = new Checkpointer({ outDir, config, dataset: opts.dataset });
    let state: TrainState;
    if (!writer) {
      // Shapes only: broadcastState below makes it rank 0's fresh, resumed or initialised state.
      state = initTrainState(ctx, config);
    } else if (opts.resume !== undefined) {
      const resumed = await checkpointer.resume(ctx, opts.resume);
      state = resumed.state;
      opts.progress?.message(`resumed from ${resumed.path} at step ${state.step}`);
      try {
        for (const m of await resumeMetrics(outDir, resumed.path, state.step)) {
          opts.progress?.message(m);
        }
      } catch (e) {
        disposeTrainState(state);
        throw e;
      }
    } else {
      checkpointer.assertFresh();
      await Deno.remove(metricsPath).catch(() => {});
      state = initTrainState(ctx, config);
      if (opts.initialize) state = await opts.initialize(state);
    }
    if (opts.parallel) state = broadcastState(state, opts.parallel.comm);
    const startStep = state.step;
    const t0 = performance.now();
    const elapsed = () => (performance.now() - t0) / 1000;
    // The training clock: wall time minus the kNN monitor and checkpoints.
    let pausedMs = 0;
    const trainSeconds = () => (performance.now() - t0 - pausedMs) / 1000;
    const paused = async <T>(
      work: () => T | Promise<T>,
    ): Promise<{ value: T; seconds: number }> => {
      const start = performance.now();
      try {
        return { value: await work(), seconds: (performance.now() - start) / 1000 };
      } finally {
        pausedMs += performance.now() - start;
      }
    };
    const knnDue = (epoch: number) => config.knnEvery > 0 && (epoch + 1) % config.knnEvery === 0;
    const lastEpoch = Math.ceil(limit / spe) - 1;
    const cost = { knn: NaN, checkpoint: NaN };
    /**
     * Before the kNN monitor first ran: its images at KNN_SPEEDUP times the training speed (it
     * encodes them once, forward only; measured 9.1x on 2 cores, width 16).
     */
    const knnGuess = () => {
      const images = (opts.knnData?.train.length ?? 0) + (opts.knnData?.test.length ?? 0);
      const trained = (state.step - startStep) * config.batchSize;
      const t = trainSeconds();
      return trained > 0 && t > 0 ? images / (KNN_SPEEDUP * trained / t) : 0;
    };
    /** Seconds of kNN monitor and checkpoints still to come after epoch `epoch` closes. */
    const pendingAfter = (epoch: number) => {
      let s = 0;
      for (let e = epoch + 1; e <= lastEpoch; e++) {
        if (knnDue(e) && (e + 1) * spe <= limit) {
          s += Number.isNaN(cost.knn) ? knnGuess() : cost.knn;
        }
        if (checkpointer.dueAfterEpoch(e) || e === lastEpoch) {
          s += Number.isNaN(cost.checkpoint) ? 0 : cost.checkpoint;
        }
      }
      return s;
    };
    let log: MetricsLog | undefined;
    let flusher: MetricsFlusher | undefined;
    try {
      if (writer) {
        await writeFileAtomic(
          join(outDir, "config.json"),
          JSON.stringify({ config, run: opts.runInfo ?? {} }, null, 2) + "\n",
        );
        log = MetricsLog.open(metricsPath);
      }
      const sink = log ?? NO_METRICS;
      flusher = new MetricsFlusher({
        sink,
        progress: opts.progress,
        batchSize: config.batchSize,
        epochs: config.epochs,
        totalSteps: limit,
        startStep,
        queueSize: config.ressl.queueSize,
        elapsed: trainSeconds,
        lastCheckpoint: () => checkpointer.last?.path,
      });
      const step = createTrainStep(trainStepConfig(config, spe), opts.parallel);
      const [c, s] = [config.model.inChannels, config.image.size];
      // Every rank stops at the same step: a request on any rank is shared after each step.
      let stopAgreed = false;
      const stopRequested = () => stopAgreed;
      const progress = opts.progress;
      progress?.activity(
        `step ${state.step}/${limit}: starting (the first steps build the kernels)`,
      );
      for (let epoch = Math.floor(state.step / spe); epoch < config.epochs; epoch++) {
        if (state.step >= limit) break;
        flusher.beginEpoch();
        progress?.setPendingSeconds(pendingAfter(epoch - 1));
        for await (const b of loader.epoch(epoch, { startBatch: state.step % spe })) {
          const n = b.indices.length;
          const current: TrainState = state;
          const next = ctx.scope(() => {
            const batch = viewsOn === "device" ? deviceBatchViews(ctx, b, views, opts.dataset) : {
              weak: ctx.fromArray(b.weak, [n, c, s, s]),
              strong: ctx.fromArray(b.strong, [n, c, views.strong.size, views.strong.size]),
              extraStrong: b.extra.map((v, i) =>
                ctx.fromArray(v, [n, c, views.extra[i].size, views.extra[i].size])
              ),
            };
            const key = foldIn(root, nameId("step"), current.step);
            return step(current, batch, key);
          });
          disposeTrainState(state);
          state = next.state;
          flusher.push(state.step, next.metrics.loss, next.metrics.lr);
          stopAgreed = agreeStop(comm, opts.stop?.requested === true);
          const stopping = stopRequested() || state.step >= limit;
          if (state.step % config.logEvery === 0 || stopping) {
            progress?.setPendingSeconds(pendingAfter(epoch - 1));
            flusher.flush(epoch);
          }
          if (stopping) break;
        }
        flusher.flush(epoch);
        if (state.step % spe === 0 && state.step > 0) {
          const record: MetricsRecord = {
            kind: "epoch",
            step: state.step,
            epoch,
            loss: flusher.epochLoss(),
            seconds: elapsed(),
          };
          if (knnDue(epoch)) {
            const label = `epoch ${epoch + 1}: kNN monitor`;
            const { value: acc, seconds } = await paused(() =>
              knnMonitor(
                ctx,
                config,
                opts.knnData,
                state,
                (p) =>
                  p.phase === "encoding"
                    ? progress?.activity(`${label}, encoding`, p.done, p.total, "images")
                    : progress?.activity(`${label}: classifying ${p.total} test images`),
              )
            );
            cost.knn = seconds;
            record.knnTop1 = acc.top1;
            record.knnTop5 = acc.top5;
            record.knnSeconds = seconds;
            progress?.message(
              `epoch ${epoch + 1}: kNN top-1 ${acc.top1.toFixed(2)}% top-5 ${
                acc.top5.toFixed(2)
              }% (${opts.knnData!.test.length} test images, ${seconds.toFixed(1)} s)`,
            );
          }
          sink.write(record);
          if (writer && checkpointer.dueAfterEpoch(epoch)) {
            progress?.activity(`epoch ${epoch + 1}: writing the checkpoint`);
            cost.checkpoint = (await paused(() => checkpointer.save(state, epoch))).seconds;
          }
          progress?.setPendingSeconds(pendingAfter(epoch));
        }
        if (stopRequested() || state.step >= limit) break;
      }
      const stoppedBy: TrainRunResult["stoppedBy"] = stopRequested()
        ? "signal"
        : state.step < totalSteps
        ? "max-steps"
        : "end";
      if (writer && !checkpointer.holds(state.step)) {
        progress?.activity(`step ${state.step}: writing the checkpoint`);
        await paused(() => checkpointer.save(state, Math.floor(state.step / spe)));
      }
      const wallSeconds = elapsed();
      const done = state.step - startStep;
      const train = trainSeconds();
      return {
        steps: startStep + done,
        stepsThisRun: done,
        finalLoss: flusher.lastLoss,
        imagesPerSecond: done * config.batchSize / Math.max(train, 1e-9),
        wallSeconds,
        trainSeconds: train,
        stoppedBy,
        lastCheckpoint: checkpointer.last?.path,
      };
    } finally {
      flusher?.dispose();
      log?.close();
      opts.progress?.close();
      disposeTrainState(state);
    }
  } finally {
    await loader[Symbol.asyncDispose]();
  }
}
