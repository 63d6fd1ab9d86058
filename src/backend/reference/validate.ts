/**
 * Argument checks shared by the reference backend's kernels. Every failure names the kernel and the
 * argument, e.g. `Cannot run conv2dForward: storage 'x' has 12 elements, expected at least 48`.
 *
 * @module
 */

import type { Backend, Conv2dGeometry, DType, Pool2dGeometry, Storage } from "../backend.ts";
import { outputSize } from "../backend.ts";
import { ReferenceStorage } from "./storage.ts";

/** Checks that each named dimension is an integer >= `min` (default 0, element counts). */
export function checkDims(kernel: string, dims: Record<string, number>, min = 0): void {
  for (const [name, v] of Object.entries(dims)) {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
      throw new RangeError(
        `Cannot run ${kernel}: '${name}' is ${String(v)}, expected an integer >= ${min}`,
      );
    }
  }
}

/** Checks that each named scalar is a finite number. */
export function checkScalars(kernel: string, scalars: Record<string, number>): void {
  for (const [name, v] of Object.entries(scalars)) {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new RangeError(
        `Cannot run ${kernel}: '${name}' is ${String(v)}, expected a finite number`,
      );
    }
  }
}

/**
 * Returns the typed array behind `storage` after checking that it is a live storage of `backend`
 * with dtype `dtype` and at least `needed` elements.
 */
export function storageData(
  backend: Backend,
  kernel: string,
  name: string,
  storage: Storage,
  dtype: DType,
  needed: number,
): ReferenceStorage["data"] {
  if (!(storage instanceof ReferenceStorage) || storage.backend !== backend) {
    const owner = (storage as Partial<Storage> | undefined)?.backend?.name ?? "no backend";
    throw new TypeError(
      `Cannot run ${kernel}: storage '${name}' does not belong to this reference backend ` +
        `(it belongs to ${owner}); move it with upload/download first`,
    );
  }
  if (storage.freed) {
    throw new Error(`Cannot run ${kernel}: storage '${name}' was freed`);
  }
  if (storage.dtype !== dtype) {
    throw new TypeError(
      `Cannot run ${kernel}: storage '${name}' has dtype ${storage.dtype}, expected ${dtype}`,
    );
  }
  if (storage.length < needed) {
    throw new RangeError(
      `Cannot run ${kernel}: storage '${name}' has ${storage.length} elements, ` +
        `expected at least ${needed}`,
    );
  }
  return storage.data;
}

/** {@link storageData} for f32 storages. */
export function f32Data(
  backend: Backend,
  kernel: string,
  name: string,
  storage: Storage,
  needed: number,
): Float32Array {
  return storageData(backend, kernel, name, storage, "f32", needed) as Float32Array;
}

/** Checks that no output storage is also another output or an input (the contract's default). */
export function checkDistinct(
  kernel: string,
  outputs: Record<string, Storage>,
  inputs: Record<string, Storage>,
): void {
  const outs = Object.entries(outputs);
  const all = [...outs, ...Object.entries(inputs)];
  for (let i = 0; i < outs.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      if (outs[i][1] === all[j][1]) {
        throw new Error(
          `Cannot run ${kernel}: output '${outs[i][0]}' is the same storage as '${all[j][0]}'; ` +
            `this kernel needs distinct storages`,
        );
      }
    }
  }
}

/** Checks a convolution geometry: positive sizes and strides, pads >= 0, consistent outH/outW. */
export function checkConvGeometry(kernel: string, g: Conv2dGeometry): void {
  checkDims(kernel, { n: g.n, c: g.c, h: g.h, w: g.w, k: g.k, r: g.r, s: g.s }, 1);
  checkDims(kernel, { strideH: g.strideH, strideW: g.strideW }, 1);
  checkDims(kernel, { padH: g.padH, padW: g.padW }, 0);
  checkOutput(kernel, "outH", g.outH, outputSize(g.h, g.r, g.strideH, g.padH));
  checkOutput(kernel, "outW", g.outW, outputSize(g.w, g.s, g.strideW, g.padW));
}

/** Checks a pooling geometry, including PyTorch's rule that a pad is at most half the window. */
export function checkPoolGeometry(kernel: string, g: Pool2dGeometry): void {
  checkDims(kernel, { n: g.n, c: g.c, h: g.h, w: g.w, kernelH: g.kernelH, kernelW: g.kernelW }, 1);
  checkDims(kernel, { strideH: g.strideH, strideW: g.strideW }, 1);
  checkDims(kernel, { padH: g.padH, padW: g.padW }, 0);
  if (2 * g.padH > g.kernelH || 2 * g.padW > g.kernelW) {
    throw new RangeError(
      `Cannot run ${kernel}: padding ${g.padH}x${g.padW} exceeds half the window ` +
        `${g.kernelH}x${g.kernelW} (as PyTorch, a pad may be at most half the kernel size)`,
    );
  }
  checkOutput(kernel, "outH", g.outH, outputSize(g.h, g.kernelH, g.strideH, g.padH));
  checkOutput(kernel, "outW", g.outW, outputSize(g.w, g.kernelW, g.strideW, g.padW));
}

function checkOutput(kernel: string, name: string, got: number, expected: number): void {
  if (expected < 1) {
    throw new RangeError(
      `Cannot run ${kernel}: the window is larger than the padded input (${name} would be ${expected})`,
    );
  }
  if (got !== expected) {
    throw new RangeError(
      `Cannot run ${kernel}: geometry '${name}' is ${String(got)}, expected ${expected} ` +
        `(floor((in + 2 pad - kernel) / stride) + 1)`,
    );
  }
}
