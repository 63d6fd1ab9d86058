/**
 * The training run: epochs of {@link createTrainStep} steps over a {@link Loader}, with metrics
 * (`metrics.jsonl`), progress, the online kNN monitor, checkpoints every epoch (atomic, last N
 * kept), exact resume (mid-epoch too), a stop request (SIGINT/SIGTERM) that checkpoints first, and a
 * stop with a clear error on a non-finite loss (no checkpoint is written after it).
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
import { augmentationPreset } from "../data/pipelines.ts";
import type { ViewPipeline } from "../data/augment.ts";
import { foldIn, nameId, rngKey } from "../random/philox.ts";
import { knnAccuracy, knnClassify } from "../eval/knn.ts";
import { extractFeatures } from "../eval/features.ts";
import {
  checkpointName,
  listCheckpoints,
  loadCheckpoint,
  NonFiniteTensorError,
  pruneCheckpoints,
  readCheckpointMeta,
  saveCheckpoint,
} from "../io/checkpoint.ts";
import { MetricsLog, type MetricsRecord, truncateMetrics } from "../io/metrics.ts";
import { CollapseWatch } from "./collapse.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import type { Progress } from "../io/progress.ts";
import type { Context, Tensor } from "../tensor/mod.ts";
import type { TrainConfig } from "../ressl/config.ts";
import {
  type CheckpointMeta,
  initTrainState,
  stateFromTrees,
  stateTrees,
  trainStepConfig,
} from "../ressl/state.ts";
import { createTrainStep, disposeTrainState, type TrainState } from "../ressl/step.ts";

/** Options of {@link runTraining}. */
export interface TrainRunOptions {
  ctx: Context;
  config: TrainConfig;
  /** The images to pretrain on (labels unused). */
  dataset: ImageDataset;
  /** Labelled train and test sets for the kNN monitor (needed when `config.knnEvery > 0`). */
  knnData?: { train: ImageDataset; test: ImageDataset };
  /** The run folder (config.json, metrics.jsonl, checkpoints). */
  outDir: string;
  /** Resume from this checkpoint; "" = the newest checkpoint of `outDir`. */
  resume?: string;
  /** Stop after this many steps in total (a checkpoint is written there). */
  maxSteps?: number;
  /** Augmentation workers (default 0). */
  workers?: number;
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
}

/** What a run did. */
export interface TrainRunResult {
  /** Steps done in total (including those before a resume). */
  steps: number;
  /** Steps done by this call. */
  stepsThisRun: number;
  /** The last logged loss. */
  finalLoss: number;
  imagesPerSecond: number;
  wallSeconds: number;
  stoppedBy: "end" | "max-steps" | "signal";
  lastCheckpoint?: string;
}

/** A loss that is NaN or infinite. */
export class NonFiniteLossError extends Error {}

/**
 * The views of a configuration: the preset's ops with the config's size, normalisation and crop
 * scale; with `multiCrop`, the strong view is the first crop and `extra` holds the others.
 */
export function trainViews(
  config: TrainConfig,
): { weak: ViewPipeline; strong: ViewPipeline; extra: ViewPipeline[] } {
  const name = config.dataset === "tinyimagenet" ? "tiny-imagenet" : config.dataset;
  const preset = augmentationPreset(name === "imagenet-multicrop" ? "imagenet" : name);
  const adapt = (v: ViewPipeline, size: number, scale: [number, number]): ViewPipeline => ({
    size,
    mean: [...config.image.mean],
    std: [...config.image.std],
    ops: v.ops.map((op) => op.op === "randomResizedCrop" ? { ...op, scale } : op),
  });
  const base: [number, number] = [config.augment.minScale, 1];
  const weak = adapt(preset.weak, config.image.size, base);
  const mc = config.multiCrop;
  if (!mc) return { weak, strong: adapt(preset.strong, config.image.size, base), extra: [] };
  const crops = mc.sizes.map((size, i) =>
    adapt(preset.strong, size, [mc.minScales[i], mc.maxScales[i]])
  );
  return { weak, strong: crops[0], extra: crops.slice(1) };
}

function configDiff(a: unknown, b: unknown, path = ""): string | undefined {
  if (typeof a !== "object" || a === null || typeof b !== "object" || b === null) {
    return JSON.stringify(a) === JSON.stringify(b) ? undefined : path || "<root>";
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const d = configDiff(
      (a as Record<string, unknown>)[k],
      (b as Record<string, unknown>)[k],
      path ? `${path}.${k}` : k,
    );
    if (d) return d;
  }
  return undefined;
}

async function resumeState(
  opts: TrainRunOptions,
  path: string,
): Promise<{ state: TrainState; meta: CheckpointMeta }> {
  const meta = await readCheckpointMeta<CheckpointMeta>(path);
  const diff = configDiff(meta.config, opts.config);
  if (diff) {
    throw new Error(
      `Cannot resume from '${path}': its configuration differs at '${diff}' (checkpoint: ${
        JSON.stringify(lookup(meta.config, diff))
      }, now: ${JSON.stringify(lookup(opts.config, diff))}); resume with the same flags`,
    );
  }
  if (meta.images !== opts.dataset.length) {
    throw new Error(
      `Cannot resume from '${path}': it was trained on ${meta.images} images, the dataset now has ${opts.dataset.length}`,
    );
  }
  const fresh = initTrainState(opts.ctx, opts.config);
  try {
    const { trees } = await loadCheckpoint<CheckpointMeta, ReturnType<typeof stateTrees>>(
      path,
      opts.ctx,
      stateTrees(fresh),
    );
    return { state: stateFromTrees(trees, meta.queuePtr, meta.step), meta };
  } finally {
    disposeTrainState(fresh);
  }
}

function lookup(obj: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>(
    (o, k) => (o && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined),
    obj,
  );
}

function knnMonitor(opts: TrainRunOptions, state: TrainState): { top1: number; top5: number } {
  const { ctx, config, knnData } = opts;
  if (!knnData) throw new Error("Cannot run the kNN monitor: no labelled train/test data given");
  const view = { size: config.image.size, ops: [], mean: config.image.mean, std: config.image.std };
  return ctx.scope(() => {
    const common = {
      params: state.student.params.backbone,
      buffers: state.student.buffers,
      view,
      maxPool: config.model.maxPool,
    };
    const train = extractFeatures(ctx, { ...common, dataset: knnData.train });
    const test = extractFeatures(ctx, { ...common, dataset: knnData.test });
    const labels = knnData.train.labels, testLabels = knnData.test.labels;
    if (!labels || !testLabels) throw new Error("Cannot run the kNN monitor: data has no labels");
    const classes = Math.max(...labels) + 1;
    const res = knnClassify({
      trainFeatures: train,
      trainLabels: labels,
      testFeatures: test,
      numClasses: classes,
      k: config.knn.k,
      temperature: config.knn.temperature,
    });
    return knnAccuracy(res, testLabels);
  });
}

/** Runs (or resumes) a training run; see the module doc. */
export async function runTraining(opts: TrainRunOptions): Promise<TrainRunResult> {
  const { ctx, config, outDir } = opts;
  await Deno.mkdir(outDir, { recursive: true });
  const metricsPath = join(outDir, "metrics.jsonl");
  const root = rngKey(config.seed);
  const views = trainViews(config);
  const loader = new Loader({
    dataset: opts.dataset,
    weak: views.weak,
    strong: views.strong,
    extra: views.extra,
    key: root,
    batchSize: config.batchSize,
    workers: opts.workers ?? 0,
  });
  try {
    const spe = loader.batchesPerEpoch();
    if (spe === 0) {
      throw new RangeError(
        `Cannot train on '${opts.dataset.name}': ${opts.dataset.length} images make no full batch of ${config.batchSize}`,
      );
    }
    const totalSteps = config.epochs * spe;
    const limit = Math.min(totalSteps, opts.maxSteps ?? Infinity);
    let state: TrainState;
    if (opts.resume !== undefined) {
      const path = opts.resume !== "" ? opts.resume : listCheckpoints(outDir).at(-1);
      if (!path) {
        throw new Error(`Cannot resume: '${outDir}' holds no checkpoint (run without --resume)`);
      }
      state = (await resumeState(opts, path)).state;
      truncateMetrics(metricsPath, state.step);
      opts.progress?.message(`resumed from ${path} at step ${state.step}`);
    } else {
      if (listCheckpoints(outDir).length > 0) {
        throw new Error(
          `Cannot start a new run in '${outDir}': it already holds checkpoints (use --resume to continue it, or another --out)`,
        );
      }
      await Deno.remove(metricsPath).catch(() => {});
      state = initTrainState(ctx, config);
      if (opts.initialize) state = await opts.initialize(state);
    }
    await writeFileAtomic(
      join(outDir, "config.json"),
      JSON.stringify({ config, run: opts.runInfo ?? {} }, null, 2) + "\n",
    );
    const step = createTrainStep(trainStepConfig(config, spe));
    const log = MetricsLog.open(metricsPath);
    const [c, s] = [config.model.inChannels, config.image.size];
    const startStep = state.step;
    const t0 = performance.now();
    let pending: { step: number; loss: Tensor; lr: number }[] = [];
    let lastLoss = NaN, epochLossSum = 0, epochLossCount = 0;
    let lastCheckpoint: string | undefined, lastCheckpointStep = -1;
    let stoppedBy: TrainRunResult["stoppedBy"] = "end";

    const collapse = new CollapseWatch({ queueSize: config.ressl.queueSize });
    const flush = (epoch: number) => {
      if (pending.length === 0) return;
      const losses = pending.map((p) => p.loss.item());
      for (const p of pending) p.loss.dispose();
      const bad = losses.findIndex((l) => !Number.isFinite(l));
      if (bad >= 0) {
        throw new NonFiniteLossError(
          `Training stopped: the loss became ${losses[bad]} at step ${pending[bad].step}` +
            (lastCheckpoint ? `; the last good checkpoint is '${lastCheckpoint}'` : "") +
            " (try a lower --lr)",
        );
      }
      const last = pending[pending.length - 1];
      const mean = losses.reduce((a, b) => a + b, 0) / losses.length;
      const warning = collapse.observe(last.step, losses[losses.length - 1]);
      if (warning) {
        opts.progress?.message(warning);
        log.write({ kind: "event", step: last.step, epoch, event: "collapse", message: warning });
      }
      epochLossSum += mean * losses.length;
      epochLossCount += losses.length;
      lastLoss = losses[losses.length - 1];
      const seconds = (performance.now() - t0) / 1000;
      const ips = (state.step - startStep) * config.batchSize / Math.max(seconds, 1e-9);
      log.write({
        kind: "step",
        step: last.step,
        epoch,
        loss: lastLoss,
        lossMean: mean,
        lr: last.lr,
        imagesPerSecond: ips,
        seconds,
      });
      opts.progress?.update({
        epoch,
        epochs: config.epochs,
        step: last.step,
        totalSteps: limit,
        loss: lastLoss,
        lr: last.lr,
        imagesPerSecond: ips,
      }, config.batchSize);
      pending = [];
    };

    const checkpoint = async (epoch: number) => {
      const path = join(outDir, checkpointName(state.step));
      const meta: CheckpointMeta = {
        step: state.step,
        epoch,
        seed: config.seed,
        queuePtr: state.queue.ptr,
        dataset: opts.dataset.name,
        images: opts.dataset.length,
        config,
      };
      try {
        await saveCheckpoint(path, { trees: stateTrees(state), meta });
      } catch (e) {
        if (!(e instanceof NonFiniteTensorError)) throw e;
        throw new NonFiniteLossError(
          `Training stopped: '${e.tensor}' became NaN or infinite by step ${state.step}` +
            (lastCheckpoint ? `; the last good checkpoint is '${lastCheckpoint}'` : "") +
            " (try a lower --lr)",
        );
      }
      pruneCheckpoints(outDir, config.checkpoint.keep);
      lastCheckpoint = path;
      lastCheckpointStep = state.step;
    };

    try {
      for (let epoch = Math.floor(state.step / spe); epoch < config.epochs; epoch++) {
        if (state.step >= limit) break;
        epochLossSum = 0;
        epochLossCount = 0;
        for await (const b of loader.epoch(epoch, { startBatch: state.step % spe })) {
          const n = b.indices.length;
          const next = ctx.scope(() => {
            const weak = ctx.fromArray(b.weak, [n, c, s, s]);
            const strong = ctx.fromArray(b.strong, [n, c, views.strong.size, views.strong.size]);
            const extraStrong = b.extra.map((v, i) =>
              ctx.fromArray(v, [n, c, views.extra[i].size, views.extra[i].size])
            );
            const key = foldIn(root, nameId("step"), state.step);
            return step(state, { weak, strong, extraStrong }, key);
          });
          disposeTrainState(state);
          state = next.state;
          pending.push({ step: state.step, loss: next.metrics.loss, lr: next.metrics.lr });
          const stopping = opts.stop?.requested || state.step >= limit;
          if (state.step % config.logEvery === 0 || stopping) flush(epoch);
          if (stopping) break;
        }
        flush(epoch);
        const epochDone = state.step % spe === 0 && state.step > 0;
        if (epochDone) {
          const record: MetricsRecord = {
            kind: "epoch",
            step: state.step,
            epoch,
            loss: epochLossCount ? epochLossSum / epochLossCount : lastLoss,
            seconds: (performance.now() - t0) / 1000,
          };
          if (config.knnEvery > 0 && (epoch + 1) % config.knnEvery === 0) {
            const acc = knnMonitor(opts, state);
            record.knnTop1 = acc.top1;
            record.knnTop5 = acc.top5;
            opts.progress?.message(
              `epoch ${epoch + 1}: kNN top-1 ${acc.top1.toFixed(2)}% top-5 ${acc.top5.toFixed(2)}%`,
            );
          }
          log.write(record);
          if ((epoch + 1) % config.checkpoint.every === 0 || epoch + 1 === config.epochs) {
            await checkpoint(epoch);
          }
        }
        if (opts.stop?.requested || state.step >= limit) break;
      }
      stoppedBy = opts.stop?.requested ? "signal" : state.step < totalSteps ? "max-steps" : "end";
      if (lastCheckpointStep !== state.step) await checkpoint(Math.floor(state.step / spe));
    } finally {
      for (const p of pending) p.loss.dispose();
      log.close();
      opts.progress?.close();
    }
    const wallSeconds = (performance.now() - t0) / 1000;
    const done = state.step - startStep;
    disposeTrainState(state);
    return {
      steps: startStep + done,
      stepsThisRun: done,
      finalLoss: lastLoss,
      imagesPerSecond: done * config.batchSize / Math.max(wallSeconds, 1e-9),
      wallSeconds,
      stoppedBy,
      lastCheckpoint,
    };
  } finally {
    await loader[Symbol.asyncDispose]();
  }
}
