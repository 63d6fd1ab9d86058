/**
 * Elementwise properties of the conformance suite: axpby (incl. in place), mul, ReLU, sum, scalar
 * broadcast in f32, the bf16 variants the kernel table allows, and `cast` bit for bit.
 *
 * @module
 */

import fc from "fast-check";
import type { Backend } from "../../src/backend/backend.ts";
import { f32ArrayToBf16 } from "../../src/backend/bf16.ts";
import { check, nanArray, uploadNew } from "./conformance_harness.ts";
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
  d("bf16: axpby (incl. in place), relu, reluBackward", (s, r) => {
    property(arb, ({ n, x, y, alpha, beta }) => {
      const [xb, yb] = [f32ArrayToBf16(x), f32ArrayToBf16(y)];
      const out = { n, dtype: "bf16" as const };
      const ab = { alpha, beta, n };
      check(
        s,
        r,
        "axpby bf16",
        { inputs: { x: xb, y: yb }, outputs: { out } },
        (be, st) => be.axpby({ ...ab, x: st.x, y: st.y, out: st.out }),
      );
      check(
        s,
        r,
        "axpby bf16 out=x",
        { inputs: { y: yb }, outputs: {}, inOut: { x: xb } },
        (be, st) => be.axpby({ ...ab, x: st.x, y: st.y, out: st.x }),
      );
      check(
        s,
        r,
        "relu bf16",
        { inputs: { x: xb }, outputs: { y: out } },
        (be, st) => be.relu({ x: st.x, y: st.y, n }),
      );
      check(
        s,
        r,
        "reluBackward bf16",
        { inputs: { y: xb, dy: yb }, outputs: { dx: out } },
        (be, st) => be.reluBackward({ y: st.y, dy: st.dy, dx: st.dx, n }),
      );
    });
  });
  d(
    "cast f32 <-> bf16 (ties to even, NaN, infinities, overflow, subnormals): bit-exact",
    (s, r) => {
      property(castValues, (x) => {
        const n = x.length;
        const bits = f32ArrayToBf16(x);
        for (
          const [from, to] of [["f32", "bf16"], ["bf16", "f32"], ["f32", "f32"], ["bf16", "bf16"]]
        ) {
          const input = from === "f32" ? x : bits;
          const got = castOn(s, input, to as "f32" | "bf16", n);
          const want = castOn(r, input, to as "f32" | "bf16", n);
          assertSameBits(`${s.name} cast ${from} -> ${to}`, got, want);
        }
      }, 30);
    },
  );
}

/** f32 values where rounding to bf16 is delicate: ties, near-ties, NaN, infinities, overflow. */
const castValues: fc.Arbitrary<Float32Array> = fc.array(
  fc.oneof(
    fc.float({ noDefaultInfinity: false }),
    fc.integer({ min: 0, max: 0xffff }).chain((hi) =>
      fc.constantFrom(0x8000, 0x7fff, 0x8001, 0x0000, 0x0001, 0xffff).map((lo) =>
        new Float32Array(new Uint32Array([(hi << 16 | lo) >>> 0]).buffer)[0]
      )
    ),
    fc.constantFrom(3.3895314e38, 3.39e38, 3.4028235e38, -3.4e38, 1e-40, -1e-45, 0, -0),
  ),
  { minLength: 1, maxLength: 300 },
).map((a) => Float32Array.from(a));

/** Casts host `input` to `to` on `be`; returns the raw result (f32 values or bf16 bits). */
function castOn(be: Backend, input: Float32Array | Uint16Array, to: "f32" | "bf16", n: number) {
  const x = uploadNew(be, input);
  const y = uploadNew(be, nanArray(to, n));
  be.cast({ x, y, n });
  const out = be.download(y);
  be.free(x);
  be.free(y);
  return out as Float32Array | Uint16Array;
}

/** Equal bit patterns, except that any NaN matches any NaN. */
function assertSameBits(
  what: string,
  got: Float32Array | Uint16Array,
  want: Float32Array | Uint16Array,
) {
  const isNaN = (a: Float32Array | Uint16Array, i: number) =>
    a instanceof Uint16Array
      ? (a[i] & 0x7f80) === 0x7f80 && (a[i] & 0x7f) !== 0
      : Number.isNaN(a[i]);
  const bitsOf = (a: Float32Array | Uint16Array) =>
    a instanceof Uint16Array ? a : new Uint32Array(a.buffer, a.byteOffset, a.length);
  const [g, w] = [bitsOf(got), bitsOf(want)];
  for (let i = 0; i < want.length; i++) {
    if (isNaN(want, i) ? !isNaN(got, i) : g[i] !== w[i]) {
      throw new Error(
        `${what}[${i}]: bits 0x${g[i].toString(16)}, expected 0x${w[i].toString(16)} (${want[i]})`,
      );
    }
  }
}
