/**
 * Elementwise and optimiser properties of the conformance suite (axpby incl. in place, mul, ReLU,
 * sum, scalar broadcast, SGD).
 *
 * @module
 */

import fc from "fast-check";
import { check } from "./conformance_harness.ts";
import { type Prop, property, vals } from "./conformance_spec.ts";

/** Registers the elementwise properties through `d` (one test per group). */
export function defineElementwise(d: (kernel: string, prop: Prop) => void): void {
  const coef = fc.oneof(
    fc.constantFrom(0, 1, -1, 0.99, 0.01),
    fc.double({ min: -2, max: 2, noNaN: true }),
  );
  const arb = fc.integer({ min: 1, max: 400 }).chain((n) =>
    fc.record({
      n: fc.constant(n),
      x: vals(n),
      y: vals(n),
      alpha: coef,
      beta: coef,
      lr: fc.double({ min: 0, max: 0.5, noNaN: true }),
      momentum: fc.constantFrom(0, 0.9),
      weightDecay: fc.constantFrom(0, 5e-4),
      nesterov: fc.boolean(),
    })
  );
  d(
    "elementwise: axpby (incl. in place), mul, relu, reluBackward, sum, broadcastScalar",
    (s, r) => {
      property(arb, ({ n, x, y, alpha, beta }) => {
        const ab = { alpha, beta, n };
        check(
          s,
          r,
          "axpby",
          { inputs: { x, y }, outputs: { out: n } },
          (be, st) => be.axpby({ ...ab, x: st.x, y: st.y, out: st.out }),
        );
        check(
          s,
          r,
          "axpby out=x",
          { inputs: { y }, outputs: {}, inOut: { x } },
          (be, st) => be.axpby({ ...ab, x: st.x, y: st.y, out: st.x }),
        );
        check(
          s,
          r,
          "axpby out=y",
          { inputs: { x }, outputs: {}, inOut: { y } },
          (be, st) => be.axpby({ ...ab, x: st.x, y: st.y, out: st.y }),
        );
        check(
          s,
          r,
          "mul",
          { inputs: { a: x, b: y }, outputs: { out: n } },
          (be, st) => be.mul({ a: st.a, b: st.b, out: st.out, n }),
        );
        check(
          s,
          r,
          "relu",
          { inputs: { x }, outputs: { y: n } },
          (be, st) => be.relu({ x: st.x, y: st.y, n }),
        );
        const yr = x.map((v) => (v > 0 ? v : 0));
        check(
          s,
          r,
          "reluBackward",
          { inputs: { y: yr, dy: y }, outputs: { dx: n } },
          (be, st) => be.reluBackward({ y: st.y, dy: st.dy, dx: st.dx, n }),
        );
        check(
          s,
          r,
          "sum",
          { inputs: { x }, outputs: { out: 1 } },
          (be, st) => be.sum({ x: st.x, out: st.out, alpha, n }),
        );
        check(
          s,
          r,
          "broadcastScalar",
          { inputs: { s: y }, outputs: { out: n } },
          (be, st) => be.broadcastScalar({ s: st.s, out: st.out, alpha, n }),
        );
      });
    },
  );
  d("sgdUpdate (momentum, weight decay, nesterov; in place)", (s, r) => {
    property(arb, ({ n, x, y, lr, momentum, weightDecay, nesterov }) => {
      const buf = y.map((v) => v / 4);
      check(
        s,
        r,
        "sgdUpdate",
        { inputs: { grad: y }, outputs: {}, inOut: { param: x, momentumBuf: buf } },
        (be, st) =>
          be.sgdUpdate({
            param: st.param,
            grad: st.grad,
            momentumBuf: st.momentumBuf,
            n,
            lr,
            momentum,
            weightDecay,
            nesterov,
          }),
      );
    });
  });
}
