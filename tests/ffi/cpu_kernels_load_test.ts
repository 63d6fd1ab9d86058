/**
 * Loading the cpu backend's own kernels (`ffi/cpu/load.ts`): the built library loads and passes
 * its checks (and its sum gives one result with or without room for the chunk sums); a missing file, a folder, a file that is not a library and a module imported by URL
 * each give a reason that says what to do, never an exception (the backend then runs those kernels
 * on oneDNN and says so).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  CPU_KERNELS_BUILD_COMMAND,
  defaultCpuKernelsPath,
  loadCpuKernels,
} from "../../ffi/cpu/mod.ts";

function reason(r: ReturnType<typeof loadCpuKernels>): string {
  assert.equal(r.ok, false, "expected no library");
  return r.ok ? "" : r.reason;
}

Deno.test("cpu kernels: a missing, wrong or unreachable library gives a reason, not an error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl-cpu-kernels-" });
  try {
    assert.match(
      reason(loadCpuKernels(`${dir}/absent.so`)),
      new RegExp(`not built \\(run '${CPU_KERNELS_BUILD_COMMAND}'\\)`),
    );
    assert.match(reason(loadCpuKernels(dir)), /is not a file/);
    const garbage = `${dir}/libressl_cpu.so`;
    await Deno.writeTextFile(garbage, "not an ELF file\n");
    assert.match(reason(loadCpuKernels(garbage)), /cannot load .*libressl_cpu\.so.*rebuild/);
    assert.match(reason(loadCpuKernels(null)), /imported by URL/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const built = (() => {
  const p = defaultCpuKernelsPath();
  try {
    return p !== null && Deno.statSync(p).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: `cpu kernels: the built library loads and passes its checks${
    built ? "" : ` (skipped: run '${CPU_KERNELS_BUILD_COMMAND}')`
  }`,
  ignore: !built,
  fn() {
    const r = loadCpuKernels();
    assert.ok(r.ok, r.ok ? "" : r.reason);
    try {
      assert.equal(r.kernels.symbols.ressl_cpu_kernels_supported(), 1);
      assert.ok(r.kernels.symbols.ressl_bn_scratch_bytes(2n, 20n, 9n, 16n) > 0n);
      assert.equal(r.kernels.symbols.ressl_bn_scratch_bytes(0n, 20n, 9n, 16n), 0n);
      // The sum with room for every chunk sum and without: one result (one thread; the 2-thread
      // call and the close after it are the next test's, in a process of their own).
      const x = new Float32Array(10_000).map((_, i) => Math.sin(i) * 1e3);
      // >= 128 bytes: V8 keeps such a buffer outside its heap, at a stable address.
      const parts = new Float64Array(16);
      const xp = Deno.UnsafePointer.of(x), pp = Deno.UnsafePointer.of(parts);
      const sums = r.kernels.symbols;
      const withParts = sums.ressl_sum_f32(xp, 10_000n, 1, pp, 3n);
      assert.equal(sums.ressl_sum_f32(xp, 10_000n, 1, pp, 2n), withParts);
      assert.equal(sums.ressl_sum_f32(xp, 10_000n, 1, null, 0n), withParts);
      assert.ok(Math.abs(withParts - x.reduce((a, v) => a + v, 0)) < 1e-6);
    } finally {
      r.kernels.close();
    }
  },
});

Deno.test({
  name: `cpu kernels: closing the library after a multi-threaded call, oneDNN never loaded${
    built ? "" : ` (skipped: run '${CPU_KERNELS_BUILD_COMMAND}')`
  }`,
  ignore: !built,
  async fn() {
    // The library was the only one holding libgomp: closing it unloaded libgomp under its idle
    // worker threads and the process died of SIGSEGV. A process of its own, as a user script.
    const module = new URL("../../ffi/cpu/mod.ts", import.meta.url).href;
    const code = `
      import { loadCpuKernels } from "${module}";
      const r = loadCpuKernels();
      if (!r.ok) throw new Error(r.reason);
      const x = new Float32Array(1 << 20).fill(1), parts = new Float64Array(256);
      const s = r.kernels.symbols.ressl_sum_f32(
        Deno.UnsafePointer.of(x), BigInt(x.length), 2, Deno.UnsafePointer.of(parts), 256n);
      r.kernels.close();
      await new Promise((done) => setTimeout(done, 300));
      console.log("sum " + s + ", alive after close");
    `;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", code],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.signal, null, `killed by ${out.signal}: ${text}`);
    assert.equal(out.code, 0, text);
    assert.match(text, /sum 1048576, alive after close/);
  },
});
