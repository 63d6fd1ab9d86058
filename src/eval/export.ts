/**
 * A backbone as a torchvision `state_dict` in safetensors: our parameter paths are torchvision's
 * names and our layouts are PyTorch's (conv [K, C, R, S], linear [out, in]), so the export adds
 * only the BN `num_batches_tracked` counters (I64 scalars; value = steps trained) that
 * `load_state_dict(strict=True)` requires. With a head, its two linear layers are named
 * `fc.0.*` and `fc.2.*`: they load into `model.fc = nn.Sequential(nn.Linear(D, hidden),
 * nn.ReLU(), nn.Linear(hidden, out))`. See docs/export.md for the Python side.
 *
 * Entries are in torchvision's order (per module: weight, bias, running_mean, running_var,
 * num_batches_tracked). The file's metadata records the architecture (`ressl.architecture`, JSON)
 * so a loader can build the matching model.
 *
 * @module
 */

import type { HeadParams, ResNetOptions } from "../nn/mod.ts";
import { resnetFeatureDim } from "../nn/mod.ts";
import type { SafetensorsMap } from "../io/safetensors.ts";
import { flattenTree, type TensorTree } from "../tensor/mod.ts";
import type { Backbone } from "./backbone_io.ts";

/** Options of {@link torchvisionStateDict}. */
export interface TorchvisionStateDictOptions {
  /** Value of every `num_batches_tracked` counter (the training steps). */
  numBatchesTracked: number;
  /** The projection head, exported as `fc.0.*` / `fc.2.*`. */
  head?: HeadParams;
}

const BUFFER_SUFFIXES = ["running_mean", "running_var"] as const;

/**
 * The host-side state dict of a backbone (and head) under torchvision's names, with one I64
 * `num_batches_tracked` scalar per BN layer.
 */
export function torchvisionStateDict(
  backbone: Backbone,
  opts: TorchvisionStateDictOptions,
): SafetensorsMap {
  if (!Number.isSafeInteger(opts.numBatchesTracked) || opts.numBatchesTracked < 0) {
    throw new RangeError(
      `Cannot export: numBatchesTracked is ${opts.numBatchesTracked}, expected an integer >= 0`,
    );
  }
  const buffers = new Map(flattenTree(backbone.buffers as unknown as TensorTree));
  const out: SafetensorsMap = {};
  const put = (name: string, t: { shape: readonly number[]; toFloat32(): Float32Array }) => {
    out[name] = { dtype: "F32", shape: [...t.shape], data: t.toFloat32() };
  };
  for (const [path, t] of flattenTree(backbone.params as unknown as TensorTree)) {
    put(path, t);
    if (!path.endsWith(".bias")) continue;
    const module = path.slice(0, -".bias".length);
    const mean = buffers.get(`${module}.running_mean`);
    if (!mean) continue; // a bias without running statistics is not a BN layer
    for (const suffix of BUFFER_SUFFIXES) {
      const name = `${module}.${suffix}`;
      put(name, buffers.get(name)!);
      buffers.delete(name);
    }
    out[`${module}.num_batches_tracked`] = {
      dtype: "I64",
      shape: [],
      data: BigInt64Array.of(BigInt(opts.numBatchesTracked)),
    };
  }
  if (buffers.size > 0) {
    throw new Error(
      `Cannot export: buffer '${
        [...buffers.keys()][0]
      }' has no matching BN layer in the parameters`,
    );
  }
  if (opts.head) {
    for (const [path, t] of flattenTree(opts.head as unknown as TensorTree)) put(`fc.${path}`, t);
  }
  return out;
}

/** The metadata `deno task export` stores: architecture and provenance, as strings. */
export function exportMetadata(opts: {
  options: Required<ResNetOptions>;
  network: string;
  step: number;
  epoch: number;
  dataset: string;
  checkpoint: string;
  head?: { hidden: number; out: number };
}): Record<string, string> {
  const { options } = opts;
  return {
    format: "ressl-deno-backbone",
    "ressl.architecture": JSON.stringify({
      ...options,
      featureDim: resnetFeatureDim(options),
      torchvision: `resnet${options.depth}`,
    }),
    "ressl.network": opts.network,
    "ressl.step": String(opts.step),
    "ressl.epoch": String(opts.epoch),
    "ressl.dataset": opts.dataset,
    "ressl.checkpoint": opts.checkpoint,
    ...(opts.head ? { "ressl.head": JSON.stringify(opts.head) } : {}),
  };
}
