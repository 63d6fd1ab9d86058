/**
 * Finding, loading and checking an MPI library, and one handle-free face over both ABIs: the
 * caller names datatypes and operators (`"f32"`, `"sum"`) and this file passes OpenMPI's global
 * addresses or MPICH's int constants. Which library: an explicit path (`RESSL_MPI_LIB`), else the
 * soname of the flavor the launcher implies; the flavor actually loaded is read from
 * `MPI_Get_library_version`, never guessed from the file name.
 *
 * @module
 */

import {
  MPI_ERROR_STRING_BYTES,
  MPI_IN_PLACE_VALUE,
  MPI_LIBRARY_VERSION_BYTES,
  MPI_SONAMES,
  MPICH_HANDLES,
  type MpiDtype,
  type MpiFlavor,
  type MpiReduceOp,
  OMPI_GLOBALS,
} from "./constants.ts";
import { MPI_PROBE_SYMBOLS, MPICH_SYMBOLS, OMPI_STATICS, OMPI_SYMBOLS } from "./symbols.ts";

/** The environment variable naming the MPI library file to load instead of the default. */
export const MPI_LIB_ENV = "RESSL_MPI_LIB";

/** What to do where MPI is missing (printed by every "cannot load" error). */
export const MPI_INSTALL_HINT =
  `install the engines with 'bash scripts/setup_mpi.sh' (apt: openmpi-bin libopenmpi3 mpich), ` +
  `or set ${MPI_LIB_ENV} to the path of libmpi.so.40 (OpenMPI) or libmpich.so.12 (MPICH)`;

/** Thrown when no usable MPI library can be loaded. */
export class MpiUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MpiUnavailableError";
  }
}

/** A typed array MPI reads or writes (its `byteOffset` is honoured). */
export type MpiBuffer = Float32Array | Float64Array | Int32Array | Uint8Array | Uint16Array;

/** A loaded MPI library behind one face for both ABIs. Every method returns the MPI error code. */
export interface MpiLibrary {
  /** The handle convention of the loaded library. */
  readonly flavor: MpiFlavor;
  /** The path or soname that was loaded. */
  readonly path: string;
  /** The first line of `MPI_Get_library_version`. */
  readonly version: string;
  /** `MPI_Initialized`. */
  initialized(): boolean;
  /** `MPI_Finalized`. */
  finalized(): boolean;
  /** `MPI_Init_thread(NULL, NULL, required, &provided)`; `provided[0]` receives the level. */
  initThread(required: number, provided: Int32Array): number;
  /** `MPI_Finalize`. */
  finalize(): number;
  /** `MPI_Comm_rank(MPI_COMM_WORLD, out)`. */
  worldRank(out: Int32Array): number;
  /** `MPI_Comm_size(MPI_COMM_WORLD, out)`. */
  worldSize(out: Int32Array): number;
  /** `MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN)`. */
  setErrorsReturn(): number;
  /**
   * `MPI_Error_string` of a code, or `MPI error <code>` where that fails. Only after
   * `initThread`: OpenMPI aborts the process when it is called before.
   */
  errorString(code: number): string;
  /** `MPI_Abort(MPI_COMM_WORLD, code)` (does not return where the library works). */
  abort(code: number): number;
  /** `MPI_Iallreduce(MPI_IN_PLACE, buf, count, …)` over the world. */
  iallreduceInPlace(
    buf: MpiBuffer,
    count: number,
    dtype: MpiDtype,
    op: MpiReduceOp,
    req: Uint8Array,
  ): number;
  /** `MPI_Iallgather(send, count, dtype, recv, count, dtype, …)` over the world. */
  iallgather(
    send: MpiBuffer,
    count: number,
    dtype: MpiDtype,
    recv: MpiBuffer,
    req: Uint8Array,
  ): number;
  /** `MPI_Iallgather(MPI_IN_PLACE, …)`: this rank's block is already in place in `recv`. */
  iallgatherInPlace(recv: MpiBuffer, count: number, dtype: MpiDtype, req: Uint8Array): number;
  /** `MPI_Ibcast(buf, count, dtype, root, …)` over the world. */
  ibcast(buf: MpiBuffer, count: number, dtype: MpiDtype, root: number, req: Uint8Array): number;
  /** `MPI_Ibarrier` over the world. */
  ibarrier(req: Uint8Array): number;
  /** `MPI_Test(req, flag, status)`. */
  test(req: Uint8Array, flag: Int32Array, status: Uint8Array): number;
  /** Unloads the library (after `finalize`); using it afterwards is an error. */
  close(): void;
}

/** Options of {@link loadMpi}. */
export interface LoadMpiOptions {
  /** Library file or soname to load; wins over `flavor`. */
  path?: string;
  /** Which engine the launcher implies: its soname is loaded where `path` is not given. */
  flavor?: MpiFlavor;
}

/** The flavor a `MPI_Get_library_version` string names, or `undefined` for an unknown library. */
export function mpiFlavorOfVersion(version: string): MpiFlavor | undefined {
  if (version.startsWith("Open MPI")) return "openmpi";
  // MPICH and the libraries sharing its ABI (Intel MPI, MVAPICH) use its int handles.
  if (/MPICH|Intel\(R\) MPI|MVAPICH/.test(version)) return "mpich";
  return undefined;
}

const decoder = new TextDecoder();

function readVersion(fn: (buf: Uint8Array, len: Int32Array) => number): string {
  const buf = new Uint8Array(MPI_LIBRARY_VERSION_BYTES);
  const len = new Int32Array(1);
  const rc = fn(buf, len);
  if (rc !== 0) return `unknown (MPI_Get_library_version returned ${rc})`;
  return decoder.decode(buf.subarray(0, Math.min(len[0], buf.length))).split("\n")[0]
    .replace(/\0.*$/, "").replace(/\s+/g, " ").trim();
}

function probe(path: string): { version: string; flavor: MpiFlavor } {
  let lib: Deno.DynamicLibrary<typeof MPI_PROBE_SYMBOLS>;
  try {
    lib = Deno.dlopen(path, MPI_PROBE_SYMBOLS);
  } catch (e) {
    throw new MpiUnavailableError(
      `Cannot load the MPI library '${path}': ${(e as Error).message}; ${MPI_INSTALL_HINT}`,
    );
  }
  try {
    const version = readVersion(lib.symbols.MPI_Get_library_version);
    const flavor = mpiFlavorOfVersion(version);
    if (flavor === undefined) {
      throw new MpiUnavailableError(
        `Cannot use the MPI library '${path}' ("${version}"): only OpenMPI and MPICH-ABI ` +
          `libraries are supported; ${MPI_INSTALL_HINT}`,
      );
    }
    return { version, flavor };
  } finally {
    lib.close();
  }
}

/** The C functions both tables share, with the handle type `H` left open. */
interface RawMpi<H> {
  MPI_Get_library_version(buf: Uint8Array, len: Int32Array): number;
  MPI_Initialized(flag: Int32Array): number;
  MPI_Finalized(flag: Int32Array): number;
  MPI_Init_thread(argc: null, argv: null, required: number, provided: Int32Array): number;
  MPI_Finalize(): number;
  MPI_Comm_rank(comm: H, out: Int32Array): number;
  MPI_Comm_size(comm: H, out: Int32Array): number;
  MPI_Comm_set_errhandler(comm: H, handler: H): number;
  MPI_Error_string(code: number, buf: Uint8Array, len: Int32Array): number;
  MPI_Abort(comm: H, code: number): number;
  MPI_Iallreduce(
    inPlace: Deno.PointerValue,
    buf: MpiBuffer,
    count: number,
    dtype: H,
    op: H,
    comm: H,
    req: Uint8Array,
  ): number;
  MPI_Iallgather(
    send: MpiBuffer,
    sendCount: number,
    sendType: H,
    recv: MpiBuffer,
    recvCount: number,
    recvType: H,
    comm: H,
    req: Uint8Array,
  ): number;
  MPI_Iallgather_in_place(
    inPlace: Deno.PointerValue,
    sendCount: number,
    sendType: H,
    recv: MpiBuffer,
    recvCount: number,
    recvType: H,
    comm: H,
    req: Uint8Array,
  ): number;
  MPI_Ibcast(
    buf: MpiBuffer,
    count: number,
    dtype: H,
    root: number,
    comm: H,
    req: Uint8Array,
  ): number;
  MPI_Ibarrier(comm: H, req: Uint8Array): number;
  MPI_Test(req: Uint8Array, flag: Int32Array, status: Uint8Array): number;
}

/** The resolved handles of one library. */
interface Handles<H> {
  commWorld: H;
  errorsReturn: H;
  dtype: Record<MpiDtype, H>;
  op: Record<MpiReduceOp, H>;
}

function wrap<H>(
  raw: RawMpi<H>,
  h: Handles<H>,
  meta: { flavor: MpiFlavor; path: string; version: string; close: () => void },
): MpiLibrary {
  const inPlace = Deno.UnsafePointer.create(MPI_IN_PLACE_VALUE[meta.flavor]);
  const flag = new Int32Array(1);
  const w = h.commWorld;
  return {
    ...meta,
    initialized: () => (raw.MPI_Initialized(flag) === 0 && flag[0] !== 0),
    finalized: () => (raw.MPI_Finalized(flag) === 0 && flag[0] !== 0),
    initThread: (required, provided) => raw.MPI_Init_thread(null, null, required, provided),
    finalize: () => raw.MPI_Finalize(),
    worldRank: (out) => raw.MPI_Comm_rank(w, out),
    worldSize: (out) => raw.MPI_Comm_size(w, out),
    setErrorsReturn: () => raw.MPI_Comm_set_errhandler(w, h.errorsReturn),
    errorString(code: number): string {
      const buf = new Uint8Array(MPI_ERROR_STRING_BYTES);
      const len = new Int32Array(1);
      if (raw.MPI_Error_string(code, buf, len) !== 0) return `MPI error ${code}`;
      return decoder.decode(buf.subarray(0, Math.min(len[0], buf.length))).trim();
    },
    abort: (code) => raw.MPI_Abort(w, code),
    iallreduceInPlace: (buf, count, dtype, op, req) =>
      raw.MPI_Iallreduce(inPlace, buf, count, h.dtype[dtype], h.op[op], w, req),
    iallgather: (send, count, dtype, recv, req) =>
      raw.MPI_Iallgather(send, count, h.dtype[dtype], recv, count, h.dtype[dtype], w, req),
    iallgatherInPlace: (recv, count, dtype, req) =>
      raw.MPI_Iallgather_in_place(inPlace, 0, h.dtype[dtype], recv, count, h.dtype[dtype], w, req),
    ibcast: (buf, count, dtype, root, req) =>
      raw.MPI_Ibcast(buf, count, h.dtype[dtype], root, w, req),
    ibarrier: (req) => raw.MPI_Ibarrier(w, req),
    test: (req, f, status) => raw.MPI_Test(req, f, status),
  };
}

function openOmpi(path: string, version: string): MpiLibrary {
  const lib = Deno.dlopen(path, { ...OMPI_SYMBOLS, ...OMPI_STATICS });
  const s = lib.symbols;
  // Deno yields a static pointer symbol's address; `ompi_mpi_comm_world_addr` stores that address.
  const stored = s.ompi_mpi_comm_world_addr === null
    ? null
    : new Deno.UnsafePointerView(s.ompi_mpi_comm_world_addr).getBigUint64(0);
  const world = Deno.UnsafePointer.value(s.ompi_mpi_comm_world);
  if (stored === null || world === 0n || stored !== BigInt(world)) {
    lib.close();
    throw new MpiUnavailableError(
      `Cannot bind OpenMPI's handles in '${path}': the static symbol ompi_mpi_comm_world gave ` +
        `${world}, but ompi_mpi_comm_world_addr holds ${stored}; this Deno no longer yields a ` +
        `static's address (denoland/deno#28111), so the OpenMPI handles cannot be formed; use ` +
        `MPICH (${MPI_LIB_ENV}=libmpich.so.12 with mpirun.mpich) or Deno 2.9.6`,
    );
  }
  const pick = (name: string): Deno.PointerValue => {
    const p = (s as unknown as Record<string, Deno.PointerValue>)[name];
    if (p === null) {
      lib.close();
      throw new MpiUnavailableError(`Cannot bind OpenMPI's handle ${name} in '${path}': null`);
    }
    return p;
  };
  const G = OMPI_GLOBALS;
  const handles: Handles<Deno.PointerValue> = {
    commWorld: pick(G.commWorld),
    errorsReturn: pick(G.errorsReturn),
    dtype: {
      f32: pick(G.dtype.f32),
      f64: pick(G.dtype.f64),
      i32: pick(G.dtype.i32),
      u8: pick(G.dtype.u8),
      u16: pick(G.dtype.u16),
    },
    op: { sum: pick(G.op.sum), max: pick(G.op.max), min: pick(G.op.min) },
  };
  return wrap<Deno.PointerValue>(s, handles, {
    flavor: "openmpi",
    path,
    version,
    close: () => lib.close(),
  });
}

function openMpich(path: string, version: string): MpiLibrary {
  const lib = Deno.dlopen(path, MPICH_SYMBOLS);
  const H = MPICH_HANDLES;
  return wrap<number>(lib.symbols, {
    commWorld: H.commWorld,
    errorsReturn: H.errorsReturn,
    dtype: { ...H.dtype },
    op: { ...H.op },
  }, { flavor: "mpich", path, version, close: () => lib.close() });
}

/**
 * Loads an MPI library: `opts.path` if given, else the soname of `opts.flavor` (default OpenMPI's).
 * The handle convention is chosen from the library's own version string. Throws
 * {@link MpiUnavailableError} with an installation hint when it is missing or not OpenMPI/MPICH.
 * Loading does not initialise MPI.
 */
export function loadMpi(opts: LoadMpiOptions = {}): MpiLibrary {
  const path = opts.path ?? MPI_SONAMES[opts.flavor ?? "openmpi"];
  const { version, flavor } = probe(path);
  return flavor === "openmpi" ? openOmpi(path, version) : openMpich(path, version);
}
