/**
 * Backbones out of files: the student or teacher backbone (and head) of a training checkpoint, with
 * the architecture taken from the checkpoint's own configuration; and a backbone from a
 * torchvision-named state dict (the file `deno task export` writes, or one converted from
 * PyTorch), where `num_batches_tracked` counters and `fc.*` entries are ignored.
 *
 * Tensors are uploaded straight from the decoded file into trees built from the network's spec
 * (no initialisation), with every name and shape checked; nothing stays allocated on an error.
 *
 * @module
 */

import { basename } from "node:path";
import {
  type HeadParams,
  headSpec,
  materialize,
  type Materialized,
  type ResNetBuffers,
  resnetFeatureDim,
  type ResNetOptions,
  type ResNetParams,
  resnetSpec,
  type SpecTree,
} from "../nn/mod.ts";
import { readSafetensors, type SafetensorsMap } from "../io/safetensors.ts";
import type { CheckpointMeta } from "../ressl/state.ts";
import type { TrainConfig } from "../ressl/config.ts";
import { type Context, disposeTree, type Tensor, type TensorTree } from "../tensor/mod.ts";

/** Which network of a checkpoint. */
export type NetworkName = "student" | "teacher";

/** A backbone's parameter and BN-statistics trees. */
export interface Backbone {
  params: ResNetParams;
  buffers: ResNetBuffers;
}

/** What {@link loadCheckpointBackbone} returns (the caller disposes the tensors). */
export interface CheckpointBackbone extends Backbone {
  /** The projection head, when asked for. */
  head?: HeadParams;
  /** Architecture of the backbone (from the checkpoint's configuration). */
  options: Required<ResNetOptions>;
  /** The checkpoint's metadata (step, epoch, dataset, full training configuration). */
  meta: CheckpointMeta;
}

/** Options of {@link loadCheckpointBackbone}. */
export interface LoadCheckpointBackboneOptions {
  /** `student` (default) or `teacher`. */
  network?: NetworkName;
  /** Also load the projection head (default false). */
  head?: boolean;
}

const CHECKPOINT_FORMAT = "ressl-deno-checkpoint";
const CHECKPOINT_VERSION = "1";

/** The ResNet options of a training configuration, with every field set. */
export function configBackboneOptions(config: TrainConfig): Required<ResNetOptions> {
  const m = config.model;
  return {
    depth: m.depth,
    stem: m.stem,
    maxPool: m.maxPool,
    inChannels: m.inChannels,
    width: m.width,
  };
}

/**
 * Uploads the tensors named `prefix + path` of `tensors` into a new tree shaped like `spec`.
 * Throws `Cannot load '<source>': ...` naming the tensor on a missing entry or another shape.
 */
export function treeFromSpec<T extends SpecTree>(
  ctx: Context,
  spec: T,
  tensors: SafetensorsMap,
  opts: { prefix: string; source: string; used?: Set<string> },
): Materialized<T> {
  return ctx.scope(() =>
    materialize(spec, (s, path): Tensor => {
      const name = opts.prefix + path;
      const entry = tensors[name];
      const fail = (why: string) =>
        new Error(`Cannot load '${opts.source}': tensor '${name}' ${why}`);
      if (!entry) throw fail("is missing");
      const same = entry.shape.length === s.shape.length &&
        entry.shape.every((d, i) => d === s.shape[i]);
      if (!same) {
        throw fail(`has shape [${entry.shape}], the network expects [${s.shape}]`);
      }
      if (!(entry.data instanceof Float32Array)) throw fail(`is ${entry.dtype}, expected F32`);
      opts.used?.add(name);
      return ctx.fromArray(entry.data, s.shape);
    })
  );
}

function parseCheckpointMeta(path: string, metadata: Record<string, string>): CheckpointMeta {
  const fail = (why: string) => new Error(`Cannot load checkpoint '${path}': ${why}`);
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw fail(
      `it is not a training checkpoint of this trainer (format '${metadata.format ?? "none"}')`,
    );
  }
  if (metadata.version !== CHECKPOINT_VERSION) {
    throw fail(`checkpoint version ${metadata.version}, this program reads ${CHECKPOINT_VERSION}`);
  }
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(metadata.meta) as CheckpointMeta;
  } catch {
    throw fail("its metadata is not valid JSON");
  }
  if (!meta?.config?.model || !Number.isInteger(meta.step)) {
    throw fail("its metadata has no training configuration or step");
  }
  return meta;
}

/**
 * Loads the backbone (and optionally the head) of `network` from a training checkpoint written by
 * the trainer. Errors read `Cannot load checkpoint '<path>': ...`.
 */
export async function loadCheckpointBackbone(
  ctx: Context,
  path: string,
  opts: LoadCheckpointBackboneOptions = {},
): Promise<CheckpointBackbone> {
  const network = opts.network ?? "student";
  let file;
  try {
    file = await readSafetensors(path);
  } catch (e) {
    const msg = (e as Error).message.replace(`Cannot read safetensors file '${path}': `, "");
    throw new Error(`Cannot load checkpoint '${path}': ${msg}`, { cause: e });
  }
  const meta = parseCheckpointMeta(path, file.metadata);
  const options = configBackboneOptions(meta.config);
  const spec = resnetSpec(options);
  const source = `checkpoint '${path}'`;
  return ctx.scope(() => {
    const wrap = <T>(f: () => T): T => {
      try {
        return f();
      } catch (e) {
        const msg = (e as Error).message.replace(`Cannot load '${source}': `, "");
        throw new Error(`Cannot load checkpoint '${path}': ${msg}`, { cause: e });
      }
    };
    const params = wrap(() =>
      treeFromSpec(ctx, spec.params, file.tensors, { prefix: `${network}/backbone.`, source })
    ) as unknown as ResNetParams;
    const buffers = wrap(() =>
      treeFromSpec(ctx, spec.buffers, file.tensors, { prefix: `${network}_buffers/`, source })
    ) as unknown as ResNetBuffers;
    const head = opts.head
      ? wrap(() =>
        treeFromSpec(
          ctx,
          headSpec({
            inDim: resnetFeatureDim(options),
            hiddenDim: meta.config.head.hidden,
            outDim: meta.config.head.out,
          }),
          file.tensors,
          { prefix: `${network}/head.`, source },
        )
      ) as unknown as HeadParams
      : undefined;
    return { params, buffers, head, options, meta };
  });
}

/**
 * Reads a backbone of architecture `options` from a safetensors file with torchvision names
 * (`conv1.weight`, `bn1.running_mean`, `layer1.0.conv1.weight`, ...). `*.num_batches_tracked` and
 * `fc.*` entries are ignored; any other unknown entry, a missing tensor or another shape throws
 * `Cannot load '<path>': ...` (the architecture must match the file exactly).
 */
export async function readTorchvisionBackbone(
  ctx: Context,
  path: string,
  options: ResNetOptions,
): Promise<Backbone> {
  const file = await readSafetensors(path);
  const spec = resnetSpec(options);
  const used = new Set<string>();
  const source = path;
  const result = ctx.scope(() => ({
    params: treeFromSpec(ctx, spec.params, file.tensors, { prefix: "", source, used }),
    buffers: treeFromSpec(ctx, spec.buffers, file.tensors, { prefix: "", source, used }),
  })) as unknown as Backbone;
  const extra = Object.keys(file.tensors).filter((k) =>
    !used.has(k) && !k.endsWith("num_batches_tracked") && !k.startsWith("fc.")
  );
  if (extra.length > 0) {
    disposeBackbone(result);
    throw new Error(
      `Cannot load '${path}': ${extra.length} entr${extra.length === 1 ? "y" : "ies"} ` +
        `(${
          extra.slice(0, 3).map((k) => `'${k}'`).join(", ")
        }) do not belong to a ResNet-${options.depth} ` +
        `${options.stem} backbone of width ${options.width ?? 64} (file ${basename(path)})`,
    );
  }
  return result;
}

/** Disposes the tensors of a backbone (and head). */
export function disposeBackbone(b: Backbone & { head?: HeadParams }): void {
  for (const tree of [b.params, b.buffers, b.head]) {
    if (tree) disposeTree(tree as unknown as TensorTree);
  }
}
