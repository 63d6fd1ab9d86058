import assert from "node:assert/strict";
import fc from "fast-check";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { relu } from "../../src/ops/activation.ts";
import { add, mul, scale, sub } from "../../src/ops/elementwise.ts";
import { matmul } from "../../src/ops/matmul.ts";
import { mean, sum } from "../../src/ops/reduce.ts";
import { stopGradient, valueAndGrad } from "../../src/tensor/autodiff.ts";
import { createContext, type Tensor } from "../../src/tensor/tensor.ts";
import { disposeTree } from "../../src/tensor/tree.ts";

const backend = createReferenceBackend();
const ctx = createContext(backend);

/** A small vector of f32 values in [-2, 2]. */
const vecArb = fc.array(fc.float({ min: -2, max: 2, noNaN: true }), {
  minLength: 1,
  maxLength: 8,
});

function close(got: Float32Array, want: ArrayLike<number>, tol = 1e-5): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < got.length; i++) {
    assert.ok(
      Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])),
      `element ${i}: got ${got[i]}, want ${want[i]}`,
    );
  }
}

function live(): [number, number] {
  return [ctx.liveTensors, backend.liveAllocations()];
}

Deno.test("valueAndGrad: composed functions have their closed-form gradients", () => {
  fc.assert(
    fc.property(vecArb, fc.float({ min: -3, max: 3, noNaN: true }), (values, alpha) => {
      ctx.scope(() => {
        const n = values.length;
        const a = ctx.fromArray(values, [n]);
        const b = ctx.fromArray(values.map((v) => 1 - v), [n]);
        // f(a, b) = sum((a + b) * (a - b)) * alpha = alpha * sum(a^2 - b^2)
        const { value, grads } = valueAndGrad((p: { a: Tensor; b: Tensor }) =>
          scale(sum(mul(add(p.a, p.b), sub(p.a, p.b))), alpha)
        )({ a, b });
        const av = a.toFloat32();
        const bv = b.toFloat32();
        let want = 0;
        for (let i = 0; i < n; i++) want += alpha * (av[i] ** 2 - bv[i] ** 2);
        assert.ok(Math.abs(value.item() - want) <= 1e-4 * (1 + Math.abs(want)));
        close(grads.a.toFloat32(), Array.from(av, (v) => 2 * alpha * v));
        close(grads.b.toFloat32(), Array.from(bv, (v) => -2 * alpha * v));
      });
    }),
    { numRuns: 20 },
  );
});

Deno.test("valueAndGrad: matmul then mean has gradient row/column sums", () => {
  ctx.scope(() => {
    // f(A, B) = mean(A @ B) with A [2, 3], B [3, 2]: dA[i,k] = sum_j B[k,j] / 4
    const A = ctx.fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
    const B = ctx.fromArray([1, -1, 2, 0, 0.5, 3], [3, 2]);
    const { grads } = valueAndGrad(([a, b]: Tensor[]) => mean(matmul(a, b)))([A, B]);
    close(grads[0].toFloat32(), [0, 2, 3.5, 0, 2, 3.5].map((v) => v / 4));
    close(grads[1].toFloat32(), [5, 5, 7, 7, 9, 9].map((v) => v / 4));
  });
});

Deno.test("valueAndGrad: gradients accumulate when a tensor is used more than once", () => {
  fc.assert(
    fc.property(vecArb, (values) => {
      ctx.scope(() => {
        const n = values.length;
        const w = ctx.fromArray(values, [n]);
        const c = ctx.fromArray(values.map((_, i) => i - 1), [n]);
        // f(w) = sum(w * c + w * w) + sum(y * y) with y = 2w: grad = c + 2w + 8w
        const { grads } = valueAndGrad((p: Tensor) => {
          const y = scale(p, 2);
          return add(sum(add(mul(p, c), mul(p, p))), sum(mul(y, y)));
        })(w);
        const wv = w.toFloat32();
        close(grads.toFloat32(), Array.from(wv, (v, i) => i - 1 + 10 * v));
      });
    }),
    { numRuns: 20 },
  );
});

Deno.test("valueAndGrad: { value, aux } returns detached aux; unused params get zeros", () => {
  ctx.scope(() => {
    const w = ctx.fromArray([1, -2, 3], [3]);
    const unused = ctx.fromArray([7, 7], [2]);
    const { value, grads, aux } = valueAndGrad((p: { w: Tensor; unused: Tensor }) => {
      const r = relu(p.w);
      return { value: sum(r), aux: { r, note: "relu" } };
    })({ w, unused });
    assert.equal(value.item(), 4);
    assert.deepEqual([...aux.r.toFloat32()], [1, 0, 3]);
    assert.equal(aux.note, "relu");
    for (const t of [value, aux.r]) {
      assert.equal(t.requiresGrad, false);
      assert.equal(t.node, undefined);
    }
    assert.deepEqual([...grads.w.toFloat32()], [1, 0, 1]);
    assert.deepEqual([...grads.unused.toFloat32()], [0, 0]);
    assert.equal(w.requiresGrad, false, "params are not marked");
  });
});

Deno.test("valueAndGrad: intermediates are freed; results are the only new tensors", () => {
  const params = { a: ctx.fromArray([1, 2, 3, 4], [2, 2]), b: ctx.fromArray([0.5, -1], [2, 1]) };
  const before = live();
  const out = valueAndGrad((p: { a: Tensor; b: Tensor }) => {
    const h = relu(matmul(p.a, p.b));
    const y = mul(h, h);
    return { value: mean(y), aux: { h } };
  })(params);
  // value + two gradients + aux.h, each holding one storage.
  assert.deepEqual(live(), [before[0] + 4, before[1] + 4]);
  out.value.dispose();
  out.aux.h.dispose();
  disposeTree(out.grads);
  assert.deepEqual(live(), before);
  disposeTree(params);
});

Deno.test("valueAndGrad: a throwing function leaks nothing", () => {
  const w = ctx.fromArray([1, 2], [2]);
  const before = live();
  assert.throws(
    () => valueAndGrad((p: Tensor) => mul(p, p))(w),
    /Cannot differentiate a function whose value has shape \[2\]: expected a scalar/,
  );
  assert.throws(() => valueAndGrad((_p: Tensor[]) => sum(w))([]), /parameter tree is empty/);
  assert.deepEqual(live(), before);
  w.dispose();
});

Deno.test("stopGradient blocks the gradient", () => {
  fc.assert(
    fc.property(vecArb, (values) => {
      ctx.scope(() => {
        const w = ctx.fromArray(values, [values.length]);
        // f(w) = sum(w * sg(w)): gradient sg(w) = w, not 2w.
        const { grads } = valueAndGrad((p: Tensor) => sum(mul(p, stopGradient(p))))(w);
        close(grads.toFloat32(), w.toFloat32());
        const { grads: none } = valueAndGrad((p: Tensor) => sum(stopGradient(p)))(w);
        assert.ok(none.toFloat32().every((v) => v === 0));
      });
    }),
    { numRuns: 10 },
  );
});

Deno.test("a disposed tensor throws on use", () => {
  const t = ctx.fromArray([1, 2, 3], [3]);
  const v = ctx.view(t, [3, 1]);
  t.dispose();
  assert.deepEqual([...v.toFloat32()], [1, 2, 3], "a view keeps the storage alive");
  v.dispose();
  for (const use of [() => t.toArray(), () => add(t, t), () => sum(t), () => ctx.view(t, [3])]) {
    assert.throws(use, /Cannot use tensor #\d+ of shape \[3\]: it was disposed/);
  }
});
