/**
 * The cuDNN stand-in's algorithm queries (_v7 ranking, Find measuring), workspace and descriptor
 * checks, and its descriptor calls compared with the real libcudnn from the wheels (which answers
 * them without a GPU).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { emulatorUnavailable, LIB_DIR, openEmu, runIsolated, skipNote } from "./emu_helpers.ts";
import { cudnnDescriptorProbe } from "./library_probes.ts";
import {
  BAD_PARAM,
  BF16,
  FLOAT,
  FMA_MATH,
  NOT_SUPPORTED,
  quarters,
  setupCudnn as setup,
  SHAPES,
} from "./cudnn_reference.ts";

const ignore = emulatorUnavailable() !== undefined;
const note = skipNote();

Deno.test({
  name: "cuDNN stand-in: algorithm queries, workspace and descriptor checks" + note,
  ignore,
  fn() {
    const emu = openEmu();
    const { s, h, descs, sync, close } = setup(emu);
    try {
      const sh = SHAPES[0];
      const d = descs(sh, FLOAT);
      const perf = new Uint8Array(48 * 8), count = new Int32Array(1);
      assert.equal(
        s.cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.c, d.y, 8, count, perf),
        0,
      );
      const pv = new DataView(perf.buffer);
      const entries = Array.from({ length: count[0] }, (_, i) => ({
        algo: pv.getInt32(48 * i, true),
        status: pv.getInt32(48 * i + 4, true),
        memory: Number(pv.getBigUint64(48 * i + 16, true)),
        math: pv.getInt32(48 * i + 28, true),
      }));
      assert.deepEqual(entries.filter((e) => e.status === 0).map((e) => e.algo), [1, 0, 2]);
      assert.ok(entries.every((e) => e.status === 0 || e.status === NOT_SUPPORTED));
      assert.ok(entries.every((e) => e.math === FMA_MATH));
      const size = new BigUint64Array(1);
      assert.equal(s.cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.c, d.y, 2, size), 0);
      assert.equal(Number(size[0]), entries.find((e) => e.algo === 2)!.memory);
      assert.equal(size[0], BigInt(4 * sh.c * sh.r * sh.s * 7 * 6), "one image's columns");
      assert.equal(
        s.cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.c, d.y, 4, size),
        NOT_SUPPORTED,
        "FFT",
      );

      const x = emu.upload(quarters(sh.n * sh.c * sh.h * sh.w, 8)),
        w = emu.upload(quarters(sh.k * sh.c * 9, 9));
      const y = emu.alloc(4 * sh.n * sh.k * 42);
      const one = new Float32Array([1]), zero = new Float32Array([0]);
      const need = 4 * sh.c * 9 * 42;
      const ws = emu.alloc(need);
      assert.equal(
        s.cudnnConvolutionForward(
          h,
          one,
          d.x,
          x,
          d.w,
          w,
          d.c,
          2,
          ws,
          BigInt(need - 4),
          zero,
          d.y,
          y,
        ),
        BAD_PARAM,
        "workspace too small",
      );
      const msg = new Uint8Array(512);
      s.cudnnGetLastErrorString(msg, 512n);
      assert.match(
        new TextDecoder().decode(msg),
        /CUDNN_STATUS_BAD_PARAM; Reason: .*needs a \d+-byte workspace/,
      );
      assert.equal(
        s.cudnnConvolutionForward(h, one, d.x, x, d.w, w, d.c, 2, 0n, BigInt(need), zero, d.y, y),
        BAD_PARAM,
        "null workspace",
      );
      assert.equal(
        s.cudnnConvolutionForward(h, null, d.x, x, d.w, w, d.c, 0, 0n, 0n, zero, d.y, y),
        BAD_PARAM,
        "null alpha",
      );
      assert.equal(
        s.cudnnConvolutionForward(h, one, d.x, x, d.w, w, d.c, 6, ws, BigInt(need), zero, d.y, y),
        NOT_SUPPORTED,
        "Winograd",
      );
      // Descriptors that disagree: the output shape, the channels, the data types.
      const taller = descs({ ...sh, h: 9 }, FLOAT), wider = descs({ ...sh, c: 4 }, FLOAT);
      assert.equal(
        s.cudnnConvolutionForward(h, one, d.x, x, d.w, w, d.c, 0, 0n, 0n, zero, taller.y, y),
        BAD_PARAM,
        "y is another shape",
      );
      assert.equal(
        s.cudnnConvolutionForward(h, one, d.x, x, wider.w, w, d.c, 0, 0n, 0n, zero, d.y, y),
        BAD_PARAM,
        "filter channels",
      );
      const half = descs(sh, BF16);
      assert.equal(
        s.cudnnConvolutionForward(h, one, d.x, x, half.w, w, d.c, 0, 0n, 0n, zero, d.y, y),
        BAD_PARAM,
        "data types differ",
      );
      assert.equal(s.cudnnSetConvolutionGroupCount(d.c, 3), 0);
      const grouped = descs({ ...sh, c: 1, k: 3 }, FLOAT);
      assert.equal(
        s.cudnnConvolutionForward(h, one, d.x, x, grouped.w, w, d.c, 0, 0n, 0n, zero, d.y, y),
        BAD_PARAM,
        "4 outputs in 3 groups",
      );
      assert.equal(
        s.cudnnConvolutionForward(h, one, d.x, x, grouped.w, w, d.c, 0, 0n, 0n, zero, grouped.y, y),
        NOT_SUPPORTED,
        "groups 3",
      );
      assert.equal(s.cudnnSetConvolutionGroupCount(d.c, 1), 0);
      assert.equal(s.cudnnSetConvolution2dDescriptor(d.c, 2, 2, 1, 1, 2, 2, 1, FLOAT), 0);
      assert.equal(
        s.cudnnConvolutionForward(h, one, d.x, x, d.w, w, d.c, 0, 0n, 0n, zero, d.y, y),
        NOT_SUPPORTED,
        "dilation 2",
      );

      // Find measures the algorithms that fit the workspace; one that does not is ALLOC_FAILED.
      const e = descs(sh, FLOAT);
      assert.equal(
        s.cudnnFindConvolutionForwardAlgorithmEx(
          h,
          e.x,
          x,
          e.w,
          w,
          e.c,
          e.y,
          y,
          8,
          count,
          perf,
          ws,
          200n,
        ),
        0,
      );
      const found = Array.from(
        { length: count[0] },
        (
          _,
          i,
        ) => [
          pv.getInt32(48 * i, true),
          pv.getInt32(48 * i + 4, true),
          pv.getFloat32(48 * i + 8, true),
        ],
      );
      assert.deepEqual(found.filter((f) => f[1] === 0).map((f) => f[0]).sort(), [0, 1]);
      assert.ok(found.filter((f) => f[1] === 0).every((f) => f[2] >= 0));
      assert.deepEqual(
        found.find((f) => f[0] === 2)!.slice(0, 2),
        [2, 4003],
        "GEMM needs more than 200 bytes",
      );
      sync();
    } finally {
      close();
      emu.close();
    }
  },
});

Deno.test({
  name: "cuDNN stand-in: descriptor calls answer exactly as the real libcudnn 9 (no GPU needed)" +
    note,
  ignore,
  async fn() {
    const real = await runIsolated("realCudnnDescriptors") as (string | number)[][];
    const ours = cudnnDescriptorProbe(join(LIB_DIR, "libcudnn.so.9"));
    assert.equal(ours.length, real.length);
    ours.forEach((row, i) => assert.deepEqual(row, real[i], `call ${row[0]}`));
  },
});
