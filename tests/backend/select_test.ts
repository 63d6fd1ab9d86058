import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createBackend } from "../../src/backend/select.ts";
import { DNNL_PATH_ENV, DnnlUnavailableError, loadDnnl } from "../../ffi/dnnl/mod.ts";
import { CudaUnavailableError } from "../../ffi/cuda/errors.ts";

function withEnv<T>(name: string, value: string, fn: () => T): T {
  const old = Deno.env.get(name);
  Deno.env.set(name, value);
  try {
    return fn();
  } finally {
    if (old === undefined) Deno.env.delete(name);
    else Deno.env.set(name, old);
  }
}

let dnnlHere = true;
try {
  loadDnnl().close();
} catch {
  dnnlHere = false;
}

Deno.test({
  name: "select: auto picks cpu where oneDNN 2.6.3 loads, with its version and threads",
  ignore: !dnnlHere,
  fn() {
    const be = createBackend("auto", { threads: 1 });
    try {
      assert.equal(be.name, "cpu");
      assert.equal(be.versions.onednn, "2.6.3");
      assert.equal(be.versions.threads, "1");
    } finally {
      be.dispose();
    }
  },
});

Deno.test("select: without oneDNN, auto warns once and falls back; cpu fails with the hint", () => {
  withEnv(DNNL_PATH_ENV, "/nonexistent/libdnnl.so.2", () => {
    const lines: string[] = [];
    const be = createBackend("auto", { warn: (l) => lines.push(l) });
    assert.equal(be.name, "reference");
    assert.equal(lines.length, 1);
    assert.match(lines[0], /apt-get install libdnnl2/);
    assert.equal(lines[0].includes("\n"), false);
    const quiet: string[] = [];
    createBackend("auto", { quiet: true, warn: (l) => quiet.push(l) });
    assert.equal(quiet.length, 0);
    assert.throws(() => createBackend("cpu"), (e: unknown) => {
      assert.ok(e instanceof DnnlUnavailableError);
      assert.match(e.message, /apt-get install libdnnl2/);
      assert.match(e.message, /nonexistent/);
      return true;
    });
  });
});

Deno.test("select: a library without oneDNN's symbols is refused clearly", () => {
  assert.throws(
    () => loadDnnl({ path: "libgomp.so.1" }),
    (e: unknown) => e instanceof DnnlUnavailableError && /Cannot load oneDNN/.test(e.message),
  );
});

Deno.test("select: cuda without a driver fails with its reason; unknown names are rejected", () => {
  withEnv(
    "RESSL_CUDA_EMULATION",
    "1",
    () =>
      withEnv("RESSL_CUDA_EMULATOR_DIR", "/nonexistent/emulator", () => {
        assert.throws(() => createBackend("cuda"), (e: unknown) => {
          assert.ok(e instanceof CudaUnavailableError);
          assert.match(e.message, /stand-in for the CUDA driver .* is not built/);
          return true;
        });
        const lines: string[] = [];
        const be = createBackend("auto", { threads: 1, warn: (l) => lines.push(l) });
        be.dispose();
        assert.equal(lines.length, 1, "one line saying why cuda was not used");
        assert.equal(lines[0].includes("\n"), false);
        assert.match(lines[0], /not built/);
        assert.match(
          lines[0],
          dnnlHere ? /^note: no CUDA device, using the cpu backend/ : /reference/,
        );
      }),
  );
  assert.throws(() => createBackend("tpu" as never), /Cannot create backend 'tpu'/);
  assert.equal(createBackend("reference").name, "reference");
});

Deno.test("select: on a machine without an NVIDIA driver, auto says so in one short line", () => {
  if (existsSync("/dev/nvidiactl") || Deno.env.get("RESSL_LIBCUDA") !== undefined) return;
  withEnv("RESSL_CUDA_EMULATION", "0", () => {
    assert.throws(() => createBackend("cuda"), (e: unknown) => {
      assert.ok(e instanceof CudaUnavailableError);
      assert.equal(e.noDriver, true, e.message);
      assert.match(e.message, /libcuda\.so\.1/);
      return true;
    });
    const lines: string[] = [];
    const be = createBackend("auto", { threads: 1, warn: (l) => lines.push(l) });
    be.dispose();
    assert.equal(lines.length, 1);
    assert.match(lines[0], /no NVIDIA driver here \(libcuda\.so\.1 not found\)/);
    if (dnnlHere) assert.ok(lines[0].length < 120, `a short note, got ${lines[0].length} chars`);
  });
});
