/**
 * Backbones from torchvision-named state dicts: the file `deno task export` writes, or one
 * converted from PyTorch. `num_batches_tracked` counters and `fc.*` entries are ignored; every
 * other entry must belong to the backbone, and every backbone tensor must be in the file with its
 * shape. (A backbone out of a training checkpoint comes from the checkpoint schema,
 * `loadCheckpointBackbone` in `src/ressl/checkpoint.ts`.)
 *
 * @module
 */

import { basename } from "node:path";
import {
  type HeadParams,
  materialize,
  type ResNetBuffers,
  type ResNetOptions,
  type ResNetParams,
  resnetSpec,
} from "../nn/mod.ts";
import { readSafetensors } from "../io/safetensors.ts";
import { tensorFromEntry } from "../io/tree_io.ts";
import { type Context, disposeTree, type Tensor, type TensorTree } from "../tensor/mod.ts";

/** A backbone's parameter and BN-statistics trees. */
export interface Backbone {
  /** Parameters (torchvision names). */
  params: ResNetParams;
  /** BN running statistics. */
  buffers: ResNetBuffers;
}

/**
 * Whether a torchvision state-dict entry is one a backbone does not hold: a BN
 * `num_batches_tracked` counter or the classifier `fc.*`.
 */
export function isTorchvisionExtra(name: string): boolean {
  return name === "num_batches_tracked" || name.endsWith(".num_batches_tracked") ||
    name.startsWith("fc.");
}

/**
 * Reads a backbone of architecture `options` from a safetensors file with torchvision names
 * (`conv1.weight`, `bn1.running_mean`, `layer1.0.conv1.weight`, ...). Entries that
 * {@link isTorchvisionExtra} accepts are ignored; any other unknown entry, a missing tensor or
 * another shape throws `Cannot load '<path>': ...` (the architecture must match the file exactly).
 */
export async function readTorchvisionBackbone(
  ctx: Context,
  path: string,
  options: ResNetOptions,
): Promise<Backbone> {
  const file = await readSafetensors(path);
  const spec = resnetSpec(options);
  const used = new Set<string>();
  const load = (name: string, shape: readonly number[]): Tensor => {
    used.add(name);
    return tensorFromEntry(ctx, file.tensors, name, { shape, dtype: "f32" }, path);
  };
  const result = ctx.scope(() => ({
    params: materialize(spec.params, (s, name) => load(name, s.shape)) as ResNetParams,
    buffers: materialize(spec.buffers, (s, name) => load(name, s.shape)) as ResNetBuffers,
  }));
  const extra = Object.keys(file.tensors).filter((k) => !used.has(k) && !isTorchvisionExtra(k));
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
