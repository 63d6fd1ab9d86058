/**
 * The project's kernels on the device: the fatbin (`ffi/cuda/kernels/ressl_kernels.fatbin`, or an
 * image given in its place) loaded once with `cuModuleLoadData`, each kernel looked up on first use
 * with the argument types of `signatures.ts`, and launches on the backend's stream with the
 * launch-shape helpers the kernels' README prescribes.
 *
 * @module
 */

import type { CudaDriver } from "../../../ffi/cuda/driver.ts";
import { CudaLibraryError } from "../../../ffi/cuda/errors.ts";
import {
  type CudaKernel,
  type CudaModule,
  type Dim3,
  type KernelArg,
  loadModule,
} from "../../../ffi/cuda/launch.ts";
import {
  KERNEL_SIGNATURES,
  type KernelName,
  KERNELS_FATBIN_URL,
} from "../../../ffi/cuda/kernels/signatures.ts";

/** Threads per block of every launch (a multiple of 32, as reductions need). */
export const BLOCK = 256;
/** Most blocks of a grid-stride launch. */
export const MAX_GRID = 4096;

/** Blocks of a grid-stride launch over `n` elements (at least 1). */
export function gridFor(n: number, perBlock = BLOCK): number {
  return Math.max(1, Math.min(MAX_GRID, Math.ceil(n / perBlock)));
}

/** Where a kernel image came from, for messages. */
export interface KernelImageSource {
  /** The image bytes (fatbin, cubin or PTX). */
  bytes: Uint8Array;
  /** How to name it in messages (a path or `the given image`). */
  label: string;
}

/** Reads the committed fatbin, with a clear message when it is missing. */
export function committedFatbin(): KernelImageSource {
  const label = decodeURIComponent(KERNELS_FATBIN_URL.pathname);
  try {
    return { bytes: Deno.readFileSync(KERNELS_FATBIN_URL), label };
  } catch (e) {
    throw new Error(
      `Cannot read the CUDA kernels '${label}': ${(e as Error).message} (it is committed with ` +
        `the sources; rebuild it with 'bash ffi/cuda/kernels/build.sh')`,
      { cause: e },
    );
  }
}

/** The loaded kernel module of one backend. */
export class KernelImage {
  readonly #module: CudaModule;
  readonly #stream: Deno.PointerObject;
  readonly #label: string;
  readonly #kernels = new Map<KernelName, CudaKernel>();
  #launches = 0;

  constructor(drv: CudaDriver, source: KernelImageSource, stream: Deno.PointerObject) {
    this.#stream = stream;
    this.#label = source.label;
    try {
      this.#module = loadModule(drv, source.bytes);
    } catch (e) {
      throw new Error(
        `Cannot load the CUDA kernels '${source.label}' on this device: ${(e as Error).message} ` +
          `(is the fatbin built for this GPU's architecture? see ffi/cuda/kernels/README.md)`,
        { cause: e },
      );
    }
  }

  /** Kernel launches queued so far. */
  get launches(): number {
    return this.#launches;
  }

  /** The kernel `name`, looked up on first use. */
  kernel(name: KernelName): CudaKernel {
    let k = this.#kernels.get(name);
    if (k === undefined) {
      try {
        k = this.#module.kernel(name, KERNEL_SIGNATURES[name]);
      } catch (e) {
        if (e instanceof CudaLibraryError && e.statusName === "CUDA_ERROR_NOT_FOUND") {
          throw new Error(
            `Cannot launch CUDA kernel '${name}': the kernel image '${this.#label}' does not ` +
              `contain it (a stale or partial build: rebuild with 'bash ffi/cuda/kernels/build.sh')`,
            { cause: e },
          );
        }
        throw e;
      }
      this.#kernels.set(name, k);
    }
    return k;
  }

  /** Queues `name` on the backend's stream. */
  launch(name: KernelName, grid: Dim3, block: Dim3, args: readonly KernelArg[]): void {
    this.kernel(name).launch(grid, block, args, { stream: this.#stream });
    this.#launches++;
  }

  /** Unloads the module. */
  unload(): void {
    this.#kernels.clear();
    this.#module.unload();
  }
}
