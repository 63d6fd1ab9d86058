/**
 * What `train` settles about its data before a run: for one's own image folder, the image size
 * (default: the images' most common size), the Normalize mean/std (estimated from a sample unless
 * given) and whether the kNN monitor can run (class folders); and the run header that says what
 * is trained on what.
 *
 * @module
 */

import type { Backend } from "../src/backend/backend.ts";
import { type ImageDataset, scanImageFolder } from "../src/data/datasets/mod.ts";
import { type TrainConfig, validateConfig } from "../src/ressl/config.ts";
import type { KnnData } from "../src/run/knn_monitor.ts";
import { UsageError } from "./cli_flags.ts";
import type { FolderSource } from "./data_source.ts";
import { defaultImageSize, estimateNormalization } from "./folder_data.ts";

/** `n thing` or `n things`. */
export function plural(n: number, thing: string): string {
  return `${n} ${thing}${n === 1 ? "" : "s"}`;
}

/**
 * The configuration of a run on an image folder: image size, mean/std and kNN monitor settled
 * (see the module doc), validated; with the notes that say what was chosen. `explicit` holds the
 * keys set by `--config` or flags, `given` the flags on the command line.
 */
export function prepareFolderConfig(
  source: FolderSource,
  base: TrainConfig,
  explicit: Set<string>,
  given: readonly string[],
): { config: TrainConfig; channels: 1 | 3; notes: string[] } {
  const config = structuredClone(base);
  const notes: string[] = [];
  const channels = config.model.inChannels;
  if (channels !== 1 && channels !== 3) {
    throw new UsageError(
      `Cannot train on the image folder '${source.root}': images have 1 or 3 channels, the config says model.inChannels ${channels}`,
    );
  }
  const scan = scanImageFolder(source.trainDir);
  if (!explicit.has("image.size")) {
    const d = defaultImageSize(scan.files);
    config.image.size = d.size;
    notes.push(d.note);
  }
  const hasMean = explicit.has("image.mean"), hasStd = explicit.has("image.std");
  if (hasMean !== hasStd) {
    throw new UsageError(
      `Invalid flags: give both --mean and --std (image.mean and image.std), or neither to estimate them from the images`,
    );
  }
  if (!hasMean) {
    const s = estimateNormalization(scan.files, {
      size: config.image.size,
      channels,
      seed: config.seed,
    });
    config.image.mean = s.mean;
    config.image.std = s.std;
    notes.push(
      `mean ${JSON.stringify(s.mean)} std ${JSON.stringify(s.std)}: estimated from ${
        plural(s.images, "image")
      } (seed ${config.seed}; written to config.json; --mean/--std set them)`,
    );
  }
  if (config.knnEvery > 0 && !scan.labels) {
    if (given.includes("knn-every") || explicit.has("knnEvery")) {
      throw new UsageError(
        `Invalid flag --knn-every: the kNN monitor needs labelled images, and '${source.trainDir}' has no class subfolders`,
      );
    }
    config.knnEvery = 0;
    notes.push("kNN monitor off: the folder has no class subfolders (no labels)");
  }
  return { config: validateConfig(config), channels, notes };
}

/** What the run header describes. */
export interface RunHeader {
  preset: string;
  config: TrainConfig;
  dataset: ImageDataset;
  /** Where the images come from (a folder). */
  where: string;
  backend: Backend;
  stepsPerEpoch: number;
  warmupSteps: number;
  maxSteps?: number;
  /** The batch-scaled learning rate. */
  lr: number;
  out: string;
  knn?: KnnData;
}

/** The two or three lines printed before a run starts. */
export function runHeader(h: RunHeader): string[] {
  const c = h.config;
  const versions = Object.entries(h.backend.versions)
    .filter(([, v]) => v !== "" && v !== "N/A" && v !== "unknown")
    .map(([k, v]) => `${k} ${v}`);
  const total = c.epochs * h.stepsPerEpoch;
  const stop = h.maxSteps !== undefined && h.maxSteps < total ? `, stopping at ${h.maxSteps}` : "";
  const lines = [
    `ReSSL ${h.preset}: ResNet-${c.model.depth} width ${c.model.width}, ${c.image.size}x${c.image.size}x${c.model.inChannels}, ` +
    `${
      plural(h.dataset.length, "image")
    } (${h.dataset.name} in ${h.where}), batch ${c.batchSize}, ` +
    `${plural(c.epochs, "epoch")} = ${plural(total, "step")}${stop} (warm-up ${h.warmupSteps}), ` +
    `backend ${h.backend.name}${versions.length ? ` (${versions.join(", ")})` : ""}`,
    `lr ${c.optim.lr} at batch 256` +
    (c.optim.scaleLr && c.batchSize !== 256
      ? ` scaled linearly to ${Number(h.lr.toPrecision(6))} for batch ${c.batchSize}`
      : "") +
    (h.knn
      ? `; kNN monitor every ${
        plural(c.knnEvery, "epoch")
      } (${h.knn.train.length} voting, ${h.knn.test.length} test images)`
      : "") +
    `; run folder ${h.out}`,
  ];
  return lines;
}
