/**
 * Parameter trees: nested plain records (and arrays) of tensors. Flattened paths join keys with
 * "." so a ResNet's tree flattens to torchvision names (`layer1.0.conv1.weight`).
 *
 * @module
 */

import { Tensor } from "./tensor.ts";

/** A tensor, or a record / array of trees. */
export type TensorTree = Tensor | TensorTree[] | { [key: string]: TensorTree };

/** The same tree shape with each tensor replaced by `f(tensor, path)`. */
export function mapTree<T extends TensorTree>(tree: T, f: (t: Tensor, path: string) => Tensor): T {
  return mapAt(tree, "", f) as T;
}

function mapAt(tree: TensorTree, path: string, f: (t: Tensor, path: string) => Tensor): TensorTree {
  if (tree instanceof Tensor) return f(tree, path);
  if (Array.isArray(tree)) return tree.map((v, i) => mapAt(v, join(path, String(i)), f));
  const out: { [key: string]: TensorTree } = {};
  for (const [k, v] of Object.entries(tree)) out[k] = mapAt(v, join(path, k), f);
  return out;
}

function join(prefix: string, key: string): string {
  return prefix === "" ? key : `${prefix}.${key}`;
}

/** `[path, tensor]` pairs in depth-first key order. */
export function flattenTree(tree: TensorTree, prefix = ""): [string, Tensor][] {
  const out: [string, Tensor][] = [];
  mapAt(tree, prefix, (t, p) => {
    out.push([p, t]);
    return t;
  });
  return out;
}

/** Rebuilds a tree shaped like `like` from a map of flattened paths (throws on a missing path). */
export function unflattenLike<T extends TensorTree>(like: T, values: Map<string, Tensor>): T {
  return mapTree(like, (_t, path) => {
    const v = values.get(path);
    if (!v) throw new Error(`Cannot rebuild parameter tree: no tensor for '${path}'`);
    return v;
  });
}

/**
 * A deep copy of a tree (or of one tensor): every tensor gets a new storage on its own context,
 * filled by a device copy (no host round trip); shapes, dtypes and tree shape are kept. The copies
 * carry no autodiff node.
 */
export function cloneTree<T extends TensorTree>(tree: T): T {
  return mapTree(tree, (t) => {
    const out = t.ctx.empty(t.shape, t.dtype);
    t.backend.copy({
      src: t.storage,
      dst: out.storage,
      srcOffset: 0,
      dstOffset: 0,
      length: t.size,
    });
    return out;
  });
}

/** Disposes every tensor of a tree. */
export function disposeTree(tree: TensorTree): void {
  for (const [, t] of flattenTree(tree)) t.dispose();
}

/** Total number of elements of the tensors in a tree. */
export function treeSize(tree: TensorTree): number {
  let n = 0;
  for (const [, t] of flattenTree(tree)) n += t.size;
  return n;
}
