/**
 * Library discovery and its error paths: search order, overrides, no driver, missing libraries,
 * the emulated device asked for but not built.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  CUDA_LIBRARIES,
  emulationRequested,
  emulatorDir,
  locateCudaLibrary,
  openCudaLibrary,
} from "../../ffi/cuda/discovery.ts";
import { loadDriver } from "../../ffi/cuda/driver.ts";
import { loadCublas } from "../../ffi/cuda/cublas.ts";
import { loadNccl } from "../../ffi/cuda/nccl.ts";
import { CudaUnavailableError } from "../../ffi/cuda/errors.ts";
import {
  driverInstalled,
  isolated,
  missingReason,
  realLibraryDir,
  REPO_ROOT,
  touch,
  withTempDir,
} from "./cuda_helpers.ts";

function throwsUnavailable(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CudaUnavailableError, `expected CudaUnavailableError, got ${e}`);
    for (const p of parts) assert.ok(e.message.includes(p), `'${e.message}' lacks '${p}'`);
    return true;
  });
}

Deno.test("discovery: search order is override dir list, CUDA_HOME, LD_LIBRARY_PATH, repo .cache, Python wheels", async () => {
  await withTempDir((tmp) => {
    const file = CUDA_LIBRARIES.cublas.file;
    const extra = touch(join(tmp, "extra", file));
    const home = touch(join(tmp, "home", "targets", "x86_64-linux", "lib", file));
    const ld = touch(join(tmp, "ld", file));
    const repo = touch(join(tmp, "repo", ".cache", "nvidia", "nvidia", "cu13", "lib", file));
    const py = touch(join(tmp, "py", "nvidia", "cu13", "lib", file));
    const env = {
      RESSL_CUDA_LIB_PATH: `${tmp}/absent:${tmp}/extra`,
      CUDA_HOME: join(tmp, "home"),
      LD_LIBRARY_PATH: join(tmp, "ld"),
    };
    const opts = { repoRoot: join(tmp, "repo"), pythonNvidiaDirs: [join(tmp, "py", "nvidia")] };
    const at = (e: Record<string, string>) => locateCudaLibrary("cublas", isolated(e, opts));
    assert.deepEqual(at(env), {
      id: "cublas",
      path: extra,
      source: "RESSL_CUDA_LIB_PATH",
      emulated: false,
    });
    assert.equal(at({ ...env, RESSL_CUDA_LIB_PATH: "" })?.path, home);
    assert.equal(at({ LD_LIBRARY_PATH: env.LD_LIBRARY_PATH })?.path, ld);
    assert.equal(at({})?.path, repo);
    Deno.removeSync(repo);
    assert.equal(at({})?.path, py);
    Deno.removeSync(py);
    assert.deepEqual(at({}), {
      id: "cublas",
      path: file,
      source: "the system loader",
      emulated: false,
    });
    // The per-library override wins over every folder.
    const own = touch(join(tmp, "own", "my_cublas.so"));
    assert.equal(at({ ...env, RESSL_LIBCUBLAS: own })?.path, own);
  });
});

Deno.test("discovery: the driver is never taken from the wheel folders", async () => {
  await withTempDir((tmp) => {
    touch(join(tmp, "repo", ".cache", "nvidia", "nvidia", "cu13", "lib", "libcuda.so.1"));
    touch(join(tmp, "py", "nvidia", "cu13", "lib", "libcuda.so.1"));
    const loc = locateCudaLibrary(
      "cuda",
      isolated({}, { repoRoot: join(tmp, "repo"), pythonNvidiaDirs: [join(tmp, "py", "nvidia")] }),
    );
    assert.equal(loc?.source, "the system loader");
  });
});

Deno.test("discovery: no driver gives CudaUnavailableError naming libcuda.so.1, the override and the emulator", () => {
  throwsUnavailable(
    () => loadDriver(isolated()),
    "libcuda.so.1",
    "no NVIDIA driver",
    "RESSL_LIBCUDA",
    "RESSL_CUDA_EMULATION=1",
    "bash emulator/build.sh",
  );
});

Deno.test({
  name: driverInstalled()
    ? "discovery: this machine's default search (skipped: a CUDA driver is installed here)"
    : "discovery: this machine has no driver, so the default search fails with CudaUnavailableError",
  ignore: driverInstalled(),
  fn() {
    throwsUnavailable(
      () => loadDriver({ env: { ...Deno.env.toObject(), RESSL_CUDA_EMULATION: "0" } }),
      "Cannot load the CUDA driver (libcuda.so.1)",
    );
  },
});

Deno.test("discovery: an override naming a missing file is refused, naming the variable and path", () => {
  throwsUnavailable(
    () => loadDriver(isolated({ RESSL_LIBCUDA: "/nonexistent/libcuda.so.1" })),
    "RESSL_LIBCUDA='/nonexistent/libcuda.so.1' is not a file",
  );
  throwsUnavailable(
    () => loadCublas(isolated({ RESSL_LIBCUBLAS: "/nonexistent/libcublas.so.13" })),
    "RESSL_LIBCUBLAS='/nonexistent/libcublas.so.13' is not a file",
  );
});

Deno.test("discovery: a missing library names its soname, the folders searched and the setup script", async () => {
  await withTempDir((tmp) => {
    throwsUnavailable(
      () => loadNccl(isolated({ RESSL_CUDA_LIB_PATH: tmp })),
      "Cannot load NCCL (libnccl.so.2)",
      tmp,
      "bash scripts/setup_cuda.sh",
      "RESSL_LIBNCCL",
    );
  });
});

Deno.test({
  name: "discovery: a library that is not the one asked for (missing symbols) is refused",
  ignore: missingReason("nccl") !== undefined,
  fn() {
    const nccl = join(realLibraryDir("nccl")!, "libnccl.so.2");
    throwsUnavailable(
      () => loadDriver(isolated({ RESSL_LIBCUDA: nccl })),
      `Cannot load the CUDA driver from '${nccl}' (found through RESSL_LIBCUDA)`,
      "symbol",
    );
  },
});

Deno.test("discovery: a file that is not a library fails with the path", async () => {
  await withTempDir((tmp) => {
    const fake = touch(join(tmp, "libnccl.so.2"));
    throwsUnavailable(
      () => openCudaLibrary("nccl", {}, isolated({ RESSL_CUDA_LIB_PATH: tmp })),
      `Cannot load NCCL from '${fake}' (found through RESSL_CUDA_LIB_PATH)`,
    );
  });
});

Deno.test("emulation: asked for but not built names the missing stand-in and the build command", async () => {
  await withTempDir((tmp) => {
    const env = { RESSL_CUDA_EMULATION: "1", RESSL_CUDA_EMULATOR_DIR: tmp };
    throwsUnavailable(
      () => loadDriver(isolated(env)),
      "RESSL_CUDA_EMULATION=1 asks for the emulated device",
      join(tmp, "libcuda.so.1"),
      "is not built: run 'bash emulator/build.sh'",
    );
    throwsUnavailable(() => loadCublas(isolated(env)), join(tmp, "libcublas.so.13"));
  });
});

Deno.test("emulation: stand-ins come only from the emulator folder; NVRTC stays real; cuBLASLt optional", async () => {
  await withTempDir((tmp) => {
    const emu = join(tmp, "emu");
    for (const f of ["libcuda.so.1", "libcublas.so.13", "libcudnn.so.9", "libnccl.so.2"]) {
      touch(join(emu, f));
    }
    const real = join(tmp, "real");
    for (const f of ["libcuda.so.1", "libcublas.so.13", "libnvrtc.so.13", "libcublasLt.so.13"]) {
      touch(join(real, f));
    }
    const opts = isolated({
      RESSL_CUDA_EMULATION: "1",
      RESSL_CUDA_EMULATOR_DIR: emu,
      RESSL_CUDA_LIB_PATH: real,
      RESSL_LIBCUDA: join(real, "libcuda.so.1"),
    });
    for (const id of ["cuda", "cublas", "cudnn", "nccl"] as const) {
      const loc = locateCudaLibrary(id, opts);
      assert.equal(loc?.path, join(emu, CUDA_LIBRARIES[id].file));
      assert.equal(loc?.emulated, true);
    }
    assert.equal(locateCudaLibrary("cublasLt", opts), null, "no stand-in cuBLASLt: none loaded");
    touch(join(emu, "libcublasLt.so.13"));
    assert.equal(locateCudaLibrary("cublasLt", opts)?.path, join(emu, "libcublasLt.so.13"));
    assert.equal(locateCudaLibrary("nvrtc", opts)?.path, join(real, "libnvrtc.so.13"));
  });
});

Deno.test("emulation: RESSL_CUDA_EMULATION values and the default stand-in folder", () => {
  assert.equal(emulationRequested(isolated({})), false);
  assert.equal(emulationRequested(isolated({ RESSL_CUDA_EMULATION: "0" })), false);
  assert.equal(emulationRequested(isolated({ RESSL_CUDA_EMULATION: "1" })), true);
  assert.equal(emulationRequested(isolated({ RESSL_CUDA_EMULATION: "true" })), true);
  throwsUnavailable(
    () => emulationRequested(isolated({ RESSL_CUDA_EMULATION: "maybe" })),
    "RESSL_CUDA_EMULATION='maybe'",
    "use 1",
  );
  assert.equal(
    emulatorDir({ env: {}, repoRoot: REPO_ROOT }),
    join(REPO_ROOT, "build", "emulator", "lib"),
  );
  assert.equal(emulatorDir({ env: {} }), join(REPO_ROOT, "build", "emulator", "lib"));
  throwsUnavailable(() => emulatorDir({ env: {}, repoRoot: null }), "RESSL_CUDA_EMULATOR_DIR");
});
