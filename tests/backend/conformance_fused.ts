/**
 * Fused and bf16 properties of the conformance suite: batch norm forward (training and inference)
 * with and without the residual add and the ReLU, its backward with the ReLU mask (from the
 * forward's output) and the residual gradient, each in f32 and bf16; and the bf16 variants of the
 * convolutions and gemm.
 *
 * @module
 */

import fc from "fast-check";
import type { Backend } from "../../src/backend/backend.ts";
import { bf16ArrayToF32, f32ArrayToBf16 } from "../../src/backend/bf16.ts";
import { abs, type Bound, type Call, check } from "./conformance_harness.ts";
import { bnScales } from "./conformance_scales.ts";
import { convGeometry, type Prop, property, vals } from "./conformance_spec.ts";

type Float = "f32" | "bf16";

/** Host data of dtype `t` for f32 values (bf16: rounded to nearest even). */
function as(t: Float, a: Float32Array): Float32Array | Uint16Array {
  return t === "bf16" ? f32ArrayToBf16(a) : a;
}

/** The values a backend sees for `a` stored as `t`. */
function seen(t: Float, a: Float32Array): Float32Array {
  return t === "bf16" ? bf16ArrayToF32(f32ArrayToBf16(a)) : a;
}

const bnCase = fc.record({
  n: fc.integer({ min: 1, max: 4 }),
  c: fc.oneof(fc.integer({ min: 1, max: 20 }), fc.constant(16)),
  hw: fc.integer({ min: 1, max: 20 }),
}).chain((g) => {
  const n = g.n * g.c * g.hw;
  return fc.record({
    g: fc.constant(g),
    x: vals(n),
    dy: vals(n),
    y: vals(n),
    residual: vals(n),
    gamma: vals(g.c, -2, 2),
    beta: vals(g.c, -2, 2),
    mean: vals(g.c, -1, 1),
    variance: vals(g.c, 0.1, 4),
    eps: fc.constantFrom(1e-5, 1e-3),
    relu: fc.boolean(),
    withResidual: fc.boolean(),
    dtype: fc.constantFrom<Float>("f32", "bf16"),
  });
});

/** Registers the fused batch-norm and bf16 properties through `d`. */
export function defineFused(d: (kernel: string, prop: Prop) => void): void {
  d("batchNorm fused (+residual, +ReLU; f32 and bf16) forward and backward", (sub, ref) => {
    property(bnCase, (c) => {
      const { g, eps, relu, dtype: t } = c;
      const N = c.x.length;
      const out = { n: N, dtype: t };
      const x = as(t, c.x);
      const res: Call["inputs"] = c.withResidual ? { residual: as(t, c.residual) } : {};
      const label = `${t}${relu ? " relu" : ""}${c.withResidual ? " residual" : ""}`;
      const fwd = (training: boolean) => (be: Backend, s: Bound) => {
        const common = { x: s.x, gamma: s.gamma, beta: s.beta, y: s.y, geom: g, eps, relu };
        const residual = s.residual ?? null;
        if (training) {
          be.batchNormForwardTraining({ ...common, mean: s.mean, variance: s.variance, residual });
        } else {
          be.batchNormForwardInference({ ...common, mean: s.mean, variance: s.variance, residual });
        }
      };
      const xs = seen(t, c.x);
      const rs = c.withResidual ? seen(t, c.residual) : null;
      const withResidual = (sc: Record<string, Float32Array>) => {
        if (rs) sc.y = sc.y.map((v, i) => v + Math.abs(rs[i]));
        return sc;
      };
      const { gamma, beta, mean, variance } = c;
      check(
        sub,
        ref,
        `batchNormForwardTraining ${label}`,
        { inputs: { x, gamma, beta, ...res }, outputs: { y: out, mean: g.c, variance: g.c } },
        fwd(true),
        { scale: withResidual(bnScales(g, eps, xs, xs, gamma, beta, null)) },
      );
      check(
        sub,
        ref,
        `batchNormForwardInference ${label}`,
        { inputs: { x, gamma, beta, mean, variance, ...res }, outputs: { y: out } },
        fwd(false),
        { scale: withResidual(bnScales(g, eps, xs, xs, gamma, beta, { mean, variance })) },
      );
      const outputs: Call["outputs"] = { dx: out, dgamma: g.c, dbeta: g.c };
      if (c.withResidual) outputs.dresidual = out;
      const inputs: Call["inputs"] = { x, dy: as(t, c.dy), gamma, mean, variance };
      if (relu) inputs.y = as(t, c.y);
      check(
        sub,
        ref,
        `batchNormBackward ${label}`,
        { inputs, outputs },
        (be, s) =>
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
            y: s.y ?? null,
            dresidual: s.dresidual ?? null,
          }),
        { scale: bnScales(g, eps, xs, seen(t, c.dy), gamma, beta, { mean, variance }) },
      );
    });
  });

  d("bf16: conv2dForward / BackwardData / BackwardWeights and gemm", (sub, ref) => {
    const convArb = convGeometry.chain((g) =>
      fc.tuple(
        fc.constant(g),
        vals(g.n * g.c * g.h * g.w),
        vals(g.k * g.c * g.r * g.s),
        vals(g.n * g.k * g.outH * g.outW),
      )
    );
    property(convArb, ([geom, xf, wf, dyf]) => {
      const [x, w, dy] = [xf, wf, dyf].map((a) => f32ArrayToBf16(a));
      const out = (n: number) => ({ n, dtype: "bf16" as const });
      const fwd = (be: Backend, s: Bound) => be.conv2dForward({ x: s.x, w: s.w, y: s.y, geom });
      const bd = (be: Backend, s: Bound) =>
        be.conv2dBackwardData({ dy: s.dy, w: s.w, dx: s.dx, geom });
      const bw = (be: Backend, s: Bound) =>
        be.conv2dBackwardWeights({ x: s.x, dy: s.dy, dw: s.dw, geom });
      const [yN, xN, wN] = [dy.length, x.length, w.length];
      check(sub, ref, "conv2dForward bf16", { inputs: { x, w }, outputs: { y: out(yN) } }, fwd, {
        absCall: { inputs: { x: abs(x), w: abs(w) }, outputs: { y: out(yN) } },
      });
      check(
        sub,
        ref,
        "conv2dBackwardData bf16",
        {
          inputs: { dy, w },
          outputs: { dx: out(xN) },
        },
        bd,
        { absCall: { inputs: { dy: abs(dy), w: abs(w) }, outputs: { dx: out(xN) } } },
      );
      check(
        sub,
        ref,
        "conv2dBackwardWeights bf16",
        {
          inputs: { x, dy },
          outputs: { dw: out(wN) },
        },
        bw,
        { absCall: { inputs: { x: abs(x), dy: abs(dy) }, outputs: { dw: out(wN) } } },
      );
    }, 8);
    const gemmArb = fc.record({
      m: fc.integer({ min: 1, max: 24 }),
      n: fc.integer({ min: 1, max: 24 }),
      k: fc.integer({ min: 0, max: 40 }),
      transA: fc.boolean(),
      transB: fc.boolean(),
      alpha: fc.constantFrom(1, 0.5, 2),
      beta: fc.constantFrom(0, 1, 0.25),
    }).chain((p) => fc.tuple(fc.constant(p), vals(p.m * p.k), vals(p.k * p.n), vals(p.m * p.n)));
    property(gemmArb, ([p, af, bf, cf]) => {
      const [a, b, c] = [af, bf, cf].map((v) => f32ArrayToBf16(v));
      const kernel = (be: Backend, s: Bound) => be.gemm({ ...p, a: s.a, b: s.b, c: s.c });
      const call = (a: Uint16Array, b: Uint16Array, c: Uint16Array): Call =>
        p.beta === 0
          ? { inputs: { a, b }, outputs: { c: { n: c.length, dtype: "bf16" } } }
          : { inputs: { a, b }, outputs: {}, inOut: { c } };
      check(sub, ref, "gemm bf16", call(a, b, c), kernel, {
        absCall: call(abs(a), abs(b), abs(c)),
      });
    }, 15);
  });
}
