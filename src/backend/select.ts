/**
 * Backend selection: `createBackend("auto" | "reference" | "cpu" | "cuda", opts)`.
 *
 * `auto` picks the fastest backend that loads here: cuda (an NVIDIA GPU, or the emulated device
 * under `RESSL_CUDA_EMULATION=1`), else cpu (oneDNN, where libdnnl 2.6.3 is installed), else the
 * pure-TypeScript reference backend. Each fallback is reported in one line: a note when cuda is
 * unavailable and cpu is used, a warning (with how to install oneDNN) when only the slow reference
 * backend is left. Asking for `cuda` or `cpu` by name fails at once with the library's message
 * (`CudaUnavailableError`: no driver, no device or a missing library, and what to do).
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { createCpuBackend } from "./cpu/backend.ts";
import { createCudaBackend, type CudaBackendOptions } from "./cuda/backend.ts";
import { createReferenceBackend } from "./reference/backend.ts";
import { DnnlUnavailableError } from "../../ffi/dnnl/mod.ts";
import { CudaUnavailableError } from "../../ffi/cuda/errors.ts";

/** Names `createBackend` accepts. */
export type BackendName = "auto" | "reference" | "cpu" | "cuda";

/** Options of {@link createBackend}. */
export interface CreateBackendOptions {
  /** Threads for the cpu backend (default: `$RESSL_THREADS`, else every core). */
  threads?: number;
  /** Options of the cuda backend (device ordinal, TF32, convolution search). */
  cuda?: CudaBackendOptions;
  /** Suppresses the fallback note or warning of `auto`. */
  quiet?: boolean;
  /** Where the fallback note or warning goes (default: `console.warn`). */
  warn?: (line: string) => void;
}

/** Creates the named backend; see the module documentation for what `auto` picks. */
export function createBackend(name: BackendName, opts: CreateBackendOptions = {}): Backend {
  switch (name) {
    case "reference":
      return createReferenceBackend();
    case "cpu":
      return createCpuBackend({ threads: opts.threads });
    case "cuda":
      return createCudaBackend(opts.cuda);
    case "auto":
      return createAuto(opts);
    default:
      throw new RangeError(
        `Cannot create backend '${name as string}': use auto, reference, cpu or cuda`,
      );
  }
}

function createAuto(opts: CreateBackendOptions): Backend {
  const say = (line: string) => {
    if (!opts.quiet) (opts.warn ?? console.warn)(line);
  };
  let noCuda: string;
  try {
    return createCudaBackend(opts.cuda);
  } catch (e) {
    if (!(e instanceof CudaUnavailableError)) throw e;
    // A machine without an NVIDIA driver is the ordinary CPU case: one short line. A driver that
    // is there but unusable (old, no device, a library missing) is worth the whole reason.
    noCuda = e.noDriver ? "no NVIDIA driver here (libcuda.so.1 not found)" : e.message;
  }
  try {
    const cpu = createCpuBackend({ threads: opts.threads });
    say(`note: no CUDA device, using the cpu backend (oneDNN): ${noCuda}`);
    return cpu;
  } catch (e) {
    if (!(e instanceof DnnlUnavailableError)) throw e;
    say(`warning: using the slow reference backend: ${e.message} (and no CUDA device: ${noCuda})`);
    return createReferenceBackend();
  }
}
