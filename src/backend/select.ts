/**
 * Backend selection: `createBackend("auto" | "reference" | "cpu" | "cuda", opts)`.
 *
 * `auto` picks the fastest backend that loads here: cpu (oneDNN) when libdnnl 2.6.3 is installed,
 * else the pure-TypeScript reference backend with a one-line warning saying how to install oneDNN.
 * (cuda is not implemented yet, so `auto` skips it and asking for it fails clearly.)
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { createCpuBackend } from "./cpu/backend.ts";
import { createReferenceBackend } from "./reference/backend.ts";
import { DnnlUnavailableError } from "../../ffi/dnnl/mod.ts";

/** Names `createBackend` accepts. */
export type BackendName = "auto" | "reference" | "cpu" | "cuda";

/** Options of {@link createBackend}. */
export interface CreateBackendOptions {
  /** Threads for the cpu backend (default: `$RESSL_THREADS`, else every core). */
  threads?: number;
  /** Suppresses the fallback warning of `auto`. */
  quiet?: boolean;
  /** Where the fallback warning goes (default: `console.warn`). */
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
      throw new Error(
        "Cannot create the cuda backend: it is not available yet; use 'cpu' (oneDNN) or 'auto'",
      );
    case "auto":
      try {
        return createCpuBackend({ threads: opts.threads });
      } catch (e) {
        if (!(e instanceof DnnlUnavailableError)) throw e;
        if (!opts.quiet) {
          (opts.warn ?? console.warn)(
            `warning: using the slow reference backend: ${e.message}`,
          );
        }
        return createReferenceBackend();
      }
    default:
      throw new RangeError(
        `Cannot create backend '${name as string}': use auto, reference, cpu or cuda`,
      );
  }
}
