/**
 * Everything the cuda backend holds on the device, opened in one place and released in reverse
 * order: the driver and device (its primary context, current on the calling thread), the one
 * stream every piece of work goes to, cuBLAS and cuDNN handles bound to that stream, the kernel
 * module, the caching allocator, pinned staging, and the per-shape caches (convolution plans,
 * multi-tensor pointer tables).
 *
 * Libraries are located and loaded before the device is touched, so a missing library fails at
 * once with the {@link CudaUnavailableError} of discovery (naming what is missing and how to
 * install it), and `auto` backend selection can fall back.
 *
 * @module
 */

import {
  type CudaDevice,
  type CudaDriver,
  loadDriver,
  openDevice,
} from "../../../ffi/cuda/driver.ts";
import { createCublasHandle, type CublasLibrary, loadCublas } from "../../../ffi/cuda/cublas.ts";
import type { CublasHandle } from "../../../ffi/cuda/cublas.ts";
import {
  createCudnnHandle,
  type CudnnHandle,
  type CudnnLibrary,
  loadCudnn,
} from "../../../ffi/cuda/cudnn.ts";
import type { DiscoveryOptions } from "../../../ffi/cuda/discovery.ts";
import { createStream, destroyStream, syncStream } from "../../../ffi/cuda/stream.ts";
import { CachingAllocator } from "./allocator.ts";
import { committedFatbin, KernelImage, type KernelImageSource } from "./kernel_image.ts";
import { Staging } from "./staging.ts";

/** Options of the cuda backend. */
export interface CudaBackendOptions {
  /** Environment variables for library discovery (default: this process's). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Python's `nvidia` package folders (default: asked from `python3`); see `discovery.ts`. */
  pythonNvidiaDirs?: readonly string[];
  /** The device ordinal (default 0). */
  device?: number;
  /**
   * Allow TF32 tensor cores for f32 gemm and convolutions (default false: f32 runs in full
   * precision, so results match the reference backend).
   */
  tf32?: boolean;
  /**
   * How convolution algorithms are chosen, once per shape: `measure` runs cuDNN's Find on scratch
   * buffers (as `torch.backends.cudnn.benchmark`), `heuristic` takes cuDNN's ranking. Default:
   * measure on a GPU, heuristic on the emulated device (where timings mean nothing).
   */
  convSearch?: "heuristic" | "measure";
  /** The largest workspace a convolution algorithm may use, in bytes (default 256 MiB). */
  convWorkspaceLimit?: number;
  /** A kernel image in place of the committed fatbin (tests of a partial image). */
  kernels?: KernelImageSource;
}

/** The cuBLAS workspace (cuBLAS recommends 32 MiB on Hopper; it must not be allocated in graphs). */
export const CUBLAS_WORKSPACE_BYTES = 32 << 20;

/** The device-side state of one cuda backend; see the module documentation. */
export class CudaRuntime {
  readonly drv: CudaDriver;
  readonly dev: CudaDevice;
  readonly stream: Deno.PointerObject;
  readonly cublasLib: CublasLibrary;
  readonly cublas: CublasHandle;
  readonly cudnnLib: CudnnLibrary;
  readonly cudnn: CudnnHandle;
  readonly kernels: KernelImage;
  readonly alloc: CachingAllocator;
  readonly staging: Staging;
  /** True on the emulated device. */
  readonly emulated: boolean;
  /** The options the backend was created with, defaults filled in. */
  readonly tf32: boolean;
  readonly convSearch: "heuristic" | "measure";
  readonly convWorkspaceLimit: number;
  readonly #undo: (() => void)[] = [];

  constructor(opts: CudaBackendOptions = {}) {
    const discovery: DiscoveryOptions = {
      env: opts.env,
      pythonNvidiaDirs: opts.pythonNvidiaDirs,
    };
    const undo = this.#undo;
    try {
      // Libraries first: a missing one is reported before any device work.
      this.drv = loadDriver(discovery);
      const drv = this.drv;
      undo.push(() => drv.close());
      this.cublasLib = loadCublas(discovery);
      undo.push(() => this.cublasLib.close());
      this.cudnnLib = loadCudnn(discovery);
      undo.push(() => this.cudnnLib.close());
      this.emulated = this.drv.location.emulated;

      this.dev = openDevice(drv, opts.device ?? 0);
      undo.push(() => this.dev.release());
      this.stream = createStream(drv);
      undo.push(() => destroyStream(drv, this.stream));
      const sync = () => syncStream(drv, this.stream);
      this.alloc = new CachingAllocator(drv, sync, this.dev.name);
      undo.push(() => this.alloc.dispose());
      this.staging = new Staging(drv, this.stream);
      undo.push(() => this.staging.dispose());

      this.tf32 = opts.tf32 ?? false;
      const workspace = this.alloc.alloc(CUBLAS_WORKSPACE_BYTES);
      this.cublas = createCublasHandle(this.cublasLib, {
        stream: this.stream,
        math: this.tf32 ? "tf32" : "default",
        workspace: { ptr: workspace, bytes: CUBLAS_WORKSPACE_BYTES },
      });
      undo.push(() => this.cublas.destroy());
      this.cudnn = createCudnnHandle(this.cudnnLib, this.stream);
      undo.push(() => this.cudnn.destroy());
      this.kernels = new KernelImage(drv, opts.kernels ?? committedFatbin(), this.stream);
      undo.push(() => this.kernels.unload());

      this.convSearch = opts.convSearch ?? (this.emulated ? "heuristic" : "measure");
      this.convWorkspaceLimit = opts.convWorkspaceLimit ?? 256 << 20;
    } catch (e) {
      this.#unwind();
      throw e;
    }
  }

  /** Waits for all work queued on the stream. */
  sync(): void {
    syncStream(this.drv, this.stream);
    this.staging?.markIdle();
  }

  /** Scratch device memory for work queued next (give it back with {@link release} after). */
  scratch(bytes: number): bigint {
    return this.alloc.alloc(Math.max(bytes, 4));
  }

  /** Returns scratch memory; work already queued may still use it (stream order). */
  release(ptr: bigint): void {
    this.alloc.free(ptr);
  }

  /** Registers a cleanup to run before the runtime's own resources are released. */
  onDispose(fn: () => void): void {
    this.#undo.push(fn);
  }

  /** Synchronises and releases everything, newest first; reports the first failure after all ran. */
  dispose(): void {
    let first: unknown;
    try {
      this.sync();
    } catch (e) {
      first = e;
    }
    const err = this.#unwind();
    if (first ?? err) throw first ?? err;
  }

  #unwind(): unknown {
    let first: unknown;
    for (const fn of this.#undo.splice(0).reverse()) {
      try {
        fn();
      } catch (e) {
        first ??= e;
      }
    }
    return first;
  }
}
