/**
 * torchvision's BatchNorm layers carry a `num_batches_tracked` int64 counter in their state_dict.
 * Our buffer trees keep only the running mean and variance (the counter is unused with a fixed
 * momentum, and backends have no int64), so an exporter that must load with `strict=True` adds one
 * counter per BN layer, named by {@link batchNormCounterNames}.
 *
 * @module
 */

import { flattenTree, type TensorTree } from "../tensor/tree.ts";

const SUFFIX = "running_mean";

/**
 * The `num_batches_tracked` names of the BN layers of a buffer tree: one per `...running_mean`
 * path (`bn1.running_mean` -> `bn1.num_batches_tracked`), in tree order, with `prefix` prepended.
 */
export function batchNormCounterNames(buffers: TensorTree, prefix = ""): string[] {
  return flattenTree(buffers)
    .map(([path]) => path)
    .filter((p) => p === SUFFIX || p.endsWith(`.${SUFFIX}`))
    .map((p) => `${prefix}${p.slice(0, p.length - SUFFIX.length)}num_batches_tracked`);
}
