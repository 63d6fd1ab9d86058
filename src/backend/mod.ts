/**
 * The backend layer: the {@link Backend} contract (device memory plus every kernel a ReSSL step
 * needs), the kernel table and its validator, backend selection, and the implementations, one
 * folder each: `reference/` (pure TypeScript, f64 accumulation, the oracle), `cpu/` (oneDNN), `cuda/` (cuBLAS,
 * cuDNN and the project's kernels).
 * A new backend is a folder plus a line in `select.ts`.
 *
 * @module
 */

export type * from "./backend.ts";
export { outputSize } from "./backend.ts";
export * from "./augment_layout.ts";
export {
  acceptsDType,
  type ArgSpec,
  KERNEL_NAMES,
  KERNELS,
  type KernelSpec,
  type KernelTable,
  type ListSpec,
} from "./kernels.ts";
export { validateKernel } from "./validate.ts";
export * from "./bf16.ts";
export { type BackendName, createBackend, type CreateBackendOptions } from "./select.ts";
export { createReferenceBackend, ReferenceBackend } from "./reference/backend.ts";
export {
  createCudaBackend,
  CudaBackend,
  type CudaBackendOptions,
  type CudaStats,
} from "./cuda/backend.ts";
export type { AllocatorStats } from "./cuda/allocator.ts";
export type { StagingStats } from "./cuda/staging.ts";
export type { TableStats } from "./cuda/tensor_tables.ts";
export type { KernelImageSource } from "./cuda/kernel_image.ts";
