/**
 * Test fixture: a training checkpoint made without training (initTrainState + saveCheckpoint) of a
 * tiny network, with the BN affine parameters and running statistics of the student and teacher
 * set to random values, so that evaluation and export compare non-trivial networks.
 */
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { normalArray, rngKey, uniformArray } from "../../src/random/philox.ts";
import { saveCheckpoint } from "../../src/io/checkpoint.ts";
import { presetConfig, type TrainConfig } from "../../src/ressl/config.ts";
import { initTrainState } from "../../src/ressl/state.ts";
import { type CheckpointMeta, stateTrees } from "../../src/ressl/checkpoint.ts";
import { disposeTrainState } from "../../src/ressl/step.ts";
import { createContext, mapTree, type Tensor, type TensorTree } from "../../src/tensor/mod.ts";

/** Images the fixture's run trained on, in batches of 32: 7 steps an epoch. */
const IMAGES = 224;
const STEPS_PER_EPOCH = IMAGES / 32;

/** What the fixture may change. */
export interface FixtureOptions {
  preset?: string;
  width?: number;
  depth?: 18 | 34 | 50;
  stem?: "cifar" | "imagenet";
  maxPool?: boolean;
  step?: number;
  seed?: number;
}

/** The configuration of the fixture's tiny network. */
export function fixtureConfig(opts: FixtureOptions = {}): TrainConfig {
  const config = presetConfig(opts.preset ?? "fashion-mnist");
  config.model.width = opts.width ?? 4;
  if (opts.depth) config.model.depth = opts.depth;
  if (opts.stem) config.model.stem = opts.stem;
  if (opts.maxPool !== undefined) config.model.maxPool = opts.maxPool;
  config.head = { hidden: 16, out: 8 };
  config.ressl.queueSize = 64;
  config.batchSize = 32;
  config.seed = opts.seed ?? 3;
  return config;
}

/** Random BN weights/biases (|w| in [0.5, 1.5]) and running statistics (var in [0.5, 2]). */
function perturb(tree: TensorTree, seed: number): TensorTree {
  let k = 0;
  return mapTree(tree, (t: Tensor, path: string) => {
    const key = rngKey(seed * 1000 + k++);
    let values: Float32Array | undefined;
    if (path.endsWith("running_var")) values = uniformArray(key, t.size, 0.5, 2);
    else if (path.endsWith("running_mean")) values = normalArray(key, t.size, 0, 0.2);
    else if (/(^|\.)(bn\d|downsample\.1)\.weight$/.test(path)) {
      values = uniformArray(key, t.size, 0.5, 1.5);
    } else if (/(^|\.)(bn\d|downsample\.1)\.bias$/.test(path)) {
      values = normalArray(key, t.size, 0, 0.2);
    }
    if (!values) return t;
    t.dispose();
    return t.ctx.fromArray(values, t.shape);
  });
}

/** Writes a checkpoint of the fixture's network to `path`; returns its configuration. */
export async function writeFixtureCheckpoint(
  path: string,
  opts: FixtureOptions = {},
): Promise<TrainConfig> {
  const config = fixtureConfig(opts);
  const ctx = createContext(createReferenceBackend());
  const state = initTrainState(ctx, config);
  const trees = stateTrees(state);
  const out: Record<string, TensorTree> = {};
  let i = 0;
  for (const [name, tree] of Object.entries(trees)) {
    out[name] = name === "queue" || name === "momentum" ? tree : perturb(tree, ++i);
  }
  const step = opts.step ?? 7;
  const meta: CheckpointMeta = {
    step,
    epoch: step > 0 && step % STEPS_PER_EPOCH === 0
      ? step / STEPS_PER_EPOCH - 1
      : Math.floor(step / STEPS_PER_EPOCH),
    seed: config.seed,
    queuePtr: 0,
    dataset: "fixture",
    images: IMAGES,
    config,
  };
  await saveCheckpoint(path, { trees: out, meta });
  for (const [name, tree] of Object.entries(out)) {
    if (name !== "queue" && name !== "momentum") mapTree(tree, (t) => (t.dispose(), t));
  }
  disposeTrainState(state);
  return config;
}
