/**
 * Finding the NVIDIA libraries (driver, cuBLAS, cuDNN, NVRTC, NCCL) and opening them with a symbol
 * table.
 *
 * Search order for each library (the first existing file wins):
 * 1. its own override variable, a file path (`RESSL_LIBCUDA`, `RESSL_LIBCUBLAS`, `RESSL_LIBCUBLASLT`,
 *    `RESSL_LIBCUDNN`, `RESSL_LIBNVRTC`, `RESSL_LIBNCCL`): used as given, never searched past;
 * 2. the folders of `RESSL_CUDA_LIB_PATH` (colon-separated);
 * 3. `$CUDA_HOME` (or `$CUDA_PATH`): `lib64`, `lib`, `targets/x86_64-linux/lib`;
 * 4. the folders of `LD_LIBRARY_PATH`;
 * 5. this repository's `.cache/nvidia/nvidia/<name>/lib` (what `scripts/setup_cuda.sh` installs);
 * 6. the `nvidia/<name>/lib` folders of Python's site-packages (cu13 wheels: `nvidia/cu13/lib`, cuDNN
 *    `nvidia/cudnn/lib`, NCCL `nvidia/nccl/lib`), asked from `python3` once per process;
 * 7. the plain soname, for the system loader (ld.so cache, `/usr/lib/...`).
 * The driver (`libcuda.so.1`) comes with the NVIDIA driver, not with the wheels: steps 5-6 are
 * skipped for it.
 *
 * Emulation: `RESSL_CUDA_EMULATION=1` loads the stand-in driver, cuBLAS(Lt), cuDNN and NCCL built
 * from this repository into `build/emulator/lib/` (override: `RESSL_CUDA_EMULATOR_DIR`) instead, and
 * nothing else for those libraries; NVRTC is still the real one.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CudaUnavailableError } from "./errors.ts";

/** The libraries discovery knows. */
export type CudaLibraryId = "cuda" | "cublasLt" | "cublas" | "cudnn" | "nvrtc" | "nccl";

/** How one library is found. */
export interface CudaLibrarySpec {
  /** The file name (soname) searched for. */
  readonly file: string;
  /** The variable naming the file to load instead. */
  readonly env: string;
  /** What it is, for messages. */
  readonly what: string;
  /** Searched in Python's and this repository's wheel folders. */
  readonly inWheels: boolean;
  /** Replaced by a stand-in under emulation: required, optional (loaded when built) or not at all. */
  readonly emulated: "required" | "optional" | "no";
}

/** The libraries, their sonames and override variables. */
export const CUDA_LIBRARIES: Readonly<Record<CudaLibraryId, CudaLibrarySpec>> = {
  cuda: {
    file: "libcuda.so.1",
    env: "RESSL_LIBCUDA",
    what: "the CUDA driver",
    inWheels: false,
    emulated: "required",
  },
  cublasLt: {
    file: "libcublasLt.so.13",
    env: "RESSL_LIBCUBLASLT",
    what: "cuBLASLt",
    inWheels: true,
    emulated: "optional",
  },
  cublas: {
    file: "libcublas.so.13",
    env: "RESSL_LIBCUBLAS",
    what: "cuBLAS",
    inWheels: true,
    emulated: "required",
  },
  cudnn: {
    file: "libcudnn.so.9",
    env: "RESSL_LIBCUDNN",
    what: "cuDNN 9",
    inWheels: true,
    emulated: "required",
  },
  nvrtc: {
    file: "libnvrtc.so.13",
    env: "RESSL_LIBNVRTC",
    what: "NVRTC",
    inWheels: true,
    emulated: "no",
  },
  nccl: {
    file: "libnccl.so.2",
    env: "RESSL_LIBNCCL",
    what: "NCCL",
    inWheels: true,
    emulated: "required",
  },
};

/** Extra search folders (colon-separated), searched before `CUDA_HOME`. */
export const CUDA_LIB_PATH_ENV = "RESSL_CUDA_LIB_PATH";
/** `1` loads the emulated device's stand-in libraries. */
export const CUDA_EMULATION_ENV = "RESSL_CUDA_EMULATION";
/** The folder holding the stand-in libraries (default `<repo>/build/emulator/lib`). */
export const CUDA_EMULATOR_DIR_ENV = "RESSL_CUDA_EMULATOR_DIR";
/** The command that builds the stand-in libraries. */
export const EMULATOR_BUILD_COMMAND = "bash emulator/build.sh";

/** Where discovery looks; every field defaults to this process's environment. */
export interface DiscoveryOptions {
  /** The environment variables to read (default: the process's; unreadable without --allow-env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** The repository root (default: found from this file; null when imported by URL). */
  repoRoot?: string | null;
  /** The `nvidia` package folders of Python (default: asked from `python3`); `[]` skips Python. */
  pythonNvidiaDirs?: readonly string[];
  /** Try the plain soname last, for the system loader (default true). */
  systemSearch?: boolean;
}

/** Where a library was found. */
export interface LibraryLocation {
  /** The library this is. */
  readonly id: CudaLibraryId;
  /** An absolute file path, or the plain soname for the system loader. */
  readonly path: string;
  /** How it was found (e.g. `RESSL_LIBCUBLAS`, `LD_LIBRARY_PATH`, `the system loader`). */
  readonly source: string;
  /** True when this is an emulator stand-in. */
  readonly emulated: boolean;
}

function readEnv(opts: DiscoveryOptions, name: string): string | undefined {
  if (opts.env !== undefined) return opts.env[name] || undefined;
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined; // no --allow-env: the default search only
  }
}

/** The repository root this file lives in, or null when loaded from a URL. */
export function repoRootFromModule(): string | null {
  const url = new URL("../../", import.meta.url);
  return url.protocol === "file:" ? fileURLToPath(url) : null;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function subLibDirs(root: string): string[] {
  const out: string[] = [];
  try {
    const names = [...Deno.readDirSync(root)].filter((e) => e.isDirectory || e.isSymlink)
      .map((e) => e.name).sort();
    for (const name of names) out.push(join(root, name, "lib"));
  } catch {
    // an absent or unreadable folder has no libraries
  }
  return out;
}

let pythonDirsMemo: string[] | undefined;

/**
 * The folders of Python's `nvidia` namespace package (`nvidia.__path__`), asked from `python3` once
 * per process; empty when Python, the package or --allow-run is missing.
 */
export function pythonNvidiaDirs(): string[] {
  if (pythonDirsMemo !== undefined) return pythonDirsMemo;
  let dirs: string[] = [];
  try {
    const out = new Deno.Command("python3", {
      args: ["-c", "import nvidia\nfor p in nvidia.__path__: print(p)"],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    if (out.success) {
      dirs = new TextDecoder().decode(out.stdout).split("\n").map((s) => s.trim()).filter(Boolean);
    }
  } catch {
    dirs = []; // no python3 or no --allow-run
  }
  pythonDirsMemo = dirs;
  return dirs;
}

/** True when `RESSL_CUDA_EMULATION` asks for the emulated device; throws on a value it cannot read. */
export function emulationRequested(opts: DiscoveryOptions = {}): boolean {
  const v = readEnv(opts, CUDA_EMULATION_ENV)?.trim().toLowerCase();
  if (v === undefined || v === "" || v === "0" || v === "false") return false;
  if (v === "1" || v === "true") return true;
  throw new CudaUnavailableError(
    `Cannot read ${CUDA_EMULATION_ENV}='${readEnv(opts, CUDA_EMULATION_ENV)}': use 1 (emulated ` +
      `device) or 0 (real libraries)`,
  );
}

/** The folder of the emulator's stand-in libraries. */
export function emulatorDir(opts: DiscoveryOptions = {}): string {
  const explicit = readEnv(opts, CUDA_EMULATOR_DIR_ENV);
  if (explicit !== undefined) return explicit;
  const root = opts.repoRoot !== undefined ? opts.repoRoot : repoRootFromModule();
  if (root === null) {
    throw new CudaUnavailableError(
      `Cannot find the emulated device's libraries: this module is not in a local checkout; set ` +
        `${CUDA_EMULATOR_DIR_ENV} to the folder holding libcuda.so.1 and the other stand-ins`,
    );
  }
  return join(root, "build", "emulator", "lib");
}

function emulatedLocation(id: CudaLibraryId, opts: DiscoveryOptions): LibraryLocation | null {
  const spec = CUDA_LIBRARIES[id];
  const dir = emulatorDir(opts);
  const path = join(dir, spec.file);
  if (isFile(path)) return { id, path, source: CUDA_EMULATION_ENV, emulated: true };
  if (spec.emulated === "optional") return null;
  throw new CudaUnavailableError(
    `${CUDA_EMULATION_ENV}=1 asks for the emulated device, but its stand-in for ${spec.what} ` +
      `('${path}') is not built: run '${EMULATOR_BUILD_COMMAND}' (or set ${CUDA_EMULATOR_DIR_ENV} ` +
      `to the folder holding the stand-ins)`,
  );
}

function searchDirs(id: CudaLibraryId, opts: DiscoveryOptions): [string, string][] {
  const spec = CUDA_LIBRARIES[id];
  const dirs: [string, string][] = [];
  const list = (v: string | undefined) => (v ?? "").split(":").filter(Boolean);
  for (const d of list(readEnv(opts, CUDA_LIB_PATH_ENV))) dirs.push([d, CUDA_LIB_PATH_ENV]);
  const home = readEnv(opts, "CUDA_HOME") ?? readEnv(opts, "CUDA_PATH");
  if (home !== undefined) {
    for (const sub of ["lib64", "lib", join("targets", "x86_64-linux", "lib")]) {
      dirs.push([join(home, sub), "CUDA_HOME"]);
    }
  }
  for (const d of list(readEnv(opts, "LD_LIBRARY_PATH"))) dirs.push([d, "LD_LIBRARY_PATH"]);
  if (!spec.inWheels) return dirs;
  const root = opts.repoRoot !== undefined ? opts.repoRoot : repoRootFromModule();
  if (root !== null) {
    const wheels = join(root, ".cache", "nvidia", "nvidia");
    for (const d of subLibDirs(wheels)) dirs.push([d, "scripts/setup_cuda.sh's .cache/nvidia"]);
  }
  for (const py of opts.pythonNvidiaDirs ?? pythonNvidiaDirs()) {
    for (const d of subLibDirs(py)) dirs.push([d, "Python's nvidia wheels"]);
  }
  return dirs;
}

/** What to do when a library is missing. */
export function installHint(id: CudaLibraryId): string {
  const spec = CUDA_LIBRARIES[id];
  if (id === "cuda") {
    return `there is no NVIDIA driver here (${spec.file} comes with it); set ${spec.env} to its ` +
      `path, or use the emulated device with ${CUDA_EMULATION_ENV}=1 (built by ` +
      `'${EMULATOR_BUILD_COMMAND}')`;
  }
  return `install NVIDIA's wheels with 'bash scripts/setup_cuda.sh' (into .cache/nvidia) or pip, ` +
    `or set ${spec.env} to the file or ${CUDA_LIB_PATH_ENV} to its folder`;
}

/**
 * Finds a library (see the module documentation for the order). Returns null only for an optional
 * stand-in that is not built. Throws {@link CudaUnavailableError} when an override names a missing
 * file, or a required stand-in is not built.
 */
export function locateCudaLibrary(
  id: CudaLibraryId,
  opts: DiscoveryOptions = {},
): LibraryLocation | null {
  const spec = CUDA_LIBRARIES[id];
  if (spec.emulated !== "no" && emulationRequested(opts)) return emulatedLocation(id, opts);
  const override = readEnv(opts, spec.env);
  if (override !== undefined) {
    if (!isFile(override)) {
      throw new CudaUnavailableError(
        `Cannot load ${spec.what}: ${spec.env}='${override}' is not a file (unset it to search ` +
          `the usual places, or point it at ${spec.file})`,
      );
    }
    return { id, path: override, source: spec.env, emulated: false };
  }
  for (const [dir, source] of searchDirs(id, opts)) {
    const path = join(dir, spec.file);
    if (isFile(path)) return { id, path, source, emulated: false };
  }
  return { id, path: spec.file, source: "the system loader", emulated: false };
}

/** The folders {@link locateCudaLibrary} searches for `id` (for messages and diagnostics). */
export function searchedFolders(id: CudaLibraryId, opts: DiscoveryOptions = {}): string[] {
  return searchDirs(id, opts).map(([d]) => d);
}

/** A library opened with its symbol table. */
export interface OpenedLibrary<S extends Deno.ForeignLibraryInterface> {
  readonly lib: Deno.DynamicLibrary<S>;
  readonly location: LibraryLocation;
}

/**
 * Opens a located library with `symbols`. Throws {@link CudaUnavailableError} naming the file, how
 * it was found and what to do when it cannot be loaded or lacks a symbol, or when only the system
 * loader is left and `opts.systemSearch` is false.
 */
export function openLocated<S extends Deno.ForeignLibraryInterface>(
  location: LibraryLocation,
  symbols: S,
  opts: DiscoveryOptions = {},
): OpenedLibrary<S> {
  const spec = CUDA_LIBRARIES[location.id];
  const bySystem = location.source === "the system loader";
  const searched = searchedFolders(location.id, opts);
  const folders = searched.length > 0 ? `in ${searched.join(", ")}` : "";
  const notFound = (systemError?: string) => {
    const where = systemError === undefined
      ? folders || "(no search folder configured)"
      : `${folders ? folders + " or " : ""}by the system loader (${systemError})`;
    return `Cannot load ${spec.what} (${spec.file}): not found ${where}; ${
      installHint(location.id)
    }`;
  };
  const noDriver = bySystem && location.id === "cuda";
  if (bySystem && opts.systemSearch === false) {
    throw new CudaUnavailableError(notFound(), { noDriver });
  }
  try {
    return { lib: Deno.dlopen(location.path, symbols), location };
  } catch (e) {
    const msg = (e as Error).message;
    if (bySystem) {
      throw new CudaUnavailableError(notFound(msg), { cause: e, noDriver });
    }
    throw new CudaUnavailableError(
      `Cannot load ${spec.what} from '${location.path}' (found through ${location.source}): ` +
        `${msg}${msg.includes("symbol") ? " (a different library version?)" : ""}`,
      { cause: e },
    );
  }
}

/** Locates and opens a required library (see {@link locateCudaLibrary}, {@link openLocated}). */
export function openCudaLibrary<S extends Deno.ForeignLibraryInterface>(
  id: Exclude<CudaLibraryId, "cublasLt">,
  symbols: S,
  opts: DiscoveryOptions = {},
): OpenedLibrary<S> {
  const location = locateCudaLibrary(id, opts);
  if (location === null) throw new Error(`internal: ${id} has no optional stand-in`);
  return openLocated(location, symbols, opts);
}

const RTLD_LAZY = 0x1;
const RTLD_NOLOAD = 0x4;
const RTLD_DI_LINKMAP = 2;

/**
 * The folder the dynamic loader loaded `file` from, when a library of that name (or soname) is
 * loaded in this process: `dlopen(file, RTLD_NOLOAD)` finds the very object a `Deno.dlopen(file)`
 * got, and `dlinfo(RTLD_DI_LINKMAP)` gives its path. Null when it is not loaded or libc cannot say.
 */
function loaderFolder(file: string): string | null {
  let libc;
  try {
    libc = Deno.dlopen("libc.so.6", {
      dlopen: { parameters: ["buffer", "i32"], result: "pointer" },
      dlinfo: { parameters: ["pointer", "i32", "buffer"], result: "i32" },
      dlclose: { parameters: ["pointer"], result: "i32" },
    });
  } catch {
    return null; // not glibc
  }
  try {
    const name = new TextEncoder().encode(file + "\0");
    const handle = libc.symbols.dlopen(name, RTLD_LAZY | RTLD_NOLOAD);
    if (handle === null) return null;
    try {
      const out = new BigUint64Array(1);
      if (libc.symbols.dlinfo(handle, RTLD_DI_LINKMAP, out) !== 0 || out[0] === 0n) return null;
      // struct link_map { ElfW(Addr) l_addr; char* l_name; ... }
      const map = Deno.UnsafePointer.create(out[0])!;
      const namePtr = new Deno.UnsafePointerView(map).getPointer(8);
      if (namePtr === null) return null;
      const path = Deno.UnsafePointerView.getCString(namePtr);
      if (!path.includes("/")) return null;
      try {
        return Deno.realPathSync(dirname(path));
      } catch {
        return dirname(path);
      }
    } finally {
      libc.symbols.dlclose(handle);
    }
  } catch {
    return null;
  } finally {
    libc.close();
  }
}

/**
 * The folder a library was loaded from: first as the dynamic loader reports the object that
 * `dlopen(file)` resolves to (so with several libraries of that file name mapped, e.g. the
 * emulator's stand-in and NVIDIA's in one test process, the one the loader actually uses), else
 * the first `/proc/self/maps` entry of that name (which shows the resolved file, e.g.
 * `libcudnn.so.9.1.0` for `libcudnn.so.9`); null if it is not mapped.
 */
export function mappedFolder(file: string): string | null {
  const loaded = loaderFolder(file);
  if (loaded !== null) return loaded;
  try {
    for (const line of Deno.readTextFileSync("/proc/self/maps").split("\n")) {
      if (!line.includes("/")) continue;
      const path = line.slice(line.indexOf("/")).trim();
      const base = basename(path);
      if (base === file || base.startsWith(file + ".")) return dirname(path);
    }
  } catch {
    // no /proc or no --allow-read
  }
  return null;
}
