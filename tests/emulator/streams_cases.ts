/**
 * Stream cases that observe work not having run yet (stale reads, CUDA_ERROR_NOT_READY). They run
 * in their own process (isolated.ts, from streams_test.ts): in the test process other test files
 * share the emulated device, and their synchronisations would run this work early.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CU, type Emu, fatbin, openEmu, type Ptr } from "./emu_helpers.ts";

const N = 512;

function axpbySetup(emu: Emu) {
  const mod = emu.module(fatbin("tests/emulator/kernels/emu_plain.cu"));
  const axpby = emu.fn(mod, "emu_axpby");
  const x = emu.upload(Float32Array.from({ length: N }, (_, i) => i));
  const y = emu.upload(new Float32Array(N).fill(1));
  const run = (stream: Ptr) =>
    emu.launch(
      axpby,
      [2],
      [256],
      [{ ptr: y }, { ptr: x }, { f32: 2 }, { f32: 3 }, { i32: N }],
      stream,
    );
  const want = Array.from({ length: N }, (_, i) => 2 * i + 3);
  return { x, y, run, want };
}

function pinned(emu: Emu, bytes: number): { ptr: Deno.PointerObject; view: Float32Array } {
  const out = new BigUint64Array(1);
  emu.ok(emu.s.cuMemHostAlloc(out, BigInt(bytes), 0), "cuMemHostAlloc");
  const ptr = Deno.UnsafePointer.create(out[0])!;
  return { ptr, view: new Float32Array(Deno.UnsafePointerView.getArrayBuffer(ptr, bytes)) };
}

/** Async copies stay stale until synchronised; pageable sources are staged at the call, pinned ones read when the copy runs. */
export function asyncCopiesStale(): void {
  const emu = openEmu(false);
  try {
    const { y, run, want } = axpbySetup(emu);
    const s = emu.stream();
    run(s);
    const host = pinned(emu, 4 * N);
    host.view.fill(-1);
    emu.ok(emu.s.cuMemcpyDtoHAsync_v2(host.ptr, y, BigInt(4 * N), s), "DtoH async (pinned)");
    const pageable = new Float32Array(N).fill(-1);
    emu.ok(
      emu.s.cuMemcpyDtoHAsync_v2(Deno.UnsafePointer.of(pageable), y, BigInt(4 * N), s),
      "DtoH async",
    );
    assert.deepEqual(
      [...host.view.subarray(0, 3)],
      [-1, -1, -1],
      "read before synchronising: stale",
    );
    assert.deepEqual([...pageable.subarray(0, 3)], [-1, -1, -1]);
    assert.equal(emu.s.cuStreamQuery(s), CU.NOT_READY);
    emu.ok(emu.s.cuStreamSynchronize(s), "cuStreamSynchronize");
    assert.deepEqual([...host.view], want);
    assert.deepEqual([...pageable], want);
    assert.equal(emu.s.cuStreamQuery(s), CU.SUCCESS);

    // Host-to-device: pageable sources are staged at the call, pinned ones read when the copy runs.
    const dst = emu.alloc(16);
    const src = new Float32Array([1, 2, 3, 4]);
    emu.ok(emu.s.cuMemcpyHtoDAsync_v2(dst, Deno.UnsafePointer.of(src), 16n, s), "HtoD pageable");
    src.fill(9);
    emu.ok(emu.s.cuStreamSynchronize(s), "sync");
    assert.deepEqual([...emu.download(dst, new Float32Array(4))], [1, 2, 3, 4]);
    host.view.set([5, 6, 7, 8]);
    emu.ok(emu.s.cuMemcpyHtoDAsync_v2(dst, host.ptr, 16n, s), "HtoD pinned");
    host.view.set([50, 60, 70, 80]);
    emu.ok(emu.s.cuStreamSynchronize(s), "sync");
    assert.deepEqual([...emu.download(dst, new Float32Array(4))], [50, 60, 70, 80]);
    emu.ok(emu.s.cuMemFreeHost(host.ptr), "cuMemFreeHost");
    emu.ok(emu.s.cuStreamDestroy_v2(s), "cuStreamDestroy_v2");
  } finally {
    emu.close();
  }
}

/** The legacy stream waits for blocking streams, not for non-blocking ones. */
export function legacyStreamOrder(): void {
  const emu = openEmu(false);
  try {
    const blocking = axpbySetup(emu);
    const s = emu.stream(0);
    blocking.run(s);
    // A synchronous copy (legacy stream) waits for the work of blocking streams.
    assert.deepEqual([...emu.download(blocking.y, new Float32Array(N))], blocking.want);

    const nonBlocking = axpbySetup(emu);
    const nb = emu.stream(1); // CU_STREAM_NON_BLOCKING
    nonBlocking.run(nb);
    assert.deepEqual([...emu.download(nonBlocking.y, new Float32Array(4))], [1, 1, 1, 1]);
    emu.ok(emu.s.cuStreamSynchronize(nb), "sync");
    assert.deepEqual([...emu.download(nonBlocking.y, new Float32Array(N))], nonBlocking.want);
  } finally {
    emu.close();
  }
}

/** Events order streams, report completion and elapsed time. */
export function eventsOrderStreams(): void {
  const emu = openEmu(false);
  try {
    const { y, run, want } = axpbySetup(emu);
    const producer = emu.stream(1), consumer = emu.stream(1);
    const start = emu.event(), done = emu.event(), untimed = emu.event(2); // CU_EVENT_DISABLE_TIMING
    const ms = new Float32Array(1);
    assert.equal(emu.s.cuEventElapsedTime_v2(ms, start, done), CU.INVALID_HANDLE, "never recorded");
    emu.ok(emu.s.cuEventRecord(start, producer), "record start");
    run(producer);
    emu.ok(emu.s.cuEventRecord(done, producer), "record done");
    assert.equal(emu.s.cuEventElapsedTime_v2(ms, start, done), CU.NOT_READY);
    const z = emu.alloc(4 * N);
    emu.ok(emu.s.cuStreamWaitEvent(consumer, done, 0), "cuStreamWaitEvent");
    emu.ok(emu.s.cuMemcpyDtoDAsync_v2(z, y, BigInt(4 * N), consumer), "DtoD");
    assert.equal(emu.s.cuEventQuery(done), CU.NOT_READY);
    // Synchronising only the consumer runs the producer's work up to the event first.
    emu.ok(emu.s.cuStreamSynchronize(consumer), "sync consumer");
    assert.equal(emu.s.cuEventQuery(done), CU.SUCCESS);
    emu.ok(emu.s.cuEventElapsedTime_v2(ms, start, done), "elapsed");
    assert.ok(ms[0] >= 0 && ms[0] < 10_000, `elapsed ${ms[0]} ms`);
    const nbStream = emu.stream(1);
    const copy = new Float32Array(N);
    emu.ok(
      emu.s.cuMemcpyDtoHAsync_v2(Deno.UnsafePointer.of(copy), z, BigInt(4 * N), nbStream),
      "DtoH",
    );
    emu.ok(emu.s.cuEventRecord(untimed, nbStream), "record untimed");
    emu.ok(emu.s.cuEventSynchronize(untimed), "cuEventSynchronize");
    assert.deepEqual([...copy], want);
    assert.equal(
      emu.s.cuEventElapsedTime_v2(ms, start, untimed),
      CU.INVALID_HANDLE,
      "timing disabled",
    );
    for (const e of [start, done, untimed]) emu.ok(emu.s.cuEventDestroy_v2(e), "cuEventDestroy_v2");
    assert.equal(emu.s.cuEventDestroy_v2(start), CU.INVALID_HANDLE, "destroyed twice");
  } finally {
    emu.close();
  }
}
