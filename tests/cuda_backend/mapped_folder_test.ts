/**
 * `mappedFolder` (ffi/cuda/discovery.ts) names the folder the dynamic loader actually resolves a
 * soname to, even when a library of the same file name is mapped from elsewhere first (the
 * emulator's stand-in `libcudnn.so.9`, loaded by path by another test file of the same process).
 * Runs in a child process whose LD_LIBRARY_PATH holds NVIDIA's cuDNN wheel folder.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { realLibraryDir } from "../ffi/cuda_helpers.ts";
import { EMULATOR_LIB, emulatorSkip, ROOT } from "./helpers.ts";

const cudnnDir = realLibraryDir("cudnn");
const skip = emulatorSkip() ||
  (cudnnDir === null
    ? " (skipped: NVIDIA's cuDNN wheel is not installed; run bash scripts/setup_cuda.sh)"
    : "");

Deno.test({
  name: "mappedFolder: the loader's own choice of libcudnn.so.9, not the first mapping" + skip,
  ignore: skip !== "",
  async fn() {
    const mod = join(ROOT, "ffi", "cuda", "discovery.ts");
    const script = `import { mappedFolder } from ${JSON.stringify(mod)};
      Deno.dlopen(${JSON.stringify(join(EMULATOR_LIB, "libcudnn.so.9"))}, {});
      const emuOnly = mappedFolder("libcudnn.so.9");
      Deno.dlopen("libcudnn.so.9", {});
      console.log(JSON.stringify({ emuOnly, both: mappedFolder("libcudnn.so.9") }));`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", script],
      env: { LD_LIBRARY_PATH: cudnnDir! },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    assert.equal(out.code, 0, text + new TextDecoder().decode(out.stderr));
    const r = JSON.parse(text.split("\n").at(-1)!);
    assert.equal(r.emuOnly, Deno.realPathSync(EMULATOR_LIB), "only the stand-in is mapped");
    assert.equal(r.both, Deno.realPathSync(cudnnDir!), "the folder the soname resolved to");
  },
});
