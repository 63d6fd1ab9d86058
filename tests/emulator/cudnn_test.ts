/**
 * The cuDNN stand-in against naive loops: forward, backward-data and backward-filter convolutions
 * (padding, strides, cross-correlation and convolution modes, NCHW and NHWC, f32 and bf16 with f32
 * compute, alpha/beta blending), every emulated algorithm with its workspace, the algorithm
 * queries, and the checks on descriptors and workspaces. Descriptor calls are compared with the
 * real libcudnn from the wheels (which answers them without a GPU). Inputs are multiples of 1/4,
 * so f32 results compare exactly.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Emu,
  emulatorUnavailable,
  LIB_DIR,
  openEmu,
  runIsolated,
  skipNote,
} from "./emu_helpers.ts";
import { cudnnDescriptorProbe } from "./library_probes.ts";
import {
  CUDNN_TEST_SYMBOLS,
  naiveConv,
  quarters,
  type Shape,
  toBf16Bits,
} from "./cudnn_reference.ts";

const ignore = emulatorUnavailable() !== undefined;
const note = skipNote();
const FLOAT = 0, BF16 = 9, NCHW = 0, NHWC = 1, FMA_MATH = 3, TENSOR_OP = 1;
const BAD_PARAM = 2000, NOT_SUPPORTED = 3000;

function setup(emu: Emu) {
  const lib = Deno.dlopen(join(LIB_DIR, "libcudnn.so.9"), CUDNN_TEST_SYMBOLS);
  const s = lib.symbols;
  const out = new BigUint64Array(1);
  const make = (f: (o: BigUint64Array) => number) => {
    assert.equal(f(out), 0);
    return Deno.UnsafePointer.create(out[0]);
  };
  const h = make(s.cudnnCreate);
  const stream = emu.stream();
  assert.equal(s.cudnnSetStream(h, stream), 0);
  const descs = (sh: Shape, dt: number, fmt = NCHW, math = FMA_MATH) => {
    const x = make(s.cudnnCreateTensorDescriptor), y = make(s.cudnnCreateTensorDescriptor);
    const w = make(s.cudnnCreateFilterDescriptor), c = make(s.cudnnCreateConvolutionDescriptor);
    assert.equal(s.cudnnSetTensor4dDescriptor(x, fmt, dt, sh.n, sh.c, sh.h, sh.w), 0);
    assert.equal(s.cudnnSetFilter4dDescriptor(w, dt, fmt, sh.k, sh.c, sh.r, sh.s), 0);
    assert.equal(
      s.cudnnSetConvolution2dDescriptor(
        c,
        sh.pad[0],
        sh.pad[1],
        sh.stride[0],
        sh.stride[1],
        1,
        1,
        sh.flip ? 0 : 1,
        FLOAT,
      ),
      0,
    );
    assert.equal(s.cudnnSetConvolutionMathType(c, math), 0);
    const o = [new Int32Array(1), new Int32Array(1), new Int32Array(1), new Int32Array(1)];
    assert.equal(s.cudnnGetConvolution2dForwardOutputDim(c, x, w, o[0], o[1], o[2], o[3]), 0);
    assert.equal(s.cudnnSetTensor4dDescriptor(y, fmt, dt, o[0][0], o[1][0], o[2][0], o[3][0]), 0);
    return { x, w, c, y, p: o[2][0], q: o[3][0] };
  };
  const sync = () => emu.ok(emu.s.cuStreamSynchronize(stream), "sync");
  const close = () => {
    s.cudnnDestroy(h);
    lib.close();
  };
  return { s, h, descs, sync, close };
}

const SHAPES: Shape[] = [
  { n: 2, c: 3, h: 7, w: 6, k: 4, r: 3, s: 3, pad: [1, 1], stride: [1, 1], flip: false },
  { n: 1, c: 2, h: 9, w: 8, k: 3, r: 2, s: 3, pad: [0, 2], stride: [2, 3], flip: true },
];

Deno.test({
  name:
    "cuDNN stand-in: forward, backward data and backward filter match naive loops, every algorithm" +
    note,
  ignore,
  fn() {
    const emu = openEmu();
    const { s, h, descs, sync, close } = setup(emu);
    try {
      for (const sh of SHAPES) {
        const d = descs(sh, FLOAT);
        const ref = naiveConv(sh, d.p, d.q);
        const xs = quarters(sh.n * sh.c * sh.h * sh.w, 1),
          ws = quarters(sh.k * sh.c * sh.r * sh.s, 2);
        const ys = quarters(sh.n * sh.k * d.p * d.q, 3);
        const [x, w, dy] = [emu.upload(xs), emu.upload(ws), emu.upload(ys)];
        const alpha = new Float32Array([2]), beta = new Float32Array([0.5]);
        const size = new BigUint64Array(1);
        const directions = [
          {
            algos: [0, 1, 2],
            ws: s.cudnnGetConvolutionForwardWorkspaceSize,
            args: [d.x, d.w, d.c, d.y] as const,
            want: ref.forward(xs, ws),
            init: ys,
          },
          {
            algos: [0, 1],
            ws: s.cudnnGetConvolutionBackwardDataWorkspaceSize,
            args: [d.w, d.y, d.c, d.x] as const,
            want: ref.backwardData(ws, ys),
            init: xs,
          },
          {
            algos: [0, 1, 3],
            ws: s.cudnnGetConvolutionBackwardFilterWorkspaceSize,
            args: [d.x, d.y, d.c, d.w] as const,
            want: ref.backwardFilter(xs, ys),
            init: ws,
          },
        ];
        directions.forEach((dir, which) => {
          for (const algo of dir.algos) {
            assert.equal(dir.ws(h, ...dir.args, algo, size), 0);
            const work = size[0] > 0n ? emu.alloc(Number(size[0])) : 0n;
            const out = emu.upload(dir.init);
            const r = which === 0
              ? s.cudnnConvolutionForward(
                h,
                alpha,
                d.x,
                x,
                d.w,
                w,
                d.c,
                algo,
                work,
                size[0],
                beta,
                d.y,
                out,
              )
              : which === 1
              ? s.cudnnConvolutionBackwardData(
                h,
                alpha,
                d.w,
                w,
                d.y,
                dy,
                d.c,
                algo,
                work,
                size[0],
                beta,
                d.x,
                out,
              )
              : s.cudnnConvolutionBackwardFilter(
                h,
                alpha,
                d.x,
                x,
                d.y,
                dy,
                d.c,
                algo,
                work,
                size[0],
                beta,
                d.w,
                out,
              );
            assert.equal(r, 0, `direction ${which} algorithm ${algo}`);
            sync();
            const want = Array.from(dir.want, (v, i) => 2 * v + 0.5 * dir.init[i]);
            assert.deepEqual(
              [...emu.download(out, new Float32Array(dir.init.length))],
              want,
              `direction ${which} algorithm ${algo}`,
            );
          }
        });
        // beta = 0 never reads the output (NaN there stays out of the result).
        const y = emu.upload(new Float32Array(ys.length).fill(NaN));
        assert.equal(
          s.cudnnConvolutionForward(
            h,
            alpha,
            d.x,
            x,
            d.w,
            w,
            d.c,
            0,
            0n,
            0n,
            new Float32Array([0]),
            d.y,
            y,
          ),
          0,
        );
        sync();
        assert.deepEqual(
          [...emu.download(y, new Float32Array(ys.length))],
          Array.from(ref.forward(xs, ws), (v) => 2 * v),
        );
      }
    } finally {
      close();
      emu.close();
    }
  },
});

Deno.test({
  name: "cuDNN stand-in: bf16 with f32 compute rounds the output to nearest even; NHWC layout" +
    note,
  ignore,
  fn() {
    const emu = openEmu();
    const { s, h, descs, sync, close } = setup(emu);
    try {
      const sh = SHAPES[0];
      const d = descs(sh, BF16, NCHW, TENSOR_OP);
      const ref = naiveConv(sh, d.p, d.q);
      const xs = quarters(sh.n * sh.c * sh.h * sh.w, 4).map((v) => v * 7.75),
        ws = quarters(sh.k * sh.c * sh.r * sh.s, 5);
      const y = emu.alloc(2 * sh.n * sh.k * d.p * d.q);
      const one = new Float32Array([1]), zero = new Float32Array([0]);
      assert.equal(
        s.cudnnConvolutionForward(
          h,
          one,
          d.x,
          emu.upload(toBf16Bits(xs)),
          d.w,
          emu.upload(toBf16Bits(ws)),
          d.c,
          1,
          emu.alloc(4096),
          4096n,
          zero,
          d.y,
          y,
        ),
        0,
      );
      sync();
      const exact = ref.forward(xs, ws);
      const want = toBf16Bits(exact);
      assert.deepEqual([...emu.download(y, new Uint16Array(want.length))], [...want]);
      const back = new Float32Array(new Uint32Array(Array.from(want, (b) => b << 16)).buffer);
      assert.ok(exact.some((v, i) => back[i] !== v), "some outputs needed rounding to bf16");

      // The same f32 convolution with NHWC tensors and a KRSC filter.
      const e = descs(sh, FLOAT, NHWC);
      const x32 = quarters(sh.n * sh.c * sh.h * sh.w, 6),
        w32 = quarters(sh.k * sh.c * sh.r * sh.s, 7);
      const nhwc = (t: Float32Array, c: number, hh: number, ww: number) =>
        Float32Array.from({ length: t.length }, (_, i) => {
          const ci = i % c,
            wi = Math.floor(i / c) % ww,
            hi = Math.floor(i / (c * ww)) % hh,
            ni = Math.floor(i / (c * ww * hh));
          return t[((ni * c + ci) * hh + hi) * ww + wi];
        });
      const yy = emu.alloc(4 * sh.n * sh.k * e.p * e.q);
      assert.equal(
        s.cudnnConvolutionForward(
          h,
          one,
          e.x,
          emu.upload(nhwc(x32, sh.c, sh.h, sh.w)),
          e.w,
          emu.upload(nhwc(w32, sh.c, sh.r, sh.s)),
          e.c,
          0,
          0n,
          0n,
          zero,
          e.y,
          yy,
        ),
        0,
      );
      sync();
      const got = emu.download(yy, new Float32Array(sh.n * sh.k * e.p * e.q));
      assert.deepEqual([...got], [
        ...nhwc(Float32Array.from(naiveConv(sh, e.p, e.q).forward(x32, w32)), sh.k, e.p, e.q),
      ]);
    } finally {
      close();
      emu.close();
    }
  },
});

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
