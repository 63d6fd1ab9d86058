/**
 * Cases of the cuda backend tests that run in a child process of their own (its environment
 * selects the failure: no driver, no device, a missing library, an allocation the emulated device
 * refuses), printing `{"ok":true,"value":...}` or `{"ok":false,"name":...,"message":...}` as the
 * last line. Usage: deno run --allow-all tests/cuda_backend/cases.ts CASE
 *
 * @module
 */

import { createBackend } from "../../src/backend/select.ts";
import { createCudaBackend } from "../../src/backend/cuda/backend.ts";

const cases: Record<string, () => unknown> = {
  /** createBackend("cuda") with whatever the environment provides. */
  create: () => {
    const be = createBackend("cuda");
    const versions = be.versions;
    be.dispose();
    return versions;
  },
  /** `auto`: which backend it picks and the lines it prints. */
  auto: () => {
    const lines: string[] = [];
    const be = createBackend("auto", { threads: 1, warn: (l) => lines.push(l) });
    const name = be.name;
    be.dispose();
    return { name, lines };
  },
  /**
   * Out of device memory (RESSL_EMU_FAIL_ALLOC=above:N): a storage over the limit fails with
   * CudaOutOfMemoryError after the cache was released; the backend keeps working afterwards.
   */
  outOfMemory: () => {
    const be = createCudaBackend();
    const small = be.alloc("f32", 1000);
    be.free(small); // cached: released when the big allocation fails
    const before = be.stats().allocator.cachedBlocks;
    let error: { name: string; message: string } | null = null;
    try {
      be.alloc("f32", 64 << 20);
    } catch (e) {
      error = { name: (e as Error).name, message: (e as Error).message };
    }
    const after = be.stats().allocator;
    const x = be.alloc("f32", 4);
    be.upload(x, new Float32Array([1, -2, 3, -4]));
    const y = be.alloc("f32", 4);
    be.relu({ x, y, n: 4 });
    const relu = Array.from(be.download(y) as Float32Array);
    be.free(x);
    be.free(y);
    const live = be.liveAllocations();
    be.dispose();
    return { error, cachedBefore: before, cachedAfter: after.cachedBlocks, relu, live };
  },
};

const name = Deno.args[0];
const run = cases[name];
try {
  if (typeof run !== "function") throw new Error(`no case '${name}' in cases.ts`);
  console.log(JSON.stringify({ ok: true, value: run() ?? null }));
} catch (e) {
  const err = e as Error;
  console.log(JSON.stringify({ ok: false, name: err.name, message: err.message }));
}
