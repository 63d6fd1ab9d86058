/**
 * cuDNN's sub-library check against the real wheel: the list matches what the wheel ships and what
 * the dispatcher loads, and a folder missing one is refused before cuDNN can abort the process.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkCudnnFolder,
  CUDNN_CORE_SUBLIBRARIES,
  CUDNN_LATER_SUBLIBRARIES,
  dispatcherSublibraries,
} from "../../ffi/cuda/cudnn_sublibs.ts";
import { loadCudnn } from "../../ffi/cuda/cudnn.ts";
import { mappedFolder } from "../../ffi/cuda/discovery.ts";
import { CudaUnavailableError } from "../../ffi/cuda/errors.ts";
import {
  isolated,
  missingReason,
  realLibraryDir,
  realOptions,
  withTempDir,
} from "./cuda_helpers.ts";

const skip = missingReason("cudnn");
const suffix = skip ? ` (${skip})` : "";

/** Links every file of the real cuDNN folder into `dir` except `omit`. */
function partialCopy(real: string, dir: string, omit: readonly string[]): string {
  for (const e of Deno.readDirSync(real)) {
    if (!omit.includes(e.name)) Deno.symlinkSync(join(real, e.name), join(dir, e.name));
  }
  return join(dir, "libcudnn.so.9");
}

Deno.test({
  name: "cudnn sub-libraries: the lists cover exactly the wheel's libcudnn_*.so.9 files" + suffix,
  ignore: skip !== undefined,
  fn() {
    const dir = realLibraryDir("cudnn")!;
    const shipped = [...Deno.readDirSync(dir)].map((e) => e.name)
      .filter((n) => /^libcudnn_.*\.so\.9$/.test(n)).sort();
    assert.deepEqual([...CUDNN_CORE_SUBLIBRARIES, ...CUDNN_LATER_SUBLIBRARIES].sort(), shipped);
    const named = dispatcherSublibraries(join(dir, "libcudnn.so.9"));
    assert.ok(named.includes("libcudnn_graph.so.9"), `dispatcher names: ${named}`);
    for (const n of named) assert.ok(shipped.includes(n), `dispatcher loads ${n}, not shipped`);
    assert.deepEqual(checkCudnnFolder(dir), { missing: [], missingOptional: [] });
  },
});

Deno.test({
  name: "cudnn sub-libraries: each missing required one is named" + suffix,
  ignore: skip !== undefined,
  async fn() {
    const real = realLibraryDir("cudnn")!;
    const required = [...CUDNN_CORE_SUBLIBRARIES, "libcudnn_ext.so.9"];
    for (const omit of required) {
      await withTempDir((tmp) => {
        partialCopy(real, tmp, [omit]);
        assert.deepEqual(checkCudnnFolder(tmp), { missing: [omit], missingOptional: [] }, omit);
      });
    }
  },
});

Deno.test({
  name: "cudnn sub-libraries: a missing engines_tensor_ir is reported, not refused" + suffix,
  ignore: skip !== undefined,
  async fn() {
    await withTempDir((tmp) => {
      const omit = "libcudnn_engines_tensor_ir.so.9";
      const path = partialCopy(realLibraryDir("cudnn")!, tmp, [omit]);
      const lib = loadCudnn(isolated({ RESSL_LIBCUDNN: path }));
      try {
        assert.deepEqual(lib.missingOptional, [omit]);
        assert.match(lib.version, /^9\.\d+\.\d+$/);
      } finally {
        lib.close();
      }
    });
  },
});

Deno.test({
  name: "cudnn sub-libraries: missing libcudnn_graph is refused by name and the process lives" +
    suffix,
  ignore: skip !== undefined,
  async fn() {
    await withTempDir(async (tmp) => {
      const path = partialCopy(realLibraryDir("cudnn")!, tmp, ["libcudnn_graph.so.9"]);
      // In-process: refused before the library is opened.
      assert.throws(
        () => loadCudnn(isolated({ RESSL_LIBCUDNN: path })),
        (e: unknown) =>
          e instanceof CudaUnavailableError && e.message.includes("lacks libcudnn_graph.so.9") &&
          e.message.includes(tmp),
      );
      // In a child process that then makes a cuDNN call: the refusal, not cuDNN's SIGABRT.
      const mod = new URL("../../ffi/cuda/cudnn.ts", import.meta.url).href;
      const script = `import { loadCudnn } from ${JSON.stringify(mod)};
        try { const l = loadCudnn(); l.symbols.cudnnGetVersion(); console.log("LOADED"); }
        catch (e) { console.log("REFUSED " + e.name + ": " + e.message); }`;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--quiet", script],
        env: { RESSL_LIBCUDNN: path, RESSL_CUDA_EMULATION: "0" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, `child exited ${out.code} (${out.signal}): ${text}`);
      assert.match(text, /REFUSED CudaUnavailableError: .*lacks libcudnn_graph\.so\.9/);
    });
  },
});

Deno.test({
  name: "cudnn sub-libraries: the loaded library's folder is found from the process's mappings" +
    suffix,
  ignore: skip !== undefined,
  fn() {
    const lib = loadCudnn(realOptions());
    try {
      assert.equal(mappedFolder("libcudnn.so.9"), Deno.realPathSync(realLibraryDir("cudnn")!));
      assert.equal(mappedFolder("libnot_loaded_anywhere.so.1"), null);
    } finally {
      lib.close();
    }
  },
});
