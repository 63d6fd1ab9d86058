import assert from "node:assert/strict";
import fc from "fast-check";
import { scaleLr, warmupCosineLr, warmupSteps } from "../../src/optim/mod.ts";

const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

Deno.test("warm-up lasts 5 epochs for 200 epochs, and 2.5 % of all steps for short runs", () => {
  // CIFAR-10, batch 256, drop_last: 195 steps per epoch.
  assert.equal(warmupSteps({ stepsPerEpoch: 195, totalSteps: 195 * 200 }), 975);
  assert.equal(warmupSteps({ stepsPerEpoch: 195, totalSteps: 195 * 800 }), 975);
  // --epochs 10: a quarter of an epoch (floor of 48.75).
  assert.equal(warmupSteps({ stepsPerEpoch: 195, totalSteps: 1950 }), 48);
  assert.equal(warmupSteps({ stepsPerEpoch: 390, totalSteps: 78000 }), 1950);
  assert.equal(warmupSteps({ stepsPerEpoch: 10, totalSteps: 20 }), 0);
  assert.equal(warmupSteps({ stepsPerEpoch: 10, totalSteps: 1000, warmupEpochs: 10 }), 25);
  assert.equal(
    warmupSteps({ stepsPerEpoch: 10, totalSteps: 1000, warmupEpochs: 10, maxWarmupFraction: 1 }),
    100,
  );
});

Deno.test("warmupCosineLr: linear from 0, peak at the end of warm-up, cosine to 0", () => {
  const opts = { baseLr: 0.06, stepsPerEpoch: 10, totalSteps: 2000 }; // warm-up 50 steps
  assert.equal(warmupCosineLr(0, opts), 0);
  close(warmupCosineLr(1, opts), 0.06 / 50);
  close(warmupCosineLr(25, opts), 0.03);
  close(warmupCosineLr(49, opts), 0.06 * 49 / 50);
  close(warmupCosineLr(50, opts), 0.06);
  // Half-way through the cosine part: (2000 - 50) / 2 steps after its start.
  close(warmupCosineLr(50 + 975, opts), 0.03);
  close(warmupCosineLr(1999, opts), 0.03 * (1 + Math.cos(Math.PI * 1949 / 1950)));
  assert.equal(warmupCosineLr(2000, opts), 0);
  // No warm-up at all: starts at the peak.
  close(warmupCosineLr(0, { baseLr: 0.5, stepsPerEpoch: 10, totalSteps: 20 }), 0.5);
});

Deno.test("warmupCosineLr is continuous, in [0, base], rising then falling", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 100 }),
      fc.integer({ min: 1, max: 50 }),
      fc.double({ min: 0.001, max: 5, noNaN: true }),
      (stepsPerEpoch, epochs, baseLr) => {
        const opts = { baseLr, stepsPerEpoch, totalSteps: stepsPerEpoch * epochs };
        const warm = warmupSteps(opts);
        const cosJump = baseLr * Math.PI / (2 * (opts.totalSteps - warm));
        const maxJump = Math.max(warm > 0 ? baseLr / warm : 0, cosJump) * (1 + 1e-9);
        let prev = warmupCosineLr(0, opts);
        assert.equal(prev, warm > 0 ? 0 : baseLr);
        for (let t = 1; t <= opts.totalSteps; t++) {
          const lr = warmupCosineLr(t, opts);
          assert.ok(lr >= 0 && lr <= baseLr * (1 + 1e-12), `lr(${t}) = ${lr}`);
          assert.ok(t <= warm ? lr > prev : lr <= prev, `lr(${t}) = ${lr} after ${prev}`);
          assert.ok(Math.abs(lr - prev) <= maxJump, `jump at ${t}: ${prev} -> ${lr}`);
          prev = lr;
        }
        assert.equal(prev, 0);
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("scaleLr applies lr * batch / 256 unless disabled", () => {
  close(scaleLr(0.06, 256), 0.06);
  close(scaleLr(0.06, 512), 0.12);
  close(scaleLr(0.05, 64), 0.0125);
  assert.equal(scaleLr(0.06, 512, { enabled: false }), 0.06);
  close(scaleLr(0.1, 128, { referenceBatch: 64 }), 0.2);
  assert.throws(() => scaleLr(0.06, 0), /batchSize is 0 but must be an integer >= 1/);
});

Deno.test("schedules reject impossible settings with a clear error", () => {
  assert.throws(
    () => warmupSteps({ stepsPerEpoch: 0, totalSteps: 10 }),
    /stepsPerEpoch is 0 but must be an integer >= 1/,
  );
  assert.throws(
    () => warmupCosineLr(-1, { baseLr: 1, stepsPerEpoch: 1, totalSteps: 1 }),
    /step is -1/,
  );
  assert.throws(
    () => warmupSteps({ stepsPerEpoch: 1, totalSteps: 10, maxWarmupFraction: 2 }),
    /maxWarmupFraction is 2 but must be in \[0, 1\]/,
  );
});
