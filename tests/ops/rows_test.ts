/**
 * sliceRows and concatRows: values equal the host-side slice / concatenation for random shapes and
 * ranges (f32 and u8), gradients match finite differences (fast-check over shapes, ranges and
 * splits, no leaks), and bad ranges or mismatched inputs fail naming the argument.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { concatRows, sliceRows } from "../../src/ops/rows.ts";
import { createContext } from "../../src/tensor/tensor.ts";
import { checkGradients } from "./grad_check.ts";

const ctx = createContext(createReferenceBackend());
const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });
const tailArb = fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 2 });

/** A shape [n, ...tail] and a row range start <= end <= n. */
const sliceArb = fc.record({
  n: fc.integer({ min: 1, max: 6 }),
  tail: tailArb,
  a: fc.nat(),
  b: fc.nat(),
  seed: seedArb,
}).map(({ n, tail, a, b, seed }) => {
  const [start, end] = [a % (n + 1), b % (n + 1)].sort((x, y) => x - y);
  return { shape: [n, ...tail], start, end, seed };
});

/** Row counts of 1-3 inputs (0 rows allowed beside others) sharing a tail. */
const concatArb = fc.record({
  rows: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 3 })
    .filter((r) => r.some((n) => n > 0)),
  tail: tailArb,
  seed: seedArb,
});

function rowSize(tail: number[]): number {
  return tail.reduce((a, b) => a * b, 1);
}

Deno.test("sliceRows: values are the rows start..end-1, for f32 and u8", () => {
  fc.assert(
    fc.property(sliceArb, ({ shape, start, end }) => {
      ctx.scope(() => {
        const cols = rowSize(shape.slice(1));
        const data = Float32Array.from({ length: shape[0] * cols }, (_, i) => i * 0.5 - 3);
        const y = sliceRows(ctx.fromArray(data, shape), start, end);
        assert.deepEqual(y.shape, [end - start, ...shape.slice(1)]);
        assert.deepEqual([...y.toFloat32()], [...data.subarray(start * cols, end * cols)]);
        const bytes = Uint8Array.from(data, (_, i) => (i * 7) % 256);
        const yu = sliceRows(ctx.fromArray(bytes, shape), start, end);
        assert.equal(yu.dtype, "u8");
        assert.deepEqual([...yu.toArray()], [...bytes.subarray(start * cols, end * cols)]);
      });
    }),
    { numRuns: 30 },
  );
});

Deno.test("concatRows: values are the inputs' rows in order", () => {
  fc.assert(
    fc.property(concatArb, ({ rows, tail }) => {
      ctx.scope(() => {
        const cols = rowSize(tail);
        let next = 0;
        const parts = rows.map((n) =>
          Float32Array.from({ length: n * cols }, () => (next++) * 0.25)
        );
        const y = concatRows(parts.map((p, i) => ctx.fromArray(p, [rows[i], ...tail])));
        assert.deepEqual(y.shape, [rows.reduce((a, b) => a + b, 0), ...tail]);
        assert.deepEqual([...y.toFloat32()], parts.flatMap((p) => [...p]));
      });
    }),
    { numRuns: 30 },
  );
});

Deno.test("sliceRows: gradient matches finite differences", () => {
  fc.assert(
    fc.property(sliceArb.filter((s) => s.end > s.start), ({ shape, start, end, seed }) => {
      checkGradients(ctx, { inputs: [{ shape }], op: (x) => sliceRows(x, start, end), seed });
    }),
    { numRuns: 20 },
  );
});

Deno.test("concatRows: gradient matches finite differences for every input", () => {
  fc.assert(
    fc.property(concatArb.filter((c) => c.rows.every((n) => n > 0)), ({ rows, tail, seed }) => {
      checkGradients(ctx, {
        inputs: rows.map((n) => ({ shape: [n, ...tail] })),
        op: (...xs) => concatRows(xs),
        seed,
      });
    }),
    { numRuns: 20 },
  );
});

Deno.test("sliceRows then concatRows round-trips, and errors name the problem", () => {
  ctx.scope(() => {
    const x = ctx.fromArray(Float32Array.from({ length: 12 }, (_, i) => i), [4, 3]);
    const back = concatRows([sliceRows(x, 0, 1), sliceRows(x, 1, 3), sliceRows(x, 3, 4)]);
    assert.deepEqual([...back.toFloat32()], [...x.toFloat32()]);
    assert.throws(() => sliceRows(x, 2, 5), /rows 2\.\.5 .* 4 rows of \[4,3\]/);
    assert.throws(() => sliceRows(x, 3, 1), /0 <= start <= end <= 4/);
    assert.throws(() => sliceRows(x, 0.5, 2), /integers/);
    assert.throws(() => sliceRows(ctx.fromArray([1], []), 0, 0), /scalar/);
    assert.throws(() => concatRows([]), /no tensors given/);
    assert.throws(
      () => concatRows([x, ctx.zeros([2, 4])]),
      /input 1 has shape \[2,4\] but input 0 has \[4,3\]/,
    );
    assert.throws(() => concatRows([x, ctx.zeros([1, 3], "i32")]), /input 1 has dtype i32/);
    const other = createContext(createReferenceBackend());
    assert.throws(() => concatRows([x, other.zeros([1, 3])]), /different contexts/);
  });
});
