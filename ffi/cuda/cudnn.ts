/**
 * Loading cuDNN 9 safely (its folder checked for every sub-library before the library is opened:
 * see `cudnn_sublibs.ts`), checking its statuses with `cudnnGetErrorString` and the last error
 * message, and handles.
 *
 * @module
 */

import { dirname } from "node:path";
import { checkCudnnFolder } from "./cudnn_sublibs.ts";
import { CUDNN_SYMBOLS, type CudnnSymbols } from "./cudnn_symbols.ts";
import {
  CUDA_LIBRARIES,
  type DiscoveryOptions,
  type LibraryLocation,
  locateCudaLibrary,
  mappedFolder,
  openLocated,
} from "./discovery.ts";
import { cString, CudaLibraryError, CudaUnavailableError, decodeCString } from "./errors.ts";
import type { CudaStream } from "./memory.ts";

/** The cuDNN major version these bindings are written for. */
export const CUDNN_MAJOR = 9;

/** A loaded cuDNN. */
export interface CudnnLibrary {
  readonly symbols: CudnnSymbols;
  /** Where `libcudnn.so.9` was found. */
  readonly location: LibraryLocation;
  /** `major.minor.patch` from `cudnnGetVersion`. */
  readonly version: string;
  /** Optional sub-libraries missing from its folder (fewer engines), reported only. */
  readonly missingOptional: readonly string[];
  /** Throws a {@link CudaLibraryError} `Cannot <what>: CUDNN_STATUS_...` unless `status` is 0. */
  check(status: number, what: string): void;
  /** Unloads cuDNN. */
  close(): void;
}

function refuseIncomplete(dir: string, missing: string[]): never {
  throw new CudaUnavailableError(
    `Cannot use cuDNN from '${dir}': it lacks ${missing.join(", ")} (libcudnn.so.9 loads its ` +
      `sub-libraries from its own folder and aborts the process when one is missing); reinstall ` +
      `the nvidia-cudnn-cu13 wheel ('bash scripts/setup_cuda.sh') or point ` +
      `${CUDA_LIBRARIES.cudnn.env} at a complete installation`,
  );
}

/**
 * Loads cuDNN 9 (see `discovery.ts`). Before the library is opened, its folder is checked for every
 * sub-library it would load (not for the emulator's single stand-in); an incomplete folder is
 * refused with a {@link CudaUnavailableError} naming what is missing, instead of the abort cuDNN
 * itself would cause at the first call.
 */
export function loadCudnn(opts: DiscoveryOptions = {}): CudnnLibrary {
  const location = locateCudaLibrary("cudnn", opts);
  if (location === null) throw new Error("internal: cuDNN has no optional stand-in");
  const byPath = location.path.includes("/");
  let missingOptional: string[] = [];
  if (!location.emulated && byPath) {
    const check = checkCudnnFolder(dirname(location.path));
    if (check.missing.length > 0) refuseIncomplete(dirname(location.path), check.missing);
    missingOptional = check.missingOptional;
  }
  const { lib } = openLocated(location, CUDNN_SYMBOLS, opts);
  if (!location.emulated && !byPath) {
    // Found by the system loader: check the folder it was mapped from before any call.
    const dir = mappedFolder(CUDA_LIBRARIES.cudnn.file);
    if (dir !== null) {
      const check = checkCudnnFolder(dir);
      if (check.missing.length > 0) {
        lib.close();
        refuseIncomplete(dir, check.missing);
      }
      missingOptional = check.missingOptional;
    }
  }
  const s = lib.symbols;
  const v = Number(s.cudnnGetVersion());
  const major = Math.floor(v / 10000);
  const version = `${major}.${Math.floor((v % 10000) / 100)}.${v % 100}`;
  if (major !== CUDNN_MAJOR) {
    lib.close();
    throw new CudaUnavailableError(
      `Cannot use cuDNN ${version} from '${location.path}': these bindings need cuDNN ` +
        `${CUDNN_MAJOR}.x`,
    );
  }
  const last = new Uint8Array(1024);
  let closed = false;
  return {
    symbols: s,
    location,
    version,
    missingOptional,
    check(status: number, what: string): void {
      if (status === 0) return;
      const name = cString(s.cudnnGetErrorString(status), `CUDNN_STATUS_${status}`);
      last.fill(0);
      s.cudnnGetLastErrorString(last, BigInt(last.length));
      throw new CudaLibraryError("cudnn", status, name, decodeCString(last).trim(), what);
    },
    close(): void {
      if (closed) return;
      closed = true;
      lib.close();
    },
  };
}

/** A cuDNN handle. */
export interface CudnnHandle {
  readonly lib: CudnnLibrary;
  readonly handle: Deno.PointerObject;
  /** `cudnnSetStream`. */
  setStream(stream: CudaStream): void;
  /** `cudnnDestroy`. */
  destroy(): void;
}

/** `cudnnCreate` (needs a current CUDA context) and `cudnnSetStream`. */
export function createCudnnHandle(lib: CudnnLibrary, stream?: CudaStream): CudnnHandle {
  const s = lib.symbols;
  const out = new BigUint64Array(1);
  lib.check(s.cudnnCreate(out), "create a cuDNN handle");
  const handle = Deno.UnsafePointer.create(out[0]);
  if (handle === null) throw new Error("cudnnCreate returned a null handle");
  const setStream = (st: CudaStream) =>
    lib.check(s.cudnnSetStream(handle, st), "set the cuDNN stream");
  if (stream !== undefined) {
    try {
      setStream(stream);
    } catch (e) {
      s.cudnnDestroy(handle);
      throw e;
    }
  }
  let destroyed = false;
  return {
    lib,
    handle,
    setStream,
    destroy(): void {
      if (destroyed) return;
      destroyed = true;
      lib.check(s.cudnnDestroy(handle), "destroy a cuDNN handle");
    },
  };
}

/** Reads a descriptor handle from a create call's out-parameter. */
export function createDescriptor(
  lib: CudnnLibrary,
  create: (out: BigUint64Array) => number,
  what: string,
): Deno.PointerObject {
  const out = new BigUint64Array(1);
  lib.check(create(out), `create a cuDNN ${what} descriptor`);
  const p = Deno.UnsafePointer.create(out[0]);
  if (p === null) throw new Error(`cuDNN returned a null ${what} descriptor`);
  return p;
}
