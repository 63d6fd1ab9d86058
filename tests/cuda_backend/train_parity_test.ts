/**
 * Three ReSSL training steps on the cuda backend (the emulated device, or a GPU with
 * RESSL_CUDA_EMULATION=0) and on the cpu backend from the same start (ResNet-18 cifar stem, width
 * 4, batch 8, 3x16x16 views, K = 32): every step's loss agrees within 1e-4 relative, and neither
 * backend keeps a storage afterwards. The same comparison `deno task gpu-check` runs on a GPU.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createCpuBackend } from "../../src/backend/cpu/backend.ts";
import { DnnlUnavailableError } from "../../ffi/dnnl/mod.ts";
import { parityConfig, stepParity } from "../../tasks/gpu_check_parity.ts";
import { emulatorSkip, testBackend } from "./helpers.ts";

function cpuSkip(): string {
  try {
    createCpuBackend({ threads: 1 }).dispose();
    return "";
  } catch (e) {
    if (!(e instanceof DnnlUnavailableError)) throw e;
    return " (skipped: the cpu backend needs oneDNN 2.6.3: apt-get install libdnnl2)";
  }
}

const skip = emulatorSkip() || cpuSkip();

Deno.test({
  name: "cuda vs cpu: three training steps from the same start, loss within 1e-4, no leaks" + skip,
  ignore: skip !== "",
  fn() {
    const r = stepParity(
      () => testBackend(),
      () => createCpuBackend({ threads: 1 }),
      parityConfig(),
      3,
    );
    assert.equal(r.a.length, 3);
    for (const l of [...r.a, ...r.b]) assert.ok(Number.isFinite(l) && l > 0, `loss ${l}`);
    assert.ok(r.maxRelDiff <= 1e-4, `cuda ${r.a} vs cpu ${r.b}: ${r.maxRelDiff}`);
    assert.notEqual(r.a[0], r.a[2], "the steps change the loss");
    assert.equal(r.leftA, 0, "cuda storages left");
    assert.equal(r.leftB, 0, "cpu storages left");
  },
});
