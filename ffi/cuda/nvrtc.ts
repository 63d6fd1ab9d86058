/**
 * NVRTC (`libnvrtc.so.13`, `nvrtc.h` of CUDA 13.0): runtime compilation of CUDA C++ to PTX, an
 * optional fallback when no prebuilt kernel image fits the device. It needs no GPU. NVRTC opens
 * `libnvrtc-builtins.so.13.0` by soname when compiling, so that file is loaded first by absolute
 * path from NVRTC's own folder (without it every compile fails with
 * NVRTC_ERROR_BUILTIN_OPERATION_FAILURE).
 *
 * @module
 */

import { dirname, join } from "node:path";
import {
  CUDA_LIBRARIES,
  type DiscoveryOptions,
  type LibraryLocation,
  locateCudaLibrary,
  openCudaLibrary,
} from "./discovery.ts";
import { cString, cStringBuffer, CudaLibraryError, CudaUnavailableError } from "./errors.ts";

/** Symbols of `libnvrtc.so.13`. */
export const NVRTC_SYMBOLS = {
  nvrtcVersion: { parameters: ["buffer", "buffer"], result: "i32" },
  nvrtcGetErrorString: { parameters: ["i32"], result: "pointer" },
  nvrtcCreateProgram: {
    parameters: ["buffer", "buffer", "buffer", "i32", "pointer", "pointer"],
    result: "i32",
  },
  nvrtcCompileProgram: { parameters: ["pointer", "i32", "buffer"], result: "i32" },
  nvrtcGetPTXSize: { parameters: ["pointer", "buffer"], result: "i32" },
  nvrtcGetPTX: { parameters: ["pointer", "buffer"], result: "i32" },
  nvrtcGetProgramLogSize: { parameters: ["pointer", "buffer"], result: "i32" },
  nvrtcGetProgramLog: { parameters: ["pointer", "buffer"], result: "i32" },
  nvrtcDestroyProgram: { parameters: ["buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** `nvrtcResult` values the bindings test for. */
export const NVRTC_RESULT = { SUCCESS: 0, COMPILATION: 6, BUILTIN_OPERATION_FAILURE: 7 } as const;

/** A loaded NVRTC. */
export interface NvrtcLibrary {
  readonly symbols: Deno.DynamicLibrary<typeof NVRTC_SYMBOLS>["symbols"];
  readonly location: LibraryLocation;
  /** Where the builtins library was loaded from (null: left to the system loader). */
  readonly builtins: string | null;
  /** `major.minor` from `nvrtcVersion`. */
  readonly version: string;
  /** Throws a {@link CudaLibraryError} `Cannot <what>: NVRTC_ERROR_...` unless `status` is 0. */
  check(status: number, what: string, detail?: string): void;
  close(): void;
}

function findBuiltins(dir: string): string | null {
  try {
    const names = [...Deno.readDirSync(dir)].map((e) => e.name)
      .filter((n) => /^libnvrtc-builtins\.so\.13(\.\d+)*$/.test(n)).sort();
    return names.length > 0 ? join(dir, names[names.length - 1]) : null;
  } catch {
    return null;
  }
}

/** Loads NVRTC and its builtins (see `discovery.ts`). NVRTC is never emulated. */
export function loadNvrtc(opts: DiscoveryOptions = {}): NvrtcLibrary {
  const location = locateCudaLibrary("nvrtc", opts);
  if (location === null) throw new Error("internal: NVRTC has no optional stand-in");
  let builtinsLib: Deno.DynamicLibrary<Record<string, never>> | null = null;
  let builtins: string | null = null;
  if (location.path.includes("/")) {
    builtins = findBuiltins(dirname(location.path));
    if (builtins === null) {
      throw new CudaUnavailableError(
        `Cannot use NVRTC from '${location.path}': libnvrtc-builtins.so.13.* is not next to it ` +
          `(every compile would fail); reinstall the nvidia-cuda-nvrtc wheel or set ` +
          `${CUDA_LIBRARIES.nvrtc.env} to a complete installation`,
      );
    }
    try {
      builtinsLib = Deno.dlopen(builtins, {});
    } catch (e) {
      throw new CudaUnavailableError(
        `Cannot load NVRTC's builtins '${builtins}': ${(e as Error).message}`,
      );
    }
  }
  let lib;
  try {
    lib = openCudaLibrary("nvrtc", NVRTC_SYMBOLS, opts).lib;
  } catch (e) {
    builtinsLib?.close();
    throw e;
  }
  const s = lib.symbols;
  const major = new Int32Array(1);
  const minor = new Int32Array(1);
  const check = (status: number, what: string, detail = ""): void => {
    if (status === 0) return;
    const name = cString(s.nvrtcGetErrorString(status), `NVRTC_ERROR_${status}`);
    throw new CudaLibraryError("nvrtc", status, name, detail, what);
  };
  check(s.nvrtcVersion(major, minor), "read the NVRTC version");
  let closed = false;
  return {
    symbols: s,
    location,
    builtins,
    version: `${major[0]}.${minor[0]}`,
    check,
    close(): void {
      if (closed) return;
      closed = true;
      lib.close();
      builtinsLib?.close();
    },
  };
}

/** Options of {@link compileToPtx}. */
export interface CompileOptions {
  /** The program's file name in messages (default `kernel.cu`). */
  name?: string;
  /** Compiler options, e.g. `--gpu-architecture=compute_90`, `-default-device`. */
  options?: readonly string[];
}

/** The result of a compile: NUL-terminated PTX (ready for `loadModule`) and the log. */
export interface CompileResult {
  readonly ptx: Uint8Array;
  readonly log: string;
}

/** Compiles CUDA C++ `source` to PTX; a failed compile throws with NVRTC's log in the message. */
export function compileToPtx(
  nvrtc: NvrtcLibrary,
  source: string,
  opts: CompileOptions = {},
): CompileResult {
  const s = nvrtc.symbols;
  const name = opts.name ?? "kernel.cu";
  const progOut = new BigUint64Array(1);
  nvrtc.check(
    s.nvrtcCreateProgram(progOut, cStringBuffer(source), cStringBuffer(name), 0, null, null),
    `create the NVRTC program '${name}'`,
  );
  const prog = Deno.UnsafePointer.create(progOut[0]);
  if (prog === null) throw new Error("nvrtcCreateProgram returned a null program");
  try {
    const optBufs = (opts.options ?? []).map(cStringBuffer);
    const optPtrs = new BigUint64Array(
      optBufs.map((b) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)))),
    );
    const status = s.nvrtcCompileProgram(prog, optBufs.length, optPtrs);
    const logSize = new BigUint64Array(1);
    nvrtc.check(s.nvrtcGetProgramLogSize(prog, logSize), `read the log size of '${name}'`);
    const logBytes = new Uint8Array(Number(logSize[0]) || 1);
    nvrtc.check(s.nvrtcGetProgramLog(prog, logBytes), `read the log of '${name}'`);
    const log = new TextDecoder().decode(logBytes.subarray(0, Math.max(0, logBytes.length - 1)));
    nvrtc.check(status, `compile '${name}' (${(opts.options ?? []).join(" ")})`, log.trim());
    const size = new BigUint64Array(1);
    nvrtc.check(s.nvrtcGetPTXSize(prog, size), `read the PTX size of '${name}'`);
    const ptx = new Uint8Array(Number(size[0]));
    nvrtc.check(s.nvrtcGetPTX(prog, ptx), `read the PTX of '${name}'`);
    return { ptx, log };
  } finally {
    s.nvrtcDestroyProgram(progOut);
  }
}
