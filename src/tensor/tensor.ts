/**
 * `Tensor`: a shape, a dtype and a storage on a backend, plus the autodiff node that made it.
 *
 * Tensors are immutable values: no op writes into a tensor a caller holds. Memory is released
 * deterministically, by `dispose()` / `using`, or by the {@link Context.scope} that created it.
 *
 * @module
 */

import type { Backend, DType, HostArray, Storage } from "../backend/backend.ts";

/** How an op's output is differentiated: its inputs and the rule mapping dy to each input's grad. */
export interface GradNode {
  /** The op's tensor inputs, in the order `backward` returns their gradients. */
  readonly inputs: readonly Tensor[];
  /** Gradients for each input (null where the input needs none), given the output's gradient. */
  backward(dy: Tensor): (Tensor | null)[];
}

/** Shared ownership of one storage by a tensor and its views. */
class StorageOwner {
  refs = 1;
  constructor(readonly storage: Storage) {}
}

/** Number of elements of a shape. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Checks a shape: non-negative integer dimensions. */
export function checkShape(shape: readonly number[]): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new RangeError(
        `Cannot make a tensor of shape [${shape}]: dimensions must be integers >= 0`,
      );
    }
  }
}

/**
 * Holds the backend and the stack of memory scopes. Every tensor belongs to one context; ops find it
 * through their inputs. There is no global context: create one per backend with {@link createContext}.
 */
export class Context {
  /** The backend whose memory and kernels this context uses. */
  readonly backend: Backend;
  #scopes: Set<Tensor>[] = [];
  #noGradDepth = 0;
  #nextId = 1;
  #liveTensors = 0;

  /** A context over `backend` (see also {@link createContext}). */
  constructor(backend: Backend) {
    this.backend = backend;
  }

  /** Whether ops record autodiff nodes right now. */
  get gradEnabled(): boolean {
    return this.#noGradDepth === 0;
  }

  /** Number of tensors not yet disposed. */
  get liveTensors(): number {
    return this.#liveTensors;
  }

  /** Allocates an uninitialised tensor. */
  empty(shape: readonly number[], dtype: DType = "f32"): Tensor {
    checkShape(shape);
    const storage = this.backend.alloc(dtype, shapeSize(shape));
    return this.#register(new Tensor(this, shape, dtype, new StorageOwner(storage)));
  }

  /** Uploads a host array as a tensor of `shape`. */
  fromArray(data: HostArray | number[], shape: readonly number[], dtype?: DType): Tensor {
    const dt: DType = dtype ??
      (data instanceof Uint8Array ? "u8" : data instanceof Int32Array ? "i32" : "f32");
    const host = Array.isArray(data)
      ? (dt === "u8"
        ? Uint8Array.from(data)
        : dt === "i32"
        ? Int32Array.from(data)
        : Float32Array.from(data))
      : data;
    if (host.length !== shapeSize(shape)) {
      throw new RangeError(
        `Cannot make a tensor of shape [${shape}] from ${host.length} values: expected ${
          shapeSize(shape)
        }`,
      );
    }
    const t = this.empty(shape, dt);
    this.backend.upload(t.storage, host);
    return t;
  }

  /** A tensor of `shape` filled with `value`. */
  full(shape: readonly number[], value: number, dtype: DType = "f32"): Tensor {
    const t = this.empty(shape, dtype);
    this.backend.fill(t.storage, value);
    return t;
  }

  /** A tensor of zeros. */
  zeros(shape: readonly number[], dtype: DType = "f32"): Tensor {
    return this.full(shape, 0, dtype);
  }

  /** A tensor viewing the same storage with another shape of the same size (shares ownership). */
  view(t: Tensor, shape: readonly number[]): Tensor {
    checkShape(shape);
    if (shapeSize(shape) !== t.size) {
      throw new RangeError(
        `Cannot view a tensor of shape [${t.shape}] as [${shape}]: sizes differ`,
      );
    }
    t.assertAlive();
    t.owner.refs++;
    return this.#register(new Tensor(this, shape, t.dtype, t.owner));
  }

  /**
   * Runs `fn` and disposes every tensor created inside it, except the tensors reachable from its
   * result (through arrays and plain objects), which move to the enclosing scope.
   */
  scope<T>(fn: () => T): T {
    const created = new Set<Tensor>();
    this.#scopes.push(created);
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.#scopes.pop();
      for (const t of created) t.dispose();
      throw e;
    }
    this.#scopes.pop();
    const kept = new Set<Tensor>();
    collectTensors(result, kept);
    for (const t of created) {
      if (kept.has(t)) this.#adopt(t);
      else t.dispose();
    }
    return result;
  }

  /** Takes `t` out of every scope: it lives until disposed explicitly. */
  keep<T extends Tensor>(t: T): T {
    for (const s of this.#scopes) s.delete(t);
    return t;
  }

  /** Runs `fn` without recording autodiff nodes. */
  noGrad<T>(fn: () => T): T {
    this.#noGradDepth++;
    try {
      return fn();
    } finally {
      this.#noGradDepth--;
    }
  }

  /** @internal Called by `Tensor.dispose`. */
  released(t: Tensor): void {
    this.#liveTensors--;
    for (let i = this.#scopes.length - 1; i >= 0; i--) {
      if (this.#scopes[i].delete(t)) break;
    }
  }

  /** @internal Next tensor id. */
  nextId(): number {
    return this.#nextId++;
  }

  #register(t: Tensor): Tensor {
    this.#liveTensors++;
    const top = this.#scopes[this.#scopes.length - 1];
    if (top) top.add(t);
    return t;
  }

  #adopt(t: Tensor): void {
    const top = this.#scopes[this.#scopes.length - 1];
    if (top) top.add(t);
  }
}

/** Creates a context over `backend`. */
export function createContext(backend: Backend): Context {
  return new Context(backend);
}

/** An n-dimensional array on a backend. */
export class Tensor {
  /** The context (backend + scopes) the tensor belongs to. */
  readonly ctx: Context;
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Unique id within the context (autodiff bookkeeping). */
  readonly id: number;
  /** Whether gradients flow to this tensor. */
  requiresGrad = false;
  /** The op that produced this tensor, when recorded for autodiff. */
  node: GradNode | undefined = undefined;
  /** @internal Shared ownership of the storage. */
  readonly owner: StorageOwner;
  #disposed = false;

  /** @internal Tensors are made by a {@link Context} (`empty`, `fromArray`, `view`), not directly. */
  constructor(ctx: Context, shape: readonly number[], dtype: DType, owner: StorageOwner) {
    this.ctx = ctx;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.owner = owner;
    this.id = ctx.nextId();
  }

  /** The device storage (for ops and backends only). */
  get storage(): Storage {
    this.assertAlive();
    return this.owner.storage;
  }

  /** The backend holding the storage. */
  get backend(): Backend {
    return this.ctx.backend;
  }

  /** Number of elements. */
  get size(): number {
    return shapeSize(this.shape);
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** Whether `dispose` has run. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Throws if the tensor was disposed. */
  assertAlive(): void {
    if (this.#disposed) {
      throw new Error(`Cannot use tensor #${this.id} of shape [${this.shape}]: it was disposed`);
    }
  }

  /** Downloads the values to the host (synchronises with the device). */
  toArray(): HostArray {
    return this.backend.download(this.storage);
  }

  /** Downloads the values as a Float32Array (f32 tensors only). */
  toFloat32(): Float32Array {
    const a = this.toArray();
    if (!(a instanceof Float32Array)) {
      throw new TypeError(`Cannot read tensor #${this.id} as f32: its dtype is ${this.dtype}`);
    }
    return a;
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) {
      throw new RangeError(
        `Cannot read item() of a tensor of shape [${this.shape}]: it is not a scalar`,
      );
    }
    return this.toArray()[0];
  }

  /** Releases the storage once no view refers to it. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.node = undefined;
    this.ctx.released(this);
    if (--this.owner.refs === 0) this.backend.free(this.owner.storage);
  }

  /** Disposes the tensor at the end of a `using` block. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Adds every tensor reachable from `value` (arrays, plain objects, Maps) to `into`. */
export function collectTensors(value: unknown, into: Set<Tensor>): void {
  if (value instanceof Tensor) {
    into.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collectTensors(v, into);
  } else if (value instanceof Map) {
    for (const v of value.values()) collectTensors(v, into);
  } else if (value !== null && typeof value === "object" && isPlainObject(value)) {
    for (const v of Object.values(value)) collectTensors(v, into);
  }
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
