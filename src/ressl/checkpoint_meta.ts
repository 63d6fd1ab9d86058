/**
 * The metadata of a training checkpoint checked as strictly as its tensors: integer fields of the
 * right type and range, a step inside the run, an epoch that holds the step, the configuration's
 * seed, a queue pointer the queue accepts, and a complete, valid stored configuration. Older
 * checkpoints keep loading: configuration keys added after checkpoint version 1 are listed in
 * {@link CONFIG_KEYS_ADDED_AFTER_V1} with what their absence means.
 *
 * @module
 */

import { mergeConfig, presetConfig, type TrainConfig, validateConfig } from "./config.ts";

/** Metadata stored in every training checkpoint. */
export interface CheckpointMeta {
  /** Steps done when the checkpoint was taken (the next step's index). */
  step: number;
  /** The epoch (from 0) the checkpoint closes, or that `step` falls in for a mid-epoch stop. */
  epoch: number;
  /** The run's seed (also in `config`). */
  seed: number;
  /** The queue's write position. */
  queuePtr: number;
  /** Name of the pretraining dataset. */
  dataset: string;
  /** Number of pretraining images (a resume must see the same). */
  images: number;
  /** The full training configuration. */
  config: TrainConfig;
}

/**
 * Configuration keys added after checkpoint version 1, which older checkpoints lack, with what
 * their absence means (the value reproducing the older behaviour; used to validate). A checkpoint
 * lacking any other key is refused. Adding a key to `TrainConfig` means adding it here (the v1
 * compatibility test fails until then); the configuration is returned as stored, without it.
 */
export const CONFIG_KEYS_ADDED_AFTER_V1: Readonly<Record<string, unknown>> = {
  "optim.minWarmupSteps": 0,
};

/** Dotted paths of the leaves (non-object values) of a JSON object. */
function leafPaths(v: unknown, prefix = ""): string[] {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return [prefix];
  return Object.entries(v).flatMap(([k, x]) => leafPaths(x, prefix ? `${prefix}.${k}` : k));
}

function has(obj: unknown, path: string): boolean {
  let o = obj;
  for (const k of path.split(".")) {
    if (o === null || typeof o !== "object" || !Object.hasOwn(o, k)) return false;
    o = (o as Record<string, unknown>)[k];
  }
  return true;
}

/** A nested object setting `path` to `value` (`a.b`, 1 -> `{ a: { b: 1 } }`). */
function nested(path: string, value: unknown): Record<string, unknown> {
  return path.split(".").reduceRight<unknown>((v, k) => ({ [k]: v }), value) as Record<
    string,
    unknown
  >;
}

/**
 * The stored configuration checked as strictly as a command line: every key of a configuration
 * present (see {@link CONFIG_KEYS_ADDED_AFTER_V1}), no unknown key, the right types, valid ranges.
 * Returns the problem, or the configuration.
 */
function checkStoredConfig(raw: unknown): TrainConfig | string {
  if (raw === undefined) return "its metadata has no training configuration";
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return "its training configuration is not an object";
  }
  let template = presetConfig("fashion-mnist"); // every preset has the same keys
  const missing = leafPaths(template).filter((p) =>
    !has(raw, p) && !Object.hasOwn(CONFIG_KEYS_ADDED_AFTER_V1, p)
  );
  if (missing.length > 0) {
    return `its training configuration has no '${missing[0]}'` +
      (missing.length > 1 ? ` (nor ${missing.length - 1} other keys)` : "");
  }
  try {
    for (const [path, value] of Object.entries(CONFIG_KEYS_ADDED_AFTER_V1)) {
      if (has(template, path) && !has(raw, path)) {
        template = mergeConfig(template, nested(path, value), "a default");
      }
    }
    validateConfig(mergeConfig(template, raw, "its training configuration"));
    return structuredClone(raw) as TrainConfig;
  } catch (e) {
    return (e as Error).message.replace(/^Cannot apply /, "cannot apply ");
  }
}

/**
 * Checks parsed metadata as strictly as the tensors: the configuration (see
 * {@link checkStoredConfig}), integer fields of the right type and range, a step inside the
 * run, an epoch that fits the step, the seed of the configuration, a queue pointer the queue
 * accepts. Throws `Cannot load checkpoint '<path>': ...` naming the field.
 */
export function checkMeta(path: string, meta: unknown): CheckpointMeta {
  const fail = (why: string) => new Error(`Cannot load checkpoint '${path}': ${why}`);
  if (typeof meta !== "object" || meta === null || Array.isArray(meta)) {
    throw fail("its metadata is not an object");
  }
  const m = meta as Record<string, unknown>;
  const config = checkStoredConfig(m.config);
  if (typeof config === "string") throw fail(config);
  const int = (key: string, min: number): number => {
    const v = m[key];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
      throw fail(
        `its metadata field '${key}' is ${
          JSON.stringify(v) ?? "missing"
        }, expected an integer >= ${min}`,
      );
    }
    return v;
  };
  const [step, epoch, queuePtr, images] = [
    int("step", 0),
    int("epoch", 0),
    int("queuePtr", 0),
    int("images", 1),
  ];
  const seed = m.seed;
  if (seed !== config.seed) {
    throw fail(
      `its metadata field 'seed' is ${
        JSON.stringify(seed) ?? "missing"
      }, its configuration's seed is ${config.seed}`,
    );
  }
  if (typeof m.dataset !== "string" || m.dataset === "") {
    throw fail("its metadata has no dataset name");
  }
  const perEpoch = Math.floor(images / config.batchSize);
  if (perEpoch === 0) {
    throw fail(`its ${images} images make no batch of ${config.batchSize}`);
  }
  const total = config.epochs * perEpoch;
  if (step > total) {
    throw fail(
      `its step ${step} is beyond the run's last step ${total} (${config.epochs} epochs of ${perEpoch} steps)`,
    );
  }
  const within = Math.floor(step / perEpoch);
  if (epoch !== within && !(step > 0 && step % perEpoch === 0 && epoch === within - 1)) {
    throw fail(`its epoch ${epoch} does not hold step ${step} (${perEpoch} steps an epoch)`);
  }
  const queueSize = config.ressl.queueSize;
  if (queuePtr >= queueSize || queuePtr % config.batchSize !== 0) {
    throw fail(
      `its queue pointer ${queuePtr} is not a multiple of the batch ${config.batchSize} below the queue size ${queueSize}`,
    );
  }
  return { step, epoch, seed: config.seed, queuePtr, dataset: m.dataset, images, config };
}
