/**
 * Finding, loading and checking oneDNN: library discovery (`RESSL_DNNL_PATH`, then the dynamic
 * loader's search path, then the usual Debian location), the version check that refuses any version
 * other than the one whose struct layouts are pinned in `constants.ts`, status checking, and the
 * OpenMP thread count.
 *
 * @module
 */

import { DNNL_OFFSET, DNNL_PINNED_VERSION, DNNL_STATUS_NAMES } from "./constants.ts";
import { DNNL_SYMBOLS, type DnnlSymbols, GOMP_SYMBOLS } from "./symbols.ts";
import { preferPassiveOpenMp } from "./openmp_env.ts";

/** The environment variable naming the oneDNN library file to load instead of the default. */
export const DNNL_PATH_ENV = "RESSL_DNNL_PATH";

/** What to do where oneDNN is missing (printed by every "cannot load" error). */
export const DNNL_INSTALL_HINT =
  `install it with 'apt-get install libdnnl2' (oneDNN 2.6.3), or set ${DNNL_PATH_ENV} to the path of libdnnl.so.2`;

/** Thrown when oneDNN cannot be loaded or is not the pinned version. */
export class DnnlUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DnnlUnavailableError";
  }
}

/** A loaded oneDNN library with its version and thread control. */
export interface DnnlLibrary {
  /** The bound C functions. */
  readonly symbols: DnnlSymbols;
  /** The path or soname that was loaded. */
  readonly path: string;
  /** `major.minor.patch` as reported by `dnnl_version()`. */
  readonly version: string;
  /** How OpenMP threads wait at barriers (see `openmp_env.ts`). */
  readonly openmpWait: string;
  /** Sets the number of OpenMP threads oneDNN uses for calls made from this thread. */
  setThreads(n: number): void;
  /** The number of OpenMP threads calls from this thread use. */
  threads(): number;
  /** Unloads the libraries; using `symbols` afterwards is an error. */
  close(): void;
}

/** Options of {@link loadDnnl}. */
export interface LoadDnnlOptions {
  /** Library file to load; defaults to `$RESSL_DNNL_PATH`, then `libdnnl.so.2`. */
  path?: string;
}

/** Throws `Cannot <what>: <status name> (status <n>)` unless `status` is `dnnl_success`. */
export function checkStatus(status: number, what: string): void {
  if (status !== 0) {
    const name = DNNL_STATUS_NAMES[status] ?? "unknown status";
    throw new Error(`Cannot ${what}: ${name} (status ${status})`);
  }
}

function envPath(): string | undefined {
  try {
    return Deno.env.get(DNNL_PATH_ENV) || undefined;
  } catch {
    return undefined; // no --allow-env: use the default search
  }
}

function candidates(explicit: string | undefined): string[] {
  if (explicit !== undefined) return [explicit];
  return ["libdnnl.so.2", "/usr/lib/x86_64-linux-gnu/libdnnl.so.2", "/usr/local/lib/libdnnl.so.2"];
}

function open(
  paths: string[],
): { lib: Deno.DynamicLibrary<typeof DNNL_SYMBOLS>; path: string } {
  const errors: string[] = [];
  for (const path of paths) {
    try {
      return { lib: Deno.dlopen(path, DNNL_SYMBOLS), path };
    } catch (e) {
      errors.push(`${path}: ${(e as Error).message}`);
    }
  }
  throw new DnnlUnavailableError(
    `Cannot load oneDNN (${errors.join("; ")}): ${DNNL_INSTALL_HINT}`,
  );
}

function readVersion(symbols: DnnlSymbols): { major: number; minor: number; patch: number } {
  const p = symbols.dnnl_version();
  if (p === null) {
    throw new DnnlUnavailableError("Cannot read the oneDNN version: dnnl_version() returned null");
  }
  const view = new Deno.UnsafePointerView(p);
  return { major: view.getInt32(0), minor: view.getInt32(4), patch: view.getInt32(8) };
}

/** The commit hash oneDNN was built from (`N/A` for distribution builds). */
export function dnnlBuildHash(symbols: DnnlSymbols): string {
  const p = symbols.dnnl_version();
  if (p === null) return "N/A";
  const hash = new Deno.UnsafePointerView(p).getPointer(DNNL_OFFSET.versionHash);
  return hash === null ? "N/A" : Deno.UnsafePointerView.getCString(hash);
}

/**
 * Loads oneDNN and checks that it is the pinned version (2.6.3): the descriptor structs are filled
 * by the library but allocated here, so their sizes must match. Throws {@link DnnlUnavailableError}
 * with an installation hint when the library is missing or another version.
 */
export function loadDnnl(opts: LoadDnnlOptions = {}): DnnlLibrary {
  // Before oneDNN (and with it libgomp) is loaded: libgomp reads its wait policy once, at load.
  const openmpWait = preferPassiveOpenMp().description;
  const { lib, path } = open(candidates(opts.path ?? envPath()));
  const v = readVersion(lib.symbols);
  const want = DNNL_PINNED_VERSION;
  const version = `${v.major}.${v.minor}.${v.patch}`;
  if (v.major !== want.major || v.minor !== want.minor || v.patch !== want.patch) {
    lib.close();
    throw new DnnlUnavailableError(
      `Cannot use oneDNN ${version} from '${path}': this backend is built against oneDNN ` +
        `${want.major}.${want.minor}.${want.patch} (its struct sizes and enum values are pinned to ` +
        `that version); ${DNNL_INSTALL_HINT}`,
    );
  }
  let gomp: Deno.DynamicLibrary<typeof GOMP_SYMBOLS>;
  try {
    // oneDNN links libgomp.so.1; opening it by soname returns the instance oneDNN already uses.
    gomp = Deno.dlopen("libgomp.so.1", GOMP_SYMBOLS);
  } catch (e) {
    lib.close();
    throw new DnnlUnavailableError(
      `Cannot load the OpenMP runtime oneDNN uses (libgomp.so.1): ${(e as Error).message}`,
    );
  }
  let closed = false;
  return {
    symbols: lib.symbols,
    path,
    version,
    openmpWait,
    setThreads(n: number): void {
      if (!Number.isInteger(n) || n < 1) {
        throw new RangeError(`Cannot set the oneDNN thread count to ${n}: use an integer >= 1`);
      }
      gomp.symbols.omp_set_num_threads(n);
    },
    threads: () => gomp.symbols.omp_get_max_threads(),
    close(): void {
      if (closed) return;
      closed = true;
      gomp.close();
      lib.close();
    },
  };
}
