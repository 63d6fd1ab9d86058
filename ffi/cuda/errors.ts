/**
 * Errors of the CUDA bindings: {@link CudaUnavailableError} when CUDA cannot be used at all (no
 * driver, no device, a library missing or incomplete), so backend selection can fall back, and
 * {@link CudaLibraryError} when one call returns a failure status, reported with the library's own
 * status name and description.
 *
 * @module
 */

/** The NVIDIA libraries these bindings load. */
export type CudaLibraryKind = "cuda" | "cublas" | "cudnn" | "nvrtc" | "nccl";

/**
 * CUDA cannot be used here: the driver (`libcuda.so.1`) or a library is missing or incomplete, or the
 * driver reports no device. `auto` backend selection falls back on this error; `--device cuda`
 * reports its message.
 */
export class CudaUnavailableError extends Error {
  /**
   * True when the machine has no NVIDIA driver at all (`libcuda.so.1` not found by the system
   * loader): the common case of a CPU-only machine, which `auto` selection reports in one line.
   */
  readonly noDriver: boolean;
  constructor(message: string, options?: ErrorOptions & { noDriver?: boolean }) {
    super(message, options);
    this.name = "CudaUnavailableError";
    this.noDriver = options?.noDriver ?? false;
  }
}

/** A CUDA library call returned a failure status. */
export class CudaLibraryError extends Error {
  /** The library that returned the status. */
  readonly library: CudaLibraryKind;
  /** The numeric status (`CUresult`, `cublasStatus_t`, `cudnnStatus_t`, `nvrtcResult`, `ncclResult_t`). */
  readonly status: number;
  /** The library's name for the status, e.g. `CUDA_ERROR_OUT_OF_MEMORY`. */
  readonly statusName: string;

  constructor(
    library: CudaLibraryKind,
    status: number,
    statusName: string,
    description: string,
    what: string,
  ) {
    const detail = description && description !== statusName ? ` (${description})` : "";
    super(`Cannot ${what}: ${statusName}${detail} [${library} status ${status}]`);
    this.name = "CudaLibraryError";
    this.library = library;
    this.status = status;
    this.statusName = statusName;
  }
}

/** Reads a NUL-terminated C string, or returns `fallback` for a null pointer. */
export function cString(p: Deno.PointerValue, fallback = ""): string {
  return p === null ? fallback : Deno.UnsafePointerView.getCString(p);
}

/** Encodes `s` as a NUL-terminated UTF-8 buffer for a `const char*` argument. */
export function cStringBuffer(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** Decodes a `char[]` filled by a C function up to its first NUL. */
export function decodeCString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
}
