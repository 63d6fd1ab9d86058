/**
 * Loading cuBLAS (cuBLASLt first: `libcublas.so.13` needs it), checking its statuses with its own
 * names (`cublasGetStatusName` / `cublasGetStatusString`), and handles with a math mode. TF32 is off
 * unless asked for, so f32 products match the reference backend.
 *
 * @module
 */

import { dirname, join } from "node:path";
import {
  CUDA_LIBRARIES,
  type DiscoveryOptions,
  type LibraryLocation,
  locateCudaLibrary,
  openLocated,
} from "./discovery.ts";
import { cString, CudaLibraryError } from "./errors.ts";
import {
  CUBLAS_MATH,
  CUBLAS_SYMBOLS,
  type CublasSymbols,
  LIBRARY_PROPERTY,
} from "./cublas_symbols.ts";
import type { CudaStream } from "./memory.ts";

/** A loaded cuBLAS. */
export interface CublasLibrary {
  readonly symbols: CublasSymbols;
  /** Where `libcublas.so.13` was found. */
  readonly location: LibraryLocation;
  /** Where `libcublasLt.so.13` was found (null: none next to an emulated cuBLAS). */
  readonly ltLocation: LibraryLocation | null;
  /** `major.minor.patch` from `cublasGetProperty`. */
  readonly version: string;
  /** `cublasGetVersion_v2`: 10000 * major + 100 * minor + patch. */
  readonly versionNumber: number;
  /** Throws a {@link CudaLibraryError} `Cannot <what>: CUBLAS_STATUS_...` unless `status` is 0. */
  check(status: number, what: string): void;
  /** Unloads cuBLAS and cuBLASLt. */
  close(): void;
}

function locateLt(cublas: LibraryLocation, opts: DiscoveryOptions): LibraryLocation | null {
  const own = opts.env !== undefined ? opts.env[CUDA_LIBRARIES.cublasLt.env] : (() => {
    try {
      return Deno.env.get(CUDA_LIBRARIES.cublasLt.env);
    } catch {
      return undefined;
    }
  })();
  if (!cublas.emulated && !own && cublas.path.includes("/")) {
    const sibling = join(dirname(cublas.path), CUDA_LIBRARIES.cublasLt.file);
    try {
      if (Deno.statSync(sibling).isFile) {
        return { id: "cublasLt", path: sibling, source: `next to ${cublas.path}`, emulated: false };
      }
    } catch {
      // not next to it: search
    }
  }
  return locateCudaLibrary("cublasLt", opts);
}

/** Loads cuBLASLt then cuBLAS (see `discovery.ts`); throws `CudaUnavailableError` if missing. */
export function loadCublas(opts: DiscoveryOptions = {}): CublasLibrary {
  const cublasLocation = locateCudaLibrary("cublas", opts);
  if (cublasLocation === null) throw new Error("internal: cuBLAS has no optional stand-in");
  const ltLocation = locateLt(cublasLocation, opts);
  const lt = ltLocation === null ? null : openLocated(ltLocation, {}, opts).lib;
  let opened;
  try {
    opened = openLocated(cublasLocation, CUBLAS_SYMBOLS, opts);
  } catch (e) {
    lt?.close();
    throw e;
  }
  const { lib, location } = opened;
  const s = lib.symbols;
  const check = (status: number, what: string): void => {
    if (status === 0) return;
    const name = cString(s.cublasGetStatusName(status), `CUBLAS_STATUS_${status}`);
    const text = cString(s.cublasGetStatusString(status));
    throw new CudaLibraryError("cublas", status, name, text, what);
  };
  const prop = (p: number): number => {
    const out = new Int32Array(1);
    check(s.cublasGetProperty(p, out), "read the cuBLAS version");
    return out[0];
  };
  const version = [
    prop(LIBRARY_PROPERTY.MAJOR_VERSION),
    prop(LIBRARY_PROPERTY.MINOR_VERSION),
    prop(LIBRARY_PROPERTY.PATCH_LEVEL),
  ].join(".");
  const v = new Int32Array(1);
  check(s.cublasGetVersion_v2(null, v), "read the cuBLAS version");
  let closed = false;
  return {
    symbols: s,
    location,
    ltLocation,
    version,
    versionNumber: v[0],
    check,
    close(): void {
      if (closed) return;
      closed = true;
      lib.close();
      lt?.close();
    },
  };
}

/** How f32 products are computed. */
export type CublasMath = "default" | "pedantic" | "tf32";

/** Options of {@link createCublasHandle}. */
export interface CublasHandleOptions {
  /** The stream the handle's work goes to (default: the legacy default stream). */
  stream?: CudaStream;
  /**
   * `default` (f32 in full precision: no TF32), `pedantic` (also no reduced-precision reductions),
   * or `tf32` (f32 inputs rounded to TF32 on tensor cores: faster, ~1e-3 relative error).
   */
  math?: CublasMath;
  /** A device workspace for cuBLAS to use instead of allocating its own. */
  workspace?: { ptr: bigint; bytes: number | bigint };
}

/** A cuBLAS handle bound to a stream, with host scalars for alpha and beta. */
export interface CublasHandle {
  readonly lib: CublasLibrary;
  readonly handle: Deno.PointerObject;
  readonly math: CublasMath;
  /** Host storage of alpha (index 0) and beta (index 1) as f32. */
  readonly scalars: Float32Array;
  /** Cached addresses of `scalars[0]` and `scalars[1]`. */
  readonly alpha: Deno.PointerObject;
  readonly beta: Deno.PointerObject;
  /** `cublasSetStream_v2`. */
  setStream(stream: CudaStream): void;
  /** `cublasSetWorkspace_v2`. */
  setWorkspace(ptr: bigint, bytes: number | bigint): void;
  /** `cublasDestroy_v2`. */
  destroy(): void;
}

const MATH_MODE: Readonly<Record<CublasMath, number>> = {
  default: CUBLAS_MATH.DEFAULT,
  pedantic: CUBLAS_MATH.PEDANTIC,
  tf32: CUBLAS_MATH.TF32_TENSOR_OP,
};

/** `cublasCreate_v2` + math mode, stream and workspace. Needs a current CUDA context. */
export function createCublasHandle(
  lib: CublasLibrary,
  opts: CublasHandleOptions = {},
): CublasHandle {
  const s = lib.symbols;
  const math = opts.math ?? "default";
  if (!(math in MATH_MODE)) {
    throw new TypeError(`Unknown cuBLAS math mode '${math}': use default, pedantic or tf32`);
  }
  const out = new BigUint64Array(1);
  lib.check(s.cublasCreate_v2(out), "create a cuBLAS handle");
  const handle = Deno.UnsafePointer.create(out[0]);
  if (handle === null) throw new Error("cublasCreate_v2 returned a null handle");
  const setStream = (stream: CudaStream) =>
    lib.check(s.cublasSetStream_v2(handle, stream), "set the cuBLAS stream");
  const setWorkspace = (ptr: bigint, bytes: number | bigint) =>
    lib.check(s.cublasSetWorkspace_v2(handle, ptr, BigInt(bytes)), "set the cuBLAS workspace");
  try {
    lib.check(s.cublasSetMathMode(handle, MATH_MODE[math]), `set cuBLAS math mode '${math}'`);
    if (opts.stream !== undefined) setStream(opts.stream);
    if (opts.workspace !== undefined) setWorkspace(opts.workspace.ptr, opts.workspace.bytes);
  } catch (e) {
    s.cublasDestroy_v2(handle);
    throw e;
  }
  const scalars = new Float32Array(2);
  const base = Deno.UnsafePointer.of(scalars) as Deno.PointerObject;
  let destroyed = false;
  return {
    lib,
    handle,
    math,
    scalars,
    alpha: base,
    beta: Deno.UnsafePointer.offset(base, 4) as Deno.PointerObject,
    setStream,
    setWorkspace,
    destroy(): void {
      if (destroyed) return;
      destroyed = true;
      lib.check(s.cublasDestroy_v2(handle), "destroy a cuBLAS handle");
    },
  };
}
