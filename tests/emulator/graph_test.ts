/**
 * Stream capture and graphs on the emulated device: captured work is recorded, not run; replaying
 * the instantiated graph gives the same results as launching the same work directly; the captures
 * the driver refuses (synchronising a capturing stream, pageable host memory, the legacy stream)
 * fail the same way.
 */

import assert from "node:assert/strict";
import {
  CU,
  type Emu,
  emulatorUnavailable,
  fatbin,
  openEmu,
  type Ptr,
  skipNote,
} from "./emu_helpers.ts";

const ignore = emulatorUnavailable() !== undefined;
const note = skipNote();
const N = 300;

/** A step: y = 2 x + 3 y; block sums of y into acc (after zeroing it); acc copied to pinned host memory. */
function step(
  emu: Emu,
  stream: Ptr,
  bufs: { x: bigint; y: bigint; acc: bigint; host: Deno.PointerObject },
) {
  const plain = emu.module(fatbin("tests/emulator/kernels/emu_plain.cu"));
  const sync = emu.module(fatbin("tests/emulator/kernels/emu_sync.cu"));
  const axpby = emu.fn(plain, "emu_axpby"), sum = emu.fn(sync, "emu_block_sum");
  emu.launch(axpby, [2], [256], [{ ptr: bufs.y }, { ptr: bufs.x }, { f32: 2 }, { f32: 3 }, {
    i32: N,
  }], stream);
  emu.ok(emu.s.cuMemsetD32Async(bufs.acc, 0, 1n, stream), "memset");
  emu.launch(sum, [2], [128], [{ ptr: bufs.y }, { i32: N }, { ptr: bufs.acc }], stream);
  emu.ok(emu.s.cuMemcpyDtoHAsync_v2(bufs.host, bufs.acc, 4n, stream), "DtoH");
}

function buffers(emu: Emu) {
  const x = emu.upload(Float32Array.from({ length: N }, (_, i) => i % 5));
  const y = emu.upload(new Float32Array(N).fill(1));
  const acc = emu.alloc(4);
  const out = new BigUint64Array(1);
  emu.ok(emu.s.cuMemHostAlloc(out, 4n, 0), "cuMemHostAlloc");
  const host = Deno.UnsafePointer.create(out[0])!;
  return {
    x,
    y,
    acc,
    host,
    view: new Float32Array(Deno.UnsafePointerView.getArrayBuffer(host, 4)),
  };
}

Deno.test({
  name: "emulator graphs: a captured step replays like direct launches" + note,
  ignore,
  fn() {
    const emu = openEmu();
    try {
      const s = emu.stream();
      const direct = buffers(emu);
      const sums: number[] = [];
      for (let i = 0; i < 3; i++) {
        step(emu, s, direct);
        emu.ok(emu.s.cuStreamSynchronize(s), "sync");
        sums.push(direct.view[0]);
      }
      const graphed = buffers(emu);
      graphed.view[0] = -1;
      emu.ok(emu.s.cuStreamBeginCapture_v2(s, 0), "cuStreamBeginCapture_v2");
      const status = new Int32Array(1);
      emu.ok(emu.s.cuStreamIsCapturing(s, status), "cuStreamIsCapturing");
      assert.equal(status[0], 1, "CU_STREAM_CAPTURE_STATUS_ACTIVE");
      step(emu, s, graphed);
      const out = new BigUint64Array(1);
      emu.ok(emu.s.cuStreamEndCapture(s, out), "cuStreamEndCapture");
      const graph = Deno.UnsafePointer.create(out[0]);
      emu.ok(emu.s.cuCtxSynchronize(), "sync");
      assert.equal(graphed.view[0], -1, "capturing does not run the work");
      assert.deepEqual([...emu.download(graphed.y, new Float32Array(2))], [1, 1]);
      const count = new BigUint64Array(1);
      emu.ok(emu.s.cuGraphGetNodes(graph, null, count), "cuGraphGetNodes");
      assert.equal(count[0], 4n, "kernel, memset, kernel, copy");
      emu.ok(emu.s.cuGraphInstantiateWithFlags(out, graph, 0n), "cuGraphInstantiateWithFlags");
      const exec = Deno.UnsafePointer.create(out[0]);
      const replayed: number[] = [];
      for (let i = 0; i < 3; i++) {
        emu.ok(emu.s.cuGraphLaunch(exec, s), "cuGraphLaunch");
        emu.ok(emu.s.cuStreamSynchronize(s), "sync");
        replayed.push(graphed.view[0]);
      }
      assert.deepEqual(replayed, sums);
      assert.deepEqual(
        [...emu.download(graphed.y, new Float32Array(N))],
        [...emu.download(direct.y, new Float32Array(N))],
      );
      emu.ok(emu.s.cuGraphExecDestroy(exec), "cuGraphExecDestroy");
      emu.ok(emu.s.cuGraphDestroy(graph), "cuGraphDestroy");
      assert.equal(emu.s.cuGraphDestroy(graph), CU.INVALID_HANDLE, "destroyed twice");
      assert.equal(emu.s.cuGraphLaunch(exec, s), CU.INVALID_HANDLE, "destroyed executable graph");
      for (const b of [direct, graphed]) emu.ok(emu.s.cuMemFreeHost(b.host), "cuMemFreeHost");
    } finally {
      emu.close();
    }
  },
});

Deno.test({
  name: "emulator graphs: captures the driver refuses fail the same way" + note,
  ignore,
  fn() {
    const emu = openEmu();
    try {
      const s = emu.stream();
      const out = new BigUint64Array(1);
      const status = new Int32Array(1);
      assert.equal(
        emu.s.cuStreamBeginCapture_v2(null, 0),
        CU.STREAM_CAPTURE_UNSUPPORTED,
        "legacy stream",
      );
      assert.equal(emu.s.cuStreamEndCapture(s, out), CU.ILLEGAL_STATE, "not capturing");

      emu.ok(emu.s.cuStreamBeginCapture_v2(s, 0), "begin");
      assert.equal(emu.s.cuStreamBeginCapture_v2(s, 0), CU.ILLEGAL_STATE, "already capturing");
      assert.equal(emu.s.cuStreamSynchronize(s), CU.STREAM_CAPTURE_UNSUPPORTED);
      emu.ok(emu.s.cuStreamIsCapturing(s, status), "cuStreamIsCapturing");
      assert.equal(status[0], 2, "CU_STREAM_CAPTURE_STATUS_INVALIDATED");
      out[0] = 1n;
      assert.equal(emu.s.cuStreamEndCapture(s, out), CU.STREAM_CAPTURE_INVALIDATED);
      assert.equal(out[0], 0n, "no graph");

      const dev = emu.alloc(64);
      emu.ok(emu.s.cuStreamBeginCapture_v2(s, 2), "begin (relaxed)");
      const pageable = new Float32Array(16);
      assert.equal(
        emu.s.cuMemcpyDtoHAsync_v2(Deno.UnsafePointer.of(pageable), dev, 64n, s),
        CU.STREAM_CAPTURE_UNSUPPORTED,
        "pageable memory cannot be captured",
      );
      assert.equal(emu.s.cuStreamEndCapture(s, out), CU.STREAM_CAPTURE_INVALIDATED);
      emu.ok(emu.s.cuStreamIsCapturing(s, status), "cuStreamIsCapturing");
      assert.equal(status[0], 0, "CU_STREAM_CAPTURE_STATUS_NONE");
      assert.equal(emu.s.cuStreamBeginCapture_v2(s, 7), CU.INVALID_VALUE, "unknown mode");
    } finally {
      emu.close();
    }
  },
});
