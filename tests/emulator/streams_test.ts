/**
 * Streams, events and copies on the emulated device behave as the driver documents, with the
 * asynchrony observable: queued work runs only at synchronisation points, so a host buffer read
 * after an async device-to-host copy but before synchronising still holds its old contents. The
 * cases that observe not-yet-run work are in streams_cases.ts and run in their own process.
 */

import assert from "node:assert/strict";
import { CU, emulatorUnavailable, openEmu, runIsolated, skipNote } from "./emu_helpers.ts";

const ignore = emulatorUnavailable() !== undefined;
const note = skipNote();

Deno.test({
  name: "emulator streams: async copies stay stale until synchronised (pinned and pageable)" + note,
  ignore,
  fn: async () => {
    await runIsolated("asyncCopiesStale");
  },
});

Deno.test({
  name: "emulator streams: the legacy stream waits for blocking streams, not non-blocking ones" +
    note,
  ignore,
  fn: async () => {
    await runIsolated("legacyStreamOrder");
  },
});

Deno.test({
  name: "emulator streams: events order streams, report completion and elapsed time" + note,
  ignore,
  fn: async () => {
    await runIsolated("eventsOrderStreams");
  },
});

Deno.test({
  name: "emulator memory: stream-ordered allocation and free, memsets, fresh memory not zeroed" +
    note,
  ignore,
  fn() {
    const emu = openEmu();
    try {
      // (cuMemGetInfo_v2 accounting is checked in faults_test.ts: other test files share this
      // process's emulated device.)
      const s = emu.stream();
      const out = new BigUint64Array(1);
      emu.ok(emu.s.cuMemAllocAsync(out, 1n << 20n, s), "cuMemAllocAsync");
      const p = out[0];
      emu.ok(emu.s.cuMemsetD32Async(p, 0x40490fdb, 256n, s), "memset32"); // pi
      emu.ok(emu.s.cuMemsetD8Async(p + 1024n, 0xab, 8n, s), "memset8");
      assert.equal(
        emu.s.cuMemsetD32Async(p + 2n, 0, 4n, s),
        CU.INVALID_VALUE,
        "misaligned memset32",
      );
      assert.equal(
        emu.s.cuMemsetD8Async(p, 0, (1n << 20n) + 1n, s),
        CU.INVALID_VALUE,
        "past the end",
      );
      const host = new Uint8Array(1032);
      emu.ok(emu.s.cuMemcpyDtoHAsync_v2(Deno.UnsafePointer.of(host), p, 1032n, s), "DtoH");
      emu.ok(emu.s.cuMemFreeAsync(p, s), "cuMemFreeAsync");
      emu.ok(emu.s.cuStreamSynchronize(s), "sync");
      assert.deepEqual(
        [...new Float32Array(host.buffer, 0, 256)],
        new Array(256).fill(Math.fround(Math.PI)),
      );
      assert.deepEqual([...host.subarray(1024)], new Array(8).fill(0xab));
      assert.equal(emu.s.cuMemFree_v2(p), CU.INVALID_VALUE, "already freed");
      assert.equal(
        emu.s.cuMemcpyHtoD_v2(p, new Uint8Array(4), 4n),
        CU.INVALID_VALUE,
        "freed pointer",
      );
      const fresh = emu.alloc(64);
      assert.deepEqual(
        [...emu.download(fresh, new Uint8Array(64))],
        new Array(64).fill(0xff),
        "new memory is not zeroed",
      );
    } finally {
      emu.close();
    }
  },
});
