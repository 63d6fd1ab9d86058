/**
 * The schema of a training checkpoint: the one place that says which tensors a checkpoint of a
 * run holds, under which names, with which metadata, how a {@link TrainState} maps to them and
 * back, and how a backbone is taken out of one. Everything else (the run, the evaluation and
 * export commands, plots, benchmarks) calls these functions instead of spelling names.
 *
 * A checkpoint is the container of `src/io/checkpoint.ts` (one safetensors file, tensor
 * `<tree>/<path>`) holding six trees, see {@link CHECKPOINT_TREES}:
 *
 * | tree              | holds                                                    |
 * | ----------------- | -------------------------------------------------------- |
 * | `student`         | student parameters: `backbone.<torchvision name>`, `head.0.weight`, ... |
 * | `student_buffers` | student BN running statistics (torchvision names)        |
 * | `teacher`         | teacher parameters, as `student`                         |
 * | `teacher_buffers` | teacher BN running statistics                            |
 * | `queue`           | the queue [K, D] (one tensor, named `queue/`)            |
 * | `momentum`        | optimiser momentum, shaped as `student`                  |
 *
 * and the metadata {@link CheckpointMeta} (step, epoch, seed, queue pointer, dataset name and size,
 * the full training configuration). These names are those of every checkpoint written so far
 * (container version 1); changing one breaks loading older checkpoints.
 *
 * Loading builds every tree from the network's parameter specs (the configuration stored in the
 * checkpoint), so nothing is initialised only to be overwritten, and checks each name, shape and
 * that every value is finite; the metadata is checked as strictly (`checkpoint_meta.ts`).
 *
 * @module
 */

import {
  type CheckpointFile,
  readCheckpoint,
  readCheckpointMeta,
  saveCheckpoint,
} from "../io/checkpoint.ts";
import type { SafetensorsMap } from "../io/safetensors.ts";
import { TensorEntryError, tensorFromEntry } from "../io/tree_io.ts";
import {
  type HeadParams,
  headSpec,
  materialize,
  type Materialized,
  paramSpec,
  type ResNetBuffers,
  resnetFeatureDim,
  type ResNetOptions,
  type ResNetParams,
  resnetSpec,
  type SpecTree,
} from "../nn/mod.ts";
import type { Context, Tensor, TensorTree } from "../tensor/mod.ts";
import type { TrainConfig } from "./config.ts";
import { checkMeta, type CheckpointMeta } from "./checkpoint_meta.ts";
import { backboneOptions } from "./state.ts";
import type { NetParams, TrainState } from "./step.ts";

export { type CheckpointMeta, CONFIG_KEYS_ADDED_AFTER_V1 } from "./checkpoint_meta.ts";

/** The tree names of a checkpoint (tensor `<tree>/<path in the tree>`). */
export const CHECKPOINT_TREES = {
  studentParams: "student",
  studentBuffers: "student_buffers",
  teacherParams: "teacher",
  teacherBuffers: "teacher_buffers",
  queue: "queue",
  momentum: "momentum",
} as const;

/** Which network of a checkpoint. */
export type NetworkName = "student" | "teacher";

/** Where one network's tensors sit in a checkpoint: the name prefix of each part. */
export interface NetworkPrefixes {
  /** Backbone parameters (`student/backbone.`), followed by torchvision names. */
  backbone: string;
  /** Projection head parameters (`student/head.`), followed by `0.weight`, `2.bias`, ... */
  head: string;
  /** BN running statistics (`student_buffers/`), followed by torchvision names. */
  buffers: string;
}

/** The name prefixes of `network`'s backbone, head and BN statistics in a checkpoint. */
export function networkPrefixes(network: NetworkName): NetworkPrefixes {
  const t = CHECKPOINT_TREES;
  const params = network === "student" ? t.studentParams : t.teacherParams;
  const buffers = network === "student" ? t.studentBuffers : t.teacherBuffers;
  const part = (key: keyof NetParams) => `${params}/${key}.`;
  return { backbone: part("backbone"), head: part("head"), buffers: `${buffers}/` };
}

/** The run facts a checkpoint records beside the state (see {@link CheckpointMeta}). */
export interface CheckpointRunInfo {
  /** The epoch the checkpoint closes (or falls in). */
  epoch: number;
  /** The training configuration. */
  config: TrainConfig;
  /** The pretraining dataset: its name and number of images. */
  dataset: { name: string; length: number };
}

/** The metadata of a checkpoint of `state`. */
export function checkpointMeta(state: TrainState, run: CheckpointRunInfo): CheckpointMeta {
  return {
    step: state.step,
    epoch: run.epoch,
    seed: run.config.seed,
    queuePtr: state.queue.ptr,
    dataset: run.dataset.name,
    images: run.dataset.length,
    config: run.config,
  };
}

/** The named trees a checkpoint stores for `state` (they share the state's tensors). */
export function stateTrees(state: TrainState): Record<string, TensorTree> {
  const t = CHECKPOINT_TREES;
  return {
    [t.studentParams]: state.student.params as unknown as TensorTree,
    [t.studentBuffers]: state.student.buffers as unknown as TensorTree,
    [t.teacherParams]: state.teacher.params as unknown as TensorTree,
    [t.teacherBuffers]: state.teacher.buffers as unknown as TensorTree,
    [t.queue]: state.queue.data,
    [t.momentum]: state.optimizer.momentum as unknown as TensorTree,
  };
}

/** The parameter specs of a network's parameters and BN statistics, and of the queue. */
function stateSpecs(config: TrainConfig) {
  const options = backboneOptions(config);
  const net = resnetSpec(options);
  const head = headSpec({
    inDim: resnetFeatureDim(options),
    hiddenDim: config.head.hidden,
    outDim: config.head.out,
  });
  return {
    params: { backbone: net.params, head },
    buffers: net.buffers,
    queue: paramSpec([config.ressl.queueSize, config.head.out], "zeros"),
  };
}

/** A checkpoint file read and checked: its tensors and its validated metadata. */
export interface TrainCheckpoint extends CheckpointFile<CheckpointMeta> {
  /** The file it was read from (named in errors). */
  path: string;
}

/**
 * Reads a training checkpoint and checks its container and metadata (nothing is allocated on a
 * backend). Errors read `Cannot load checkpoint '<path>': ...`.
 */
export async function openTrainCheckpoint(path: string): Promise<TrainCheckpoint> {
  const file = await readCheckpoint<unknown>(path);
  return { path, tensors: file.tensors, meta: checkMeta(path, file.meta) };
}

/**
 * Reads and checks only the metadata of a training checkpoint (its header, not its tensors): what
 * a command needs to know before loading it (the configuration to resume with, the step). Errors
 * read `Cannot load checkpoint '<path>': ...`.
 */
export async function readTrainCheckpointMeta(path: string): Promise<CheckpointMeta> {
  return checkMeta(path, await readCheckpointMeta<unknown>(path));
}

/** Uploads the tensors `prefix + path` of a checkpoint into a new tree shaped like `spec`. */
function treeFromSpec<T extends SpecTree>(
  ctx: Context,
  ckpt: { path: string; tensors: SafetensorsMap },
  spec: T,
  prefix: string,
  used?: Set<string>,
): Materialized<T> {
  try {
    return ctx.scope(() =>
      materialize(spec, (s, path): Tensor => {
        const name = prefix + path;
        used?.add(name);
        return tensorFromEntry(ctx, ckpt.tensors, name, { shape: s.shape, dtype: "f32" });
      })
    );
  } catch (e) {
    if (!(e instanceof TensorEntryError)) throw e;
    throw new Error(`Cannot load checkpoint '${ckpt.path}': tensor '${e.tensor}' ${e.why}`, {
      cause: e,
    });
  }
}

/**
 * The train state stored in `ckpt`, on `ctx`, shaped by the checkpoint's own configuration. Throws
 * `Cannot load checkpoint '<path>': ...` naming a missing, misshapen or unexpected tensor; nothing
 * stays allocated then.
 */
export function loadTrainState(ctx: Context, ckpt: TrainCheckpoint): TrainState {
  const specs = stateSpecs(ckpt.meta.config);
  const used = new Set<string>();
  const load = <T extends SpecTree>(spec: T, tree: string) =>
    treeFromSpec(ctx, ckpt, spec, `${tree}/`, used);
  const t = CHECKPOINT_TREES;
  return ctx.scope((): TrainState => {
    const state: TrainState = {
      student: {
        params: load(specs.params, t.studentParams),
        buffers: load(specs.buffers, t.studentBuffers),
      },
      teacher: {
        params: load(specs.params, t.teacherParams),
        buffers: load(specs.buffers, t.teacherBuffers),
      },
      queue: { data: load(specs.queue, t.queue), ptr: ckpt.meta.queuePtr },
      optimizer: { momentum: load(specs.params, t.momentum) },
      step: ckpt.meta.step,
    };
    const extra = Object.keys(ckpt.tensors).filter((k) => !used.has(k));
    if (extra.length > 0) {
      throw new Error(
        `Cannot load checkpoint '${ckpt.path}': unexpected tensor '${extra[0]}' (${extra.length} ` +
          "in all); it does not match its own configuration",
      );
    }
    return state;
  });
}

/** Writes a checkpoint of `state` to `path` atomically (see `saveCheckpoint` for NaN checks). */
export async function saveTrainCheckpoint(
  path: string,
  state: TrainState,
  run: CheckpointRunInfo,
): Promise<CheckpointMeta> {
  const meta = checkpointMeta(state, run);
  await saveCheckpoint(path, { trees: stateTrees(state), meta });
  return meta;
}

/** Options of {@link loadBackbone} and {@link loadCheckpointBackbone}. */
export interface LoadCheckpointBackboneOptions {
  /** `student` (default) or `teacher`. */
  network?: NetworkName;
  /** Also load the projection head (default false). */
  head?: boolean;
}

/** A backbone (and head) taken out of a checkpoint; the caller disposes the tensors. */
export interface CheckpointBackbone {
  /** Backbone parameters (torchvision names). */
  params: ResNetParams;
  /** Backbone BN running statistics. */
  buffers: ResNetBuffers;
  /** The projection head, when asked for. */
  head?: HeadParams;
  /** Architecture of the backbone (from the checkpoint's configuration). */
  options: Required<ResNetOptions>;
  /** The checkpoint's metadata (step, epoch, dataset, full training configuration). */
  meta: CheckpointMeta;
}

/** The backbone (and optionally the head) of one network of an opened checkpoint, on `ctx`. */
export function loadBackbone(
  ctx: Context,
  ckpt: TrainCheckpoint,
  opts: LoadCheckpointBackboneOptions = {},
): CheckpointBackbone {
  const { config } = ckpt.meta;
  const options = backboneOptions(config);
  const spec = resnetSpec(options);
  const prefixes = networkPrefixes(opts.network ?? "student");
  return ctx.scope(() => {
    const params = treeFromSpec(ctx, ckpt, spec.params, prefixes.backbone) as ResNetParams;
    const buffers = treeFromSpec(ctx, ckpt, spec.buffers, prefixes.buffers) as ResNetBuffers;
    const head = opts.head
      ? treeFromSpec(
        ctx,
        ckpt,
        headSpec({
          inDim: resnetFeatureDim(options),
          hiddenDim: config.head.hidden,
          outDim: config.head.out,
        }),
        prefixes.head,
      ) as HeadParams
      : undefined;
    return { params, buffers, head, options, meta: ckpt.meta };
  });
}

/**
 * Reads a training checkpoint and loads the backbone (and optionally the head) of one network,
 * with the architecture of the checkpoint's own configuration. Errors read
 * `Cannot load checkpoint '<path>': ...`.
 */
export async function loadCheckpointBackbone(
  ctx: Context,
  path: string,
  opts: LoadCheckpointBackboneOptions = {},
): Promise<CheckpointBackbone> {
  return loadBackbone(ctx, await openTrainCheckpoint(path), opts);
}
