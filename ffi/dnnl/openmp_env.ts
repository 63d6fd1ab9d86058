/**
 * The OpenMP wait policy oneDNN's threads get: `OMP_WAIT_POLICY=passive` unless the user chose one.
 *
 * libgomp reads `OMP_WAIT_POLICY` and `GOMP_SPINCOUNT` once, when it is loaded (its constructor runs
 * at `dlopen` of oneDNN, which links it). By default a thread that waits at a barrier spins for
 * 300,000 iterations (milliseconds) before it sleeps; on cores shared with other processes the
 * thread it waits for is often not running, so every parallel region can burn a scheduler time
 * slice: at load 5 on the 2-core machine a training step took 3.0-4.5 s with the default policy
 * against 1.4-2.2 s with `passive` (`bench/cpu_profile.ts --threads 2`, docs/benchmarks.md). On an
 * idle machine passive costs a futex wake-up per parallel region (~10 µs, ~120 regions per step).
 *
 * The variables are read and written with libc's `getenv`/`setenv` through FFI (the cpu backend
 * needs `--allow-ffi` anyway), so the setting also applies under an `--allow-env` list that does
 * not name them (`deno task train`); libgomp is looked up with `dlopen(RTLD_NOLOAD)` first: where it
 * is already loaded (another library brought it in), setting the variable would change nothing.
 *
 * @module
 */

const LIBC_SYMBOLS = {
  getenv: { parameters: ["buffer"], result: "pointer" },
  setenv: { parameters: ["buffer", "buffer", "i32"], result: "i32" },
  dlopen: { parameters: ["buffer", "i32"], result: "pointer" },
  dlclose: { parameters: ["pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

const RTLD_LAZY = 0x1;
const RTLD_NOLOAD = 0x4;

/** The variables that decide libgomp's waiting, in the order they are reported. */
export const OPENMP_WAIT_VARIABLES = ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT"] as const;

/** What {@link preferPassiveOpenMp} found or did, for `CpuBackend.versions`. */
export type OpenMpWaitSetting =
  | { kind: "set"; description: string }
  | { kind: "user"; description: string }
  | { kind: "unchanged"; description: string };

function cString(s: string): Uint8Array {
  return new TextEncoder().encode(`${s}\0`);
}

/**
 * What the first call found: the process environment is process-wide state, changed at most once
 * (a later call would find its own setting and call it the user's).
 */
let first: OpenMpWaitSetting | undefined;

/**
 * Sets `OMP_WAIT_POLICY=passive` for this process unless `OMP_WAIT_POLICY` or `GOMP_SPINCOUNT` is
 * already set or libgomp is already loaded. Call before oneDNN is loaded; later calls change
 * nothing and report what the first one found.
 */
export function preferPassiveOpenMp(): OpenMpWaitSetting {
  return first ??= decide();
}

function decide(): OpenMpWaitSetting {
  let libc: Deno.DynamicLibrary<typeof LIBC_SYMBOLS>;
  try {
    libc = Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
  } catch (e) {
    return {
      kind: "unchanged",
      description: `default (libc not loadable: ${(e as Error).message})`,
    };
  }
  try {
    for (const name of OPENMP_WAIT_VARIABLES) {
      const p = libc.symbols.getenv(cString(name));
      if (p !== null) {
        const value = Deno.UnsafePointerView.getCString(p);
        return { kind: "user", description: `${name}=${value} (from the environment)` };
      }
    }
    const gomp = libc.symbols.dlopen(cString("libgomp.so.1"), RTLD_LAZY | RTLD_NOLOAD);
    if (gomp !== null) {
      libc.symbols.dlclose(gomp);
      return { kind: "unchanged", description: "default (libgomp was loaded before oneDNN)" };
    }
    if (libc.symbols.setenv(cString("OMP_WAIT_POLICY"), cString("passive"), 0) !== 0) {
      return { kind: "unchanged", description: "default (setenv failed)" };
    }
    return { kind: "set", description: "OMP_WAIT_POLICY=passive (set by the cpu backend)" };
  } finally {
    libc.close();
  }
}
