/**
 * The cpu backend's side of argument validation. Every kernel first calls the contract's
 * `validateKernel` (kernel table driven, shared by all backends); what remains here is cpu-specific:
 * viewing an already validated storage as the {@link CpuStorage} it is.
 *
 * @module
 */

import type { Storage } from "../backend.ts";
import { CpuStorage } from "./storage.ts";

/**
 * `s` as a {@link CpuStorage}. Only for storages `validateKernel` accepted (they belong to this
 * backend, so they are CpuStorages); anything else is an internal error.
 */
export function cpu(s: Storage): CpuStorage {
  if (!(s instanceof CpuStorage)) {
    throw new TypeError(
      `Internal error: a storage of the ${s?.backend?.name ?? "unknown"} backend reached a cpu ` +
        `kernel without validation`,
    );
  }
  return s;
}
