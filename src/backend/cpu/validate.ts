/**
 * Argument checks of the cpu backend's kernels, worded as the reference backend's
 * (`Cannot run conv2dForward: storage 'x' has 12 elements, expected at least 48`).
 *
 * @module
 */

import type { Backend, BatchNormGeometry, DType, Storage } from "../backend.ts";
import { CpuStorage } from "./storage.ts";
import { checkDims, checkScalars } from "../reference/validate.ts";

export {
  checkConvGeometry,
  checkDims,
  checkDistinct,
  checkPoolGeometry,
  checkScalars,
} from "../reference/validate.ts";

/**
 * Returns `storage` as a {@link CpuStorage} after checking that it is a live storage of `backend`
 * with dtype `dtype` (any dtype when null) and at least `needed` elements.
 */
export function cpuStorage(
  backend: Backend,
  kernel: string,
  name: string,
  storage: Storage,
  dtype: DType | null,
  needed: number,
): CpuStorage {
  if (!(storage instanceof CpuStorage) || storage.backend !== backend) {
    const owner = (storage as Partial<Storage> | undefined)?.backend?.name ?? "no backend";
    throw new TypeError(
      `Cannot run ${kernel}: storage '${name}' does not belong to this cpu backend ` +
        `(it belongs to ${owner}); move it with upload/download first`,
    );
  }
  if (storage.freed) throw new Error(`Cannot run ${kernel}: storage '${name}' was freed`);
  if (dtype !== null && storage.dtype !== dtype) {
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
  return storage;
}

/** Checks an eps: finite and >= 0. */
export function checkEps(kernel: string, eps: number): void {
  checkScalars(kernel, { eps });
  if (eps < 0) throw new RangeError(`Cannot run ${kernel}: 'eps' is ${eps}, expected eps >= 0`);
}

/** Checks a batch-norm geometry and eps. */
export function checkBatchNorm(kernel: string, g: BatchNormGeometry, eps: number): void {
  checkDims(kernel, { n: g.n, c: g.c, hw: g.hw }, 1);
  checkEps(kernel, eps);
}
