/**
 * Loading the CUDA driver, checking its statuses, and opening a device's primary context (the one
 * cuBLAS and cuDNN use too). CUDA calls must stay on the thread that made the context current: bind
 * nothing `nonblocking`.
 *
 * @module
 */

import { type DiscoveryOptions, type LibraryLocation, openCudaLibrary } from "./discovery.ts";
import {
  CU_DEVICE_ATTRIBUTE,
  CU_RESULT,
  DRIVER_SYMBOLS,
  type DriverSymbols,
} from "./driver_symbols.ts";
import { cString, CudaLibraryError, CudaUnavailableError, decodeCString } from "./errors.ts";

/** The oldest driver API version the bound (CUDA 13) names and the cu13 wheels work with. */
export const MIN_DRIVER_VERSION = 13000;

/** A loaded and initialised CUDA driver. */
export interface CudaDriver {
  /** The bound driver functions. */
  readonly symbols: DriverSymbols;
  /** Where `libcuda.so.1` was found. */
  readonly location: LibraryLocation;
  /** `cuDriverGetVersion`: 1000 * major + 10 * minor (13000 is CUDA 13.0). */
  readonly version: number;
  /** The number of CUDA devices. */
  readonly deviceCount: number;
  /** Throws a {@link CudaLibraryError} `Cannot <what>: CUDA_ERROR_...` unless `status` is 0. */
  check(status: number, what: string): void;
  /** `cuGetErrorName` of a status (`CUDA_ERROR_UNKNOWN_STATUS_<n>` when the driver knows none). */
  errorName(status: number): string;
  /** Unloads the driver library. */
  close(): void;
}

/** `13.0` from 13000. */
export function formatCudaVersion(v: number): string {
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

function driverStrings(symbols: DriverSymbols, status: number): { name: string; text: string } {
  const out = new BigUint64Array(1);
  const nameOk = symbols.cuGetErrorName(status, out) === 0;
  const name = nameOk ? cString(Deno.UnsafePointer.create(out[0])) : "";
  out[0] = 0n;
  const textOk = symbols.cuGetErrorString(status, out) === 0;
  const text = textOk ? cString(Deno.UnsafePointer.create(out[0])) : "";
  return { name: name || `CUDA_ERROR_UNKNOWN_STATUS_${status}`, text };
}

/**
 * Loads `libcuda.so.1` (see `discovery.ts`), runs `cuInit` and counts the devices. Throws
 * {@link CudaUnavailableError} when there is no driver, the driver is older than CUDA 13, or it
 * reports no device, so that `auto` backend selection can fall back.
 */
export function loadDriver(opts: DiscoveryOptions = {}): CudaDriver {
  const { lib, location } = openCudaLibrary("cuda", DRIVER_SYMBOLS, opts);
  const s = lib.symbols;
  const fail = (message: string): never => {
    lib.close();
    throw new CudaUnavailableError(message);
  };
  const from = `'${location.path}'`;
  const init = s.cuInit(0);
  if (init !== CU_RESULT.SUCCESS) {
    const { name, text } = driverStrings(s, init);
    if (init === CU_RESULT.ERROR_NO_DEVICE) {
      fail(`The CUDA driver (${from}) reports no CUDA device: cuInit returned ${name} (${text})`);
    }
    if (init === CU_RESULT.ERROR_STUB_LIBRARY) {
      fail(`${from} is the CUDA toolkit's stub library, not a driver (cuInit returned ${name})`);
    }
    fail(`Cannot initialise the CUDA driver (${from}): cuInit returned ${name} (${text})`);
  }
  const v = new Int32Array(1);
  if (s.cuDriverGetVersion(v) !== 0) fail(`Cannot read the CUDA driver version from ${from}`);
  const version = v[0];
  if (version < MIN_DRIVER_VERSION) {
    fail(
      `The CUDA driver (${from}) supports CUDA ${formatCudaVersion(version)}, but these bindings ` +
        `and the cu13 libraries need CUDA ${formatCudaVersion(MIN_DRIVER_VERSION)} or newer: ` +
        `update the NVIDIA driver`,
    );
  }
  const count = new Int32Array(1);
  const cs = s.cuDeviceGetCount(count);
  if (cs !== 0) {
    const { name, text } = driverStrings(s, cs);
    fail(`Cannot count CUDA devices (${from}): cuDeviceGetCount returned ${name} (${text})`);
  }
  if (count[0] < 1) fail(`The CUDA driver (${from}) reports no CUDA device`);
  let closed = false;
  return {
    symbols: s,
    location,
    version,
    deviceCount: count[0],
    check(status: number, what: string): void {
      if (status === 0) return;
      const { name, text } = driverStrings(s, status);
      throw new CudaLibraryError("cuda", status, name, text, what);
    },
    errorName: (status: number) => driverStrings(s, status).name,
    close(): void {
      if (closed) return;
      closed = true;
      lib.close();
    },
  };
}

/** A device with its primary context current on the calling thread. */
export interface CudaDevice {
  /** The device ordinal. */
  readonly ordinal: number;
  /** The `CUdevice` handle. */
  readonly device: number;
  /** The retained primary context. */
  readonly context: Deno.PointerObject;
  /** `cuDeviceGetName`, e.g. `NVIDIA H200`. */
  readonly name: string;
  /** Compute capability `[major, minor]`, e.g. `[9, 0]`. */
  readonly computeCapability: readonly [number, number];
  /** Streaming multiprocessors. */
  readonly multiprocessors: number;
  /** Device memory in bytes. */
  readonly totalMemory: bigint;
  /** Whether `cuMemAllocAsync` (stream-ordered pools) is supported. */
  readonly memoryPools: boolean;
  /** Synchronises and releases the primary context. */
  release(): void;
}

/**
 * Retains device `ordinal`'s primary context and makes it current on this thread, then reads the
 * device's name and properties.
 */
export function openDevice(driver: CudaDriver, ordinal = 0): CudaDevice {
  if (!Number.isInteger(ordinal) || ordinal < 0 || ordinal >= driver.deviceCount) {
    throw new RangeError(
      `Cannot open CUDA device ${ordinal}: there are ${driver.deviceCount} (ordinals 0 to ` +
        `${driver.deviceCount - 1})`,
    );
  }
  const s = driver.symbols;
  const dev = new Int32Array(1);
  driver.check(s.cuDeviceGet(dev, ordinal), `get CUDA device ${ordinal}`);
  const device = dev[0];
  const nameBuf = new Uint8Array(256);
  driver.check(s.cuDeviceGetName(nameBuf, nameBuf.length, device), `read device ${ordinal}'s name`);
  const attr = (a: number, what: string): number => {
    const out = new Int32Array(1);
    driver.check(s.cuDeviceGetAttribute(out, a, device), `read device ${ordinal}'s ${what}`);
    return out[0];
  };
  const A = CU_DEVICE_ATTRIBUTE;
  const major = attr(A.COMPUTE_CAPABILITY_MAJOR, "compute capability");
  const minor = attr(A.COMPUTE_CAPABILITY_MINOR, "compute capability");
  const multiprocessors = attr(A.MULTIPROCESSOR_COUNT, "multiprocessor count");
  const memoryPools = attr(A.MEMORY_POOLS_SUPPORTED, "memory pool support") !== 0;
  const total = new BigUint64Array(1);
  driver.check(s.cuDeviceTotalMem_v2(total, device), `read device ${ordinal}'s memory size`);
  const ctx = new BigUint64Array(1);
  driver.check(s.cuDevicePrimaryCtxRetain(ctx, device), `retain device ${ordinal}'s context`);
  const context = Deno.UnsafePointer.create(ctx[0]);
  if (context === null) throw new Error(`cuDevicePrimaryCtxRetain returned a null context`);
  const setStatus = s.cuCtxSetCurrent(context);
  if (setStatus !== 0) {
    s.cuDevicePrimaryCtxRelease_v2(device);
    driver.check(setStatus, `make device ${ordinal}'s context current`);
  }
  let released = false;
  return {
    ordinal,
    device,
    context,
    name: decodeCString(nameBuf),
    computeCapability: [major, minor],
    multiprocessors,
    totalMemory: total[0],
    memoryPools,
    release(): void {
      if (released) return;
      released = true;
      driver.check(s.cuCtxSynchronize(), `synchronise device ${ordinal} before releasing it`);
      driver.check(s.cuDevicePrimaryCtxRelease_v2(device), `release device ${ordinal}'s context`);
    },
  };
}
