/**
 * Parameter specs: what a network's tensors are (shape and how they are initialised) before any
 * memory is allocated. A network describes its parameter and buffer trees with {@link ParamSpec}
 * leaves; the same tree shape then holds tensors after {@link materialize}. Counting parameters or
 * listing names needs no allocation.
 *
 * @module
 */

import type { Tensor } from "../tensor/tensor.ts";

/** How a tensor is initialised (torchvision's defaults, see `init.ts`). */
export type InitKind =
  | "conv" // kaiming-normal, mode fan_out, relu gain
  | "linearWeight" // kaiming-uniform a = sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  | "linearBias" // U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  | "ones" // BN weight, running variance
  | "zeros"; // BN bias, running mean

/** A tensor yet to be created. */
export interface ParamSpec {
  /** Marks the leaf (trees of specs are plain records and arrays). */
  readonly spec: true;
  /** Dimensions. */
  readonly shape: readonly number[];
  /** Initialisation rule. */
  readonly init: InitKind;
  /** Fan-in used by the linear rules (the weight's input features). */
  readonly fanIn?: number;
}

/** A spec, or a record / array of spec trees. */
export type SpecTree = ParamSpec | SpecTree[] | { [key: string]: SpecTree };

/** Makes a {@link ParamSpec}. */
export function paramSpec(shape: readonly number[], init: InitKind, fanIn?: number): ParamSpec {
  return { spec: true, shape: Object.freeze([...shape]), init, fanIn };
}

function isSpec(v: unknown): v is ParamSpec {
  return typeof v === "object" && v !== null && (v as ParamSpec).spec === true;
}

/** `[path, spec]` pairs in depth-first key order (paths joined with "."). */
export function flattenSpec(tree: SpecTree, prefix = ""): [string, ParamSpec][] {
  const out: [string, ParamSpec][] = [];
  const walk = (t: SpecTree, path: string) => {
    if (isSpec(t)) out.push([path, t]);
    else if (Array.isArray(t)) t.forEach((v, i) => walk(v, join(path, String(i))));
    else for (const [k, v] of Object.entries(t)) walk(v, join(path, k));
  };
  walk(tree, prefix);
  return out;
}

function join(prefix: string, key: string): string {
  return prefix === "" ? key : `${prefix}.${key}`;
}

/** Total number of elements of the specs of a tree (a parameter count without allocation). */
export function specSize(tree: SpecTree): number {
  let n = 0;
  for (const [, s] of flattenSpec(tree)) n += s.shape.reduce((a, b) => a * b, 1);
  return n;
}

/** Replaces every spec leaf by a tensor. */
export type Materialized<T> = T extends ParamSpec ? Tensor
  : { [K in keyof T]: Materialized<T[K]> };

/** The tree of `tree` with each spec replaced by `make(spec, path)`. */
export function materialize<T extends SpecTree>(
  tree: T,
  make: (spec: ParamSpec, path: string) => Tensor,
  prefix = "",
): Materialized<T> {
  const walk = (t: SpecTree, path: string): unknown => {
    if (isSpec(t)) return make(t, path);
    if (Array.isArray(t)) return t.map((v, i) => walk(v, join(path, String(i))));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(t)) out[k] = walk(v, join(path, k));
    return out;
  };
  return walk(tree, prefix) as Materialized<T>;
}
