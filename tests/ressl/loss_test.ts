import assert from "node:assert/strict";
import fc from "fast-check";
import { backendTest, forEachBackend } from "../backends.ts";
import { MASKED_LOGIT, relationLoss, relationLossFromLogits } from "../../src/ressl/loss.ts";
import { createContext, type Tensor, valueAndGrad } from "../../src/tensor/mod.ts";
import {
  hostRelationLoss,
  lossFromLogits,
  similarities,
  teacherEntropy,
  unitRows,
} from "./loss_helpers.ts";

forEachBackend("ressl loss", (b) => {
  const ctx = createContext(b.create());
  const test = backendTest(b);
  const near = (a: number, b: number, atol: number, rtol = 1e-5) =>
    Math.abs(a - b) <= atol + rtol * Math.abs(b);

  /** Sizes and seeds of a random problem. */
  const problem = fc.record({
    b: fc.integer({ min: 1, max: 4 }),
    d: fc.integer({ min: 2, max: 6 }),
    k: fc.integer({ min: 1, max: 10 }),
    seed: fc.integer({ min: 0, max: 2 ** 30 }),
  });

  /** Value of a scalar-returning function of tensors, evaluated in a scope. */
  function value(f: () => Tensor): number {
    return ctx.scope(() => f().item());
  }

  test("relationLoss equals the spec's formula (f64 reference), default tau 0.1 / 0.04", () => {
    fc.assert(
      fc.property(problem, ({ b, d, k, seed }) => {
        const q = unitRows(seed, b, d), kk = unitRows(seed + 1, b, d), Q = unitRows(seed + 2, k, d);
        const got = value(() =>
          relationLoss(
            ctx.fromArray(q, [b, d]),
            ctx.fromArray(kk, [b, d]),
            ctx.fromArray(Q, [k, d]),
          )
        );
        const want = hostRelationLoss(q, kk, Q, d, 0.1, 0.04);
        assert.ok(near(got, want, 1e-5), `${got} vs ${want}`);
      }),
      { numRuns: 60 },
    );
    assert.equal(ctx.liveTensors, 0);
  });

  test("loss >= H(p_t), with equality when tau_s = tau_t and q = k", () => {
    fc.assert(
      fc.property(problem, fc.double({ min: 0.02, max: 1, noNaN: true }), (p, tau) => {
        const { b, d, k, seed } = p;
        const q = unitRows(seed, b, d), kk = unitRows(seed + 1, b, d), Q = unitRows(seed + 2, k, d);
        const t = similarities(kk, Q, d).map((r) => r.map((v) => v / tau));
        const h = teacherEntropy(t);
        const [qT, kT, QT] = [
          ctx.fromArray(q, [b, d]),
          ctx.fromArray(kk, [b, d]),
          ctx.fromArray(Q, [k, d]),
        ];
        const opts = { tauS: tau, tauT: tau };
        const same = value(() => relationLoss(kT, kT, QT, opts));
        const other = value(() => relationLoss(qT, kT, QT, opts));
        [qT, kT, QT].forEach((x) => x.dispose());
        assert.ok(near(same, h, 1e-4), `q = k: ${same} vs H(p_t) = ${h}`);
        assert.ok(other >= h - 1e-4, `${other} < H(p_t) = ${h}`);
        // Strictly above unless the student's distribution matches (KL > 0).
        const s = similarities(q, Q, d).map((r) => r.map((v) => v / tau));
        const kl = lossFromLogits(s, t) - h;
        if (kl > 1e-3) assert.ok(other > h + kl / 2, `${other} vs ${h} + KL ${kl}`);
      }),
      { numRuns: 60 },
    );
  });

  test("the loss ignores the order of the queue rows", () => {
    fc.assert(
      fc.property(problem, fc.integer({ min: 0, max: 1e6 }), ({ b, d, k, seed }, shift) => {
        const q = unitRows(seed, b, d), kk = unitRows(seed + 1, b, d), Q = unitRows(seed + 2, k, d);
        // A rotation composed with a reversal reaches many permutations cheaply.
        const perm = Array.from({ length: k }, (_, i) => (k - 1 - i + shift) % k);
        const P = new Float32Array(k * d);
        perm.forEach((src, i) => P.set(Q.subarray(src * d, src * d + d), i * d));
        const qT = ctx.fromArray(q, [b, d]), kT = ctx.fromArray(kk, [b, d]);
        const a = value(() => relationLoss(qT, kT, ctx.fromArray(Q, [k, d])));
        const c = value(() => relationLoss(qT, kT, ctx.fromArray(P, [k, d])));
        qT.dispose();
        kT.dispose();
        assert.ok(near(a, c, 1e-5), `${a} vs ${c}`);
      }),
      { numRuns: 40 },
    );
  });

  test("the logits-level loss ignores a constant added to a row of either logits", () => {
    const logit = fc.double({ min: -30, max: 30, noNaN: true });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 2 ** 30 }),
        fc.array(logit, { minLength: 64, maxLength: 64 }),
        fc.double({ min: -50, max: 50, noNaN: true }),
        fc.nat(),
        (rows, cols, seed, pool, c, which) => {
          const s = Float32Array.from({ length: rows * cols }, (_, i) => pool[(i + seed) % 64]);
          const t = Float32Array.from({ length: rows * cols }, (_, i) => pool[(3 * i + 1) % 64]);
          const r = which % rows;
          const shifted = (x: Float32Array) =>
            x.map((v, i) => Math.floor(i / cols) === r ? Math.fround(v + c) : v);
          const f = (a: Float32Array, b: Float32Array) =>
            value(() =>
              relationLossFromLogits(ctx.fromArray(a, [rows, cols]), ctx.fromArray(b, [rows, cols]))
            );
          const base = f(s, t);
          // The f32 rounding of v + c perturbs logits by up to |v + c| * 2^-24.
          const tol = 1e-5 + 4 * (Math.abs(c) + 30) * 2 ** -24 * (1 + Math.abs(base));
          assert.ok(near(f(shifted(s), t), base, tol), "student row shift");
          assert.ok(near(f(s, shifted(t)), base, tol), "teacher row shift");
        },
      ),
      { numRuns: 60 },
    );
  });

  /** d loss / d q by autodiff, with gradients of k and queue. */
  function gradients(
    q: Float32Array,
    k: Float32Array,
    Q: Float32Array,
    b: number,
    d: number,
    tauS: number,
    tauT: number,
  ) {
    const params = {
      q: ctx.fromArray(q, [b, d]),
      k: ctx.fromArray(k, [b, d]),
      queue: ctx.fromArray(Q, [Q.length / d, d]),
    };
    const r = valueAndGrad((p: typeof params) => relationLoss(p.q, p.k, p.queue, { tauS, tauT }))(
      params,
    );
    const out = {
      value: r.value.item(),
      q: r.grads.q.toFloat32(),
      k: r.grads.k.toFloat32(),
      queue: r.grads.queue.toFloat32(),
    };
    [r.value, r.grads.q, r.grads.k, r.grads.queue, params.q, params.k, params.queue].forEach((t) =>
      t.dispose()
    );
    return out;
  }

  test("the gradient in q equals central finite differences of the f64 loss", () => {
    fc.assert(
      fc.property(problem, fc.double({ min: 0.05, max: 0.5, noNaN: true }), (p, tauS) => {
        const { b, d, k, seed } = p;
        const q = unitRows(seed, b, d), kk = unitRows(seed + 1, b, d), Q = unitRows(seed + 2, k, d);
        const g = gradients(q, kk, Q, b, d, tauS, 0.04);
        const h = 1e-6;
        const x = Float64Array.from(q);
        for (let i = 0; i < x.length; i++) {
          const plus = Float64Array.from(x), minus = Float64Array.from(x);
          plus[i] += h;
          minus[i] -= h;
          const fd = (hostRelationLoss(plus, kk, Q, d, tauS, 0.04) -
            hostRelationLoss(minus, kk, Q, d, tauS, 0.04)) / (2 * h);
          assert.ok(near(g.q[i], fd, 1e-4, 1e-3), `dq[${i}] = ${g.q[i]} vs ${fd}`);
        }
      }),
      { numRuns: 30 },
    );
  });

  test("no gradient reaches the teacher keys or the queue", () => {
    const b = 3, d = 5, k = 7;
    const g = gradients(unitRows(1, b, d), unitRows(2, b, d), unitRows(3, k, d), b, d, 0.1, 0.04);
    assert.ok(g.q.some((v) => Math.abs(v) > 1e-4), "q gets a gradient");
    assert.deepEqual(Array.from(g.k), new Array(b * d).fill(0));
    assert.deepEqual(Array.from(g.queue), new Array(k * d).fill(0));
    assert.equal(ctx.liveTensors, 0);
  });

  test("loss and gradient stay finite for q and k equal to ±queue rows, tau_t = 0.04", () => {
    fc.assert(
      fc.property(
        problem,
        fc.array(fc.tuple(fc.nat(), fc.boolean(), fc.nat(), fc.boolean()), {
          minLength: 4,
          maxLength: 4,
        }),
        fc.constantFrom(0.1, 0.04, 0.01),
        ({ b, d, k, seed }, picks, tauS) => {
          const Q = unitRows(seed, k, d);
          const q = new Float32Array(b * d), kk = new Float32Array(b * d);
          for (let i = 0; i < b; i++) {
            const [qi, qs, ki, ks] = picks[i];
            q.set(Q.subarray((qi % k) * d, (qi % k + 1) * d).map((v) => qs ? -v : v), i * d);
            kk.set(Q.subarray((ki % k) * d, (ki % k + 1) * d).map((v) => ks ? -v : v), i * d);
          }
          const g = gradients(q, kk, Q, b, d, tauS, 0.04);
          // >= 0 up to f32 rounding (a cross-entropy of one-hot-like targets can round below 0).
          assert.ok(Number.isFinite(g.value) && g.value >= -1e-5, `loss ${g.value}`);
          assert.ok(g.q.every(Number.isFinite), "finite gradient");
          const want = hostRelationLoss(q, kk, Q, d, tauS, 0.04);
          assert.ok(near(g.value, want, 1e-4, 1e-4), `${g.value} vs ${want}`);
        },
      ),
      { numRuns: 60 },
    );
  });

  test("currentBatchKeys appends the batch's keys to the basis, masking each row's own key", () => {
    const b = 4, d = 6, k = 8;
    const q = unitRows(11, b, d), kk = unitRows(12, b, d), Q = unitRows(13, k, d);
    const basis = Float32Array.from([...Q, ...kk]);
    const s = similarities(q, basis, d).map((r) => r.map((v) => v / 0.1));
    const t = similarities(kk, basis, d).map((r) => r.map((v) => v / 0.04));
    const want = lossFromLogits(s, t, (i, j) => j !== k + i);
    const got = value(() =>
      relationLoss(ctx.fromArray(q, [b, d]), ctx.fromArray(kk, [b, d]), ctx.fromArray(Q, [k, d]), {
        currentBatchKeys: true,
      })
    );
    assert.ok(near(got, want, 1e-5), `${got} vs ${want}`);
    const plain = hostRelationLoss(q, kk, Q, d, 0.1, 0.04);
    assert.ok(Math.abs(got - plain) > 1e-3, "the variant differs from the queue-only loss");
    assert.ok(MASKED_LOGIT <= -1e8);
  });

  test("relationLoss rejects mismatched shapes and temperatures with clear errors", () => {
    ctx.scope(() => {
      const q = ctx.zeros([2, 3]), k = ctx.zeros([2, 3]), Q = ctx.zeros([5, 4]);
      assert.throws(() => relationLoss(q, k, Q), /q \[2,3\], k \[2,3\] and the queue \[5,4\]/);
      assert.throws(
        () => relationLoss(q, k, ctx.zeros([5, 3]), { tauT: 0 }),
        /tauT is 0 but must be > 0/,
      );
      assert.throws(
        () => relationLossFromLogits(ctx.zeros([2, 3]), ctx.zeros([2, 4])),
        /student logits \[2,3\] and teacher logits \[2,4\] differ in shape/,
      );
    });
  });
});
