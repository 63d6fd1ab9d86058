/**
 * The cuDNN stand-in against naive loops: forward, backward-data and backward-filter convolutions
 * (padding, strides, cross-correlation and convolution modes, NCHW and NHWC, f32 and bf16 with f32
 * compute, alpha/beta blending) with every emulated algorithm and its workspace. Inputs are
 * multiples of 1/4, so f32 results compare exactly.
 */

import assert from "node:assert/strict";
import { emulatorUnavailable, openEmu, skipNote } from "./emu_helpers.ts";
import {
  BF16,
  FLOAT,
  naiveConv,
  NCHW,
  NHWC,
  quarters,
  setupCudnn as setup,
  SHAPES,
  TENSOR_OP,
  toBf16Bits,
} from "./cudnn_reference.ts";

const ignore = emulatorUnavailable() !== undefined;
const note = skipNote();

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
