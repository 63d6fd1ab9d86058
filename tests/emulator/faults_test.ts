/**
 * The emulated device's configuration and fault behaviour, each case in its own process
 * (fault_cases.ts through isolated.ts) with its environment: out-of-memory injection and device
 * size, a driver without a device, a malformed setting, sticky faults (a host pointer given to a
 * kernel, __trap, use after a stream-ordered free), synchronous mode, primary context release.
 */

import { emulatorUnavailable, runIsolated, skipNote } from "./emu_helpers.ts";

const ignore = emulatorUnavailable() !== undefined;
const note = skipNote();

const cases: [string, string, Record<string, string>][] = [
  ["out of memory: RESSL_EMU_FAIL_ALLOC nth/above, RESSL_EMU_DEVICE_MEMORY", "outOfMemory", {
    RESSL_EMU_FAIL_ALLOC: "nth:3,above:4M",
    RESSL_EMU_DEVICE_MEMORY: "64M",
  }],
  ["RESSL_EMU_DEVICES=0: cuInit, cublasCreate and cudnnCreate fail as without a GPU", "noDevice", {
    RESSL_EMU_DEVICES: "0",
  }],
  ["a malformed setting fails cuInit with its name", "badSetting", { RESSL_EMU_DEVICES: "two" }],
  ["a host pointer passed to a kernel is a sticky illegal address", "stickyIllegalAddress", {}],
  ["__trap() is an illegal instruction naming the thread", "trap", {}],
  ["memory freed in stream order is gone for the stream's later work", "useAfterFreeAsync", {}],
  ["RESSL_EMU_SYNC=1 runs work as it is enqueued", "syncMode", { RESSL_EMU_SYNC: "1" }],
  ["the last primary context release destroys its memory", "primaryContextRelease", {}],
  ["a cuBLAS matrix outside device memory is a sticky illegal address", "cublasHostPointer", {}],
];

for (const [title, name, env] of cases) {
  Deno.test({
    name: `emulator faults: ${title}${note}`,
    ignore,
    fn: async () => {
      await runIsolated(name, env);
    },
  });
}
