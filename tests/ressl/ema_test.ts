import assert from "node:assert/strict";
import fc from "fast-check";
import { backendTest, forEachBackend } from "../backends.ts";
import { cosineMomentum, emaMomentum, emaTiming, emaUpdate } from "../../src/ressl/ema.ts";
import { createContext, disposeTree, flattenTree } from "../../src/tensor/mod.ts";

forEachBackend("ressl ema", (b) => {
  const ctx = createContext(b.create());
  const test = backendTest(b);

  test("emaUpdate computes m * teacher + (1 - m) * student per parameter, inputs unchanged", () => {
    const f = fc.float({ min: Math.fround(-10), max: Math.fround(10), noNaN: true });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(f, f), { minLength: 1, maxLength: 12 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (pairs, m) => {
          const n = pairs.length;
          const t = pairs.map((p) => p[0]), s = pairs.map((p) => p[1]);
          const teacher = { net: { w: ctx.fromArray(t, [n]), b: ctx.fromArray([1, 2], [2]) } };
          const student = { net: { w: ctx.fromArray(s, [n]), b: ctx.fromArray([3, 5], [2]) } };
          const out = emaUpdate(teacher, student, m);
          const w = out.net.w.toFloat32();
          w.forEach((v, i) => {
            const want = m * Math.fround(t[i]) + (1 - m) * Math.fround(s[i]);
            assert.ok(Math.abs(v - want) <= 1e-6 * (1 + Math.abs(want)), `${v} vs ${want}`);
          });
          const b = out.net.b.toFloat32();
          assert.ok(
            Math.abs(b[0] - (m + 3 * (1 - m))) < 1e-6 &&
              Math.abs(b[1] - (2 * m + 5 * (1 - m))) < 1e-6,
          );
          assert.deepEqual(Array.from(teacher.net.w.toFloat32()), t.map(Math.fround));
          assert.deepEqual(Array.from(student.net.w.toFloat32()), s.map(Math.fround));
          assert.deepEqual(flattenTree(out).map(([p]) => p), ["net.w", "net.b"]);
          disposeTree([teacher, student, out]);
        },
      ),
      { numRuns: 100 },
    );
    assert.equal(ctx.liveTensors, 0);
  });

  test("m = 1 keeps the teacher, m = 0 copies the student", () => {
    ctx.scope(() => {
      const t = { w: ctx.fromArray([1, -2, 3], [3]) };
      const s = { w: ctx.fromArray([4, 5, -6], [3]) };
      assert.deepEqual(Array.from(emaUpdate(t, s, 1).w.toFloat32()), [1, -2, 3]);
      assert.deepEqual(Array.from(emaUpdate(t, s, 0).w.toFloat32()), [4, 5, -6]);
      assert.deepEqual(Array.from(emaUpdate(t, s, 0.99).w.toFloat32()), [
        Math.fround(0.99 * 1 + 0.01 * 4),
        Math.fround(0.99 * -2 + 0.01 * 5),
        Math.fround(0.99 * 3 + 0.01 * -6),
      ]);
    });
  });

  test("constant schedule: m at every step, applied at the start of the step", () => {
    const s = { kind: "constant", momentum: 0.99 } as const;
    for (const step of [0, 1, 500, 10 ** 6]) assert.equal(emaMomentum(s, step), 0.99);
    assert.equal(emaTiming(s), "start");
  });

  test("cosine schedule: solo-learn's 1 - (1 - m0)(cos(pi k / K) + 1) / 2, after the step", () => {
    const s = { kind: "cosine", base: 0.99, totalSteps: 1000 } as const;
    assert.equal(emaTiming(s), "end");
    assert.equal(emaMomentum(s, 0), 0.99);
    assert.ok(Math.abs(emaMomentum(s, 500) - 0.995) < 1e-15);
    assert.ok(Math.abs(emaMomentum(s, 250) - (1 - 0.01 * (Math.SQRT1_2 + 1) / 2)) < 1e-15);
    assert.equal(emaMomentum(s, 1000), 1);
    assert.ok(
      Math.abs(
        cosineMomentum(3, 4, 0.996, 0.999) - (0.999 - 0.003 * (Math.cos(0.75 * Math.PI) + 1) / 2),
      ) < 1e-15,
    );
    let prev = 0;
    for (let k = 0; k <= 1000; k++) {
      const m = emaMomentum(s, k);
      assert.ok(m >= prev && m >= 0.99 && m <= 1);
      prev = m;
    }
  });

  test("EMA errors name the mismatched parameter or the bad momentum", () => {
    ctx.scope(() => {
      const t = { a: ctx.zeros([2]), b: ctx.zeros([3]) };
      assert.throws(
        () => emaUpdate(t, { a: ctx.zeros([2]), b: ctx.zeros([4]) }, 0.9),
        /parameter 'b' \[3\]/,
      );
      assert.throws(
        () => emaUpdate(t, { a: ctx.zeros([2]) } as typeof t, 0.9),
        /2 parameters but the student has 1/,
      );
      assert.throws(() => emaUpdate(t, t, 1.5), /momentum is 1.5 but must be in \[0, 1\]/);
      assert.throws(() => cosineMomentum(1, 0, 0.99), /totalSteps >= 1/);
    });
  });
});
