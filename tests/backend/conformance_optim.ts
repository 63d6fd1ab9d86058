/**
 * Multi-tensor optimiser properties of the conformance suite: `sgdUpdateMulti` (momentum 0 or
 * not, Nesterov, per-tensor weight decay, with and without LARS: adapted and non-adapted tensors,
 * clipping, tensors with a zero gradient or zero weights) and `emaUpdateMulti` (separate outputs
 * and in place), every tensor of the list compared after the call.
 *
 * @module
 */

import fc from "fast-check";
import type { Backend, LarsSettings, Storage } from "../../src/backend/backend.ts";
import { assertClose, readF32, uploadNew } from "./conformance_harness.ts";
import { type Prop, property, vals } from "./conformance_spec.ts";

/** One tensor of a multi-tensor call: its values and how it is special. */
const tensor = fc.integer({ min: 1, max: 300 }).chain((n) =>
  fc.record({
    p: fc.oneof({ weight: 4, arbitrary: vals(n, -2, 2) }, fc.constant(new Float32Array(n))),
    g: fc.oneof({ weight: 4, arbitrary: vals(n, -2, 2) }, fc.constant(new Float32Array(n))),
    buf: vals(n, -1, 1),
    wd: fc.constantFrom(0, 5e-4, 1e-2),
    adapt: fc.boolean(),
  })
);

const sgdCase = fc.record({
  tensors: fc.array(tensor, { minLength: 1, maxLength: 4 }),
  lr: fc.double({ min: 0.01, max: 0.5, noNaN: true }),
  momentum: fc.constantFrom(0, 0.9),
  nesterov: fc.boolean(),
  lars: fc.option(
    fc.record({
      eta: fc.constantFrom(1e-3, 0.02),
      eps: fc.constantFrom(1e-8, 1e-3),
      clip: fc.boolean(),
    }),
    { nil: null },
  ),
});

type SgdCase = typeof sgdCase extends fc.Arbitrary<infer T> ? T : never;

/** Runs one sgdUpdateMulti call on `be`; returns every parameter and buffer after it. */
function runSgd(be: Backend, c: SgdCase): Record<string, Float32Array> {
  const up = (a: Float32Array) => uploadNew(be, a);
  const params = c.tensors.map((t) => up(t.p));
  const grads = c.tensors.map((t) => up(t.g));
  const momentumBufs = c.tensors.map((t) => up(t.buf));
  const lars: LarsSettings | null = c.lars && { ...c.lars, adapt: c.tensors.map((t) => t.adapt) };
  be.sgdUpdateMulti({
    params,
    grads,
    momentumBufs,
    lr: c.lr,
    momentum: c.momentum,
    weightDecay: c.tensors.map((t) => t.wd),
    nesterov: c.nesterov,
    lars,
  });
  return readAndFree(be, { param: params, buf: momentumBufs }, grads);
}

/** Downloads the named lists (as `name[i]`) and frees them and `others`. */
function readAndFree(
  be: Backend,
  lists: Record<string, Storage[]>,
  others: Storage[],
): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [name, list] of Object.entries(lists)) {
    list.forEach((s, i) => (out[`${name}[${i}]`] = readF32(be, s)));
  }
  for (const s of new Set([...Object.values(lists).flat(), ...others])) be.free(s);
  return out;
}

const emaCase = fc.record({
  tensors: fc.array(
    fc.integer({ min: 1, max: 300 }).chain((n) => fc.record({ t: vals(n), s: vals(n) })),
    { minLength: 1, maxLength: 4 },
  ),
  momentum: fc.oneof(
    fc.constantFrom(0, 1, 0.99, 0.996),
    fc.double({ min: 0, max: 1, noNaN: true }),
  ),
  inPlace: fc.boolean(),
});

/** Registers the optimiser properties through `d`. */
export function defineOptim(d: (kernel: string, prop: Prop) => void): void {
  d("sgdUpdateMulti (momentum, nesterov, per-tensor decay; LARS adapt/clip/zero norms)", (s, r) => {
    property(sgdCase, (c) => {
      const got = runSgd(s, c);
      const want = runSgd(r, c);
      for (const key of Object.keys(want)) {
        // Each result is a sum of terms no larger than |p| + lr |update|: judge it normwise.
        assertClose(`${s.name} sgdUpdateMulti ${key}`, got[key], want[key], undefined, 1e-5);
      }
    }, 25);
  });
  d("emaUpdateMulti (separate outputs and in place)", (s, r) => {
    property(emaCase, (c) => {
      const run = (be: Backend) => {
        const teacher = c.tensors.map((t) => uploadNew(be, t.t));
        const student = c.tensors.map((t) => uploadNew(be, t.s));
        const out = c.inPlace
          ? teacher
          : c.tensors.map((t) => uploadNew(be, new Float32Array(t.t.length).fill(NaN)));
        be.emaUpdateMulti({ teacher, student, out, momentum: c.momentum });
        return readAndFree(be, { out }, [...teacher, ...student]);
      };
      const got = run(s);
      const want = run(r);
      for (const key of Object.keys(want)) {
        assertClose(`${s.name} emaUpdateMulti ${key}`, got[key], want[key], undefined, 1e-6);
      }
    }, 20);
  });
}
