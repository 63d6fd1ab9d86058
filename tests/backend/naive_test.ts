/**
 * The reference backend checked against something other than itself: the naive f64 oracles of
 * `naive_linear.ts` and `naive_norm.ts` (direct definitions, explicit Jacobians) on inputs drawn
 * by fast-check: convolutions, gemm, batch norm (fused), pooling. (`naive_rows_optim_test.ts`
 * does the row-wise kernels, the optimisers and `cast`.) The reference rounds each f64 result once, so it must agree to
 * within one f32 rounding (2^-23 relative; bf16 outputs: 2^-8) plus 1e-9 of the size of the
 * terms an output sums (different f64 summation orders): an error in a formula, an index, a
 * padding rule, a mask or a rounding is far larger.
 *
 * @module
 */

import fc from "fast-check";
import { bf16ArrayToF32, f32ArrayToBf16 } from "../../src/backend/bf16.ts";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { abs, type Call, runOn } from "./conformance_harness.ts";
import { bnScales } from "./conformance_scales.ts";
import { convGeometry, vals } from "./conformance_spec.ts";
import {
  naiveConvBackwardData,
  naiveConvBackwardWeights,
  naiveConvForward,
  naiveGemm,
  naiveGlobalAvgPool,
  naiveMaxPool,
} from "./naive_linear.ts";
import { naiveBatchNorm, naiveBatchNormBackward } from "./naive_norm.ts";
import { assertNear, BF16_TOL, F32_TOL, maxAbs } from "./naive_assert.ts";

const ref = createReferenceBackend();

const asBf16 = (a: Float32Array) => f32ArrayToBf16(a);
const widened = (a: Float32Array) => bf16ArrayToF32(f32ArrayToBf16(a));

Deno.test("naive oracle: conv2d forward / backward data / backward weights (f32 and bf16)", () => {
  const arb = convGeometry.chain((g) =>
    fc.record({
      g: fc.constant(g),
      x: vals(g.n * g.c * g.h * g.w),
      w: vals(g.k * g.c * g.r * g.s),
      dy: vals(g.n * g.k * g.outH * g.outW),
      bf16: fc.boolean(),
    })
  );
  fc.assert(
    fc.property(arb, ({ g, x, w, dy, bf16 }) => {
      const t = bf16 ? "bf16" as const : "f32" as const;
      const host = bf16 ? asBf16 : (a: Float32Array) => a;
      const [xs, ws, dys] = bf16 ? [widened(x), widened(w), widened(dy)] : [x, w, dy];
      const rel = bf16 ? BF16_TOL : F32_TOL;
      const out = (n: number) => ({ n, dtype: t });
      const y = runOn(ref, { inputs: { x: host(x), w: host(w) }, outputs: { y: out(dy.length) } }, (
        be,
        s,
      ) => be.conv2dForward({ x: s.x, w: s.w, y: s.y, geom: g })).y;
      const dx = runOn(ref, {
        inputs: { dy: host(dy), w: host(w) },
        outputs: { dx: out(x.length) },
      }, (be, s) => be.conv2dBackwardData({ dy: s.dy, w: s.w, dx: s.dx, geom: g })).dx;
      const dw = runOn(ref, {
        inputs: { x: host(x), dy: host(dy) },
        outputs: { dw: out(w.length) },
      }, (be, s) => be.conv2dBackwardWeights({ x: s.x, dy: s.dy, dw: s.dw, geom: g })).dw;
      assertNear(
        "conv2dForward",
        y,
        naiveConvForward(xs, ws, g),
        naiveConvForward(abs(xs), abs(ws), g),
        rel,
      );
      assertNear(
        "conv2dBackwardData",
        dx,
        naiveConvBackwardData(dys, ws, g),
        naiveConvBackwardData(abs(dys), abs(ws), g),
        rel,
      );
      assertNear(
        "conv2dBackwardWeights",
        dw,
        naiveConvBackwardWeights(xs, dys, g),
        naiveConvBackwardWeights(abs(xs), abs(dys), g),
        rel,
      );
    }),
    { numRuns: 15 },
  );
});

Deno.test("naive oracle: gemm (transposes, alpha, beta; f32 and bf16)", () => {
  const arb = fc.record({
    m: fc.integer({ min: 1, max: 12 }),
    n: fc.integer({ min: 1, max: 12 }),
    k: fc.integer({ min: 0, max: 20 }),
    transA: fc.boolean(),
    transB: fc.boolean(),
    alpha: fc.constantFrom(1, 0.5, -2),
    beta: fc.constantFrom(0, 1, 0.25),
    bf16: fc.boolean(),
  }).chain((d) =>
    fc.record({ d: fc.constant(d), a: vals(d.m * d.k), b: vals(d.k * d.n), c: vals(d.m * d.n) })
  );
  fc.assert(
    fc.property(arb, ({ d, a, b, c }) => {
      const host = d.bf16 ? asBf16 : (v: Float32Array) => v;
      const see = d.bf16 ? widened : (v: Float32Array) => v;
      const call: Call = { inputs: { a: host(a), b: host(b) }, outputs: {}, inOut: { c: host(c) } };
      const got = runOn(ref, call, (be, s) => be.gemm({ ...d, a: s.a, b: s.b, c: s.c })).c;
      const want = naiveGemm(see(a), see(b), see(c), d);
      const scale = naiveGemm(abs(see(a)), abs(see(b)), abs(see(c)), {
        ...d,
        alpha: Math.abs(d.alpha),
      });
      assertNear("gemm", got, want, scale, d.bf16 ? BF16_TOL : F32_TOL);
    }),
    { numRuns: 40 },
  );
});

Deno.test("naive oracle: batch norm (training, inference, fused residual + ReLU, backward)", () => {
  const arb = fc.record({
    n: fc.integer({ min: 1, max: 3 }),
    c: fc.integer({ min: 1, max: 4 }),
    hw: fc.integer({ min: 1, max: 9 }),
  }).chain((g) => {
    const n = g.n * g.c * g.hw;
    return fc.record({
      g: fc.constant(g),
      x: vals(n),
      dy: vals(n),
      y: vals(n),
      residual: fc.option(vals(n), { nil: null }),
      gamma: vals(g.c, -2, 2),
      beta: vals(g.c, -2, 2),
      mean: vals(g.c, -1, 1),
      variance: vals(g.c, 0.1, 4),
      eps: fc.constantFrom(1e-5, 1e-3),
      relu: fc.boolean(),
      bf16: fc.boolean(),
    });
  });
  fc.assert(
    fc.property(arb, (c) => {
      const { g, eps, relu, gamma, beta, mean, variance } = c;
      const N = c.x.length;
      const t = c.bf16 ? "bf16" as const : "f32" as const;
      const host = c.bf16 ? asBf16 : (a: Float32Array) => a;
      const see = c.bf16 ? widened : (a: Float32Array) => a;
      const rel = c.bf16 ? BF16_TOL : F32_TOL;
      const res: Call["inputs"] = c.residual ? { residual: host(c.residual) } : {};
      const fusion = { residual: c.residual && see(c.residual), relu };
      const [x, dy, y] = [see(c.x), see(c.dy), see(c.y)];
      const sc = bnScales(g, eps, x, dy, gamma, beta, null);
      const ysc = sc.y.map((v, i) => v + Math.abs(fusion.residual?.[i] ?? 0));

      const train = runOn(ref, {
        inputs: { x: host(c.x), gamma, beta, ...res },
        outputs: { y: { n: N, dtype: t }, mean: g.c, variance: g.c },
      }, (be, s) =>
        be.batchNormForwardTraining({
          x: s.x,
          gamma: s.gamma,
          beta: s.beta,
          y: s.y,
          mean: s.mean,
          variance: s.variance,
          residual: s.residual ?? null,
          relu,
          geom: g,
          eps,
        }));
      const wantTrain = naiveBatchNorm(x, gamma, beta, null, g, eps, fusion);
      assertNear("batchNormForwardTraining y", train.y, wantTrain.y, ysc, rel);
      assertNear("batchNormForwardTraining mean", train.mean, wantTrain.mean, sc.mean);
      assertNear(
        "batchNormForwardTraining variance",
        train.variance,
        wantTrain.variance,
        sc.variance,
      );

      const infer = runOn(ref, {
        inputs: { x: host(c.x), gamma, beta, mean, variance, ...res },
        outputs: { y: { n: N, dtype: t } },
      }, (be, s) =>
        be.batchNormForwardInference({
          x: s.x,
          gamma: s.gamma,
          beta: s.beta,
          mean: s.mean,
          variance: s.variance,
          y: s.y,
          residual: s.residual ?? null,
          relu,
          geom: g,
          eps,
        }));
      const wantInfer = naiveBatchNorm(x, gamma, beta, { mean, variance }, g, eps, fusion);
      assertNear("batchNormForwardInference y", infer.y, wantInfer.y, ysc, rel);

      const back = runOn(ref, {
        inputs: { x: host(c.x), dy: host(c.dy), y: host(c.y), gamma, mean, variance },
        outputs: {
          dx: { n: N, dtype: t },
          dgamma: g.c,
          dbeta: g.c,
          dresidual: { n: N, dtype: t },
        },
      }, (be, s) =>
        be.batchNormBackward({
          x: s.x,
          dy: s.dy,
          gamma: s.gamma,
          mean: s.mean,
          variance: s.variance,
          dx: s.dx,
          dgamma: s.dgamma,
          dbeta: s.dbeta,
          geom: g,
          eps,
          relu,
          y: relu ? s.y : null,
          dresidual: s.dresidual,
        }));
      const wantBack = naiveBatchNormBackward(
        x,
        dy,
        gamma,
        mean,
        variance,
        g,
        eps,
        relu ? { y } : null,
      );
      const bsc = bnScales(g, eps, x, dy, gamma, beta, { mean, variance });
      assertNear("batchNormBackward dx", back.dx, wantBack.dx, bsc.dx, rel);
      assertNear("batchNormBackward dgamma", back.dgamma, wantBack.dgamma, bsc.dgamma);
      assertNear("batchNormBackward dbeta", back.dbeta, wantBack.dbeta, bsc.dbeta);
      assertNear("batchNormBackward dresidual", back.dresidual, wantBack.dresidual, 0, 0);
    }),
    { numRuns: 40 },
  );
});

Deno.test("naive oracle: max pooling (ties, padding) and global average pooling", () => {
  const arb = fc.record({
    n: fc.integer({ min: 1, max: 2 }),
    c: fc.integer({ min: 1, max: 3 }),
    h: fc.integer({ min: 1, max: 8 }),
    w: fc.integer({ min: 1, max: 8 }),
    kernelH: fc.integer({ min: 1, max: 3 }),
    kernelW: fc.integer({ min: 1, max: 3 }),
    strideH: fc.integer({ min: 1, max: 3 }),
    strideW: fc.integer({ min: 1, max: 3 }),
    padH: fc.integer({ min: 0, max: 1 }),
    padW: fc.integer({ min: 0, max: 1 }),
  }).map((g) => {
    const padH = Math.min(g.padH, g.kernelH >> 1), padW = Math.min(g.padW, g.kernelW >> 1);
    const outH = Math.floor((g.h + 2 * padH - g.kernelH) / g.strideH) + 1;
    const outW = Math.floor((g.w + 2 * padW - g.kernelW) / g.strideW) + 1;
    return { ...g, padH, padW, outH, outW };
  }).filter((g) => g.outH >= 1 && g.outW >= 1).chain((g) =>
    fc.record({
      g: fc.constant(g),
      // Small integers: many ties, where the first maximum must take the gradient.
      x: fc.array(fc.integer({ min: -2, max: 2 }), {
        minLength: g.n * g.c * g.h * g.w,
        maxLength: g.n * g.c * g.h * g.w,
      }).map((a) => Float32Array.from(a)),
      dy: vals(g.n * g.c * g.outH * g.outW),
      gdy: vals(g.n * g.c),
    })
  );
  fc.assert(
    fc.property(arb, ({ g, x, dy, gdy }) => {
      const want = naiveMaxPool(x, dy, g);
      const y = runOn(ref, { inputs: { x }, outputs: { y: dy.length } }, (be, s) =>
        be.maxPool2dForward({ x: s.x, y: s.y, geom: g })).y;
      const dx = runOn(ref, { inputs: { x, dy }, outputs: { dx: x.length } }, (be, s) =>
        be.maxPool2dBackward({ x: s.x, dy: s.dy, dx: s.dx, geom: g })).dx;
      assertNear("maxPool2dForward", y, want.y, 0);
      assertNear("maxPool2dBackward", dx, want.dx, maxAbs(dy) * 9);
      const hw = g.h * g.w, planes = g.n * g.c;
      const gap = naiveGlobalAvgPool(x, gdy, planes, hw);
      const o = { n: g.n, c: g.c, hw };
      const gy = runOn(ref, { inputs: { x }, outputs: { y: planes } }, (be, s) =>
        be.globalAvgPool({ ...o, x: s.x, y: s.y })).y;
      const gdx = runOn(ref, { inputs: { dy: gdy }, outputs: { dx: x.length } }, (be, s) =>
        be.globalAvgPoolBackward({ ...o, dy: s.dy, dx: s.dx })).dx;
      assertNear("globalAvgPool", gy, gap.y, maxAbs(x));
      assertNear("globalAvgPoolBackward", gdx, gap.dx, 0);
    }),
    { numRuns: 40 },
  );
});
