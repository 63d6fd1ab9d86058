/**
 * Winograd convolutions of the cpu backend (`tuning.winograd`, on by default; the shared test
 * backends of `tests/backends.ts` turn it off). Winograd's rounding error is bounded per 4x4 output
 * tile (its transforms mix the tile's values), not per element, so the conformance suite's
 * per-element tolerance (the sum of each element's own |terms|) fails on adversarial values: an
 * output whose terms are all zero, next to large outputs, comes out as ~1e-7 of them instead of 0.
 * What this file checks instead, on ResNet-like shapes through all three passes:
 * - dense random data: Winograd within the conformance tolerance against the reference, and its
 *   worst error relative to the per-element scale below 2e-5 (measured: ~2e-6; direct ~1.5e-7);
 * - sparse, mixed-magnitude data (ReLU-like zeros, values from 1e-6 to 1): the worst error
 *   relative to the largest scale of the output (normwise) below 1e-5;
 * - that the backend really runs `jit_wino_4x3` (and the direct one never does);
 * - the whole-ResNet-18 conformance case (normwise 1e-4 per tensor) on the default backend.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Backend, Conv2dGeometry } from "../../src/backend/backend.ts";
import { outputSize } from "../../src/backend/backend.ts";
import { createCpuBackend } from "../../src/backend/cpu/backend.ts";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { abs, assertClose, type Bound, type Call, runOn } from "./conformance_harness.ts";
import { defineResNetConformance } from "./conformance_resnet.ts";
import { cpuTest, lcg } from "./cpu_test_util.ts";

function geometry(n: number, c: number, k: number, h: number, w: number): Conv2dGeometry {
  return {
    n,
    c,
    h,
    w,
    k,
    r: 3,
    s: 3,
    strideH: 1,
    strideW: 1,
    padH: 1,
    padW: 1,
    outH: outputSize(h, 3, 1, 1),
    outW: outputSize(w, 3, 1, 1),
  };
}

/** Largest |actual - expected| / (|expected| + scale) over the elements. */
function worstRelative(actual: Float32Array, expected: Float32Array, scale: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const r = Math.abs(actual[i] - expected[i]) / (Math.abs(expected[i]) + Math.abs(scale[i]));
    worst = Math.max(worst, r);
  }
  return worst;
}

interface Pass {
  name: string;
  call: Call;
  absCall: Call;
  out: string;
  run: (be: Backend, s: Bound) => void;
}

/** Half the values zero, the others spread over six decades (signs kept). */
function sparse(values: Float32Array, seed: number): Float32Array {
  const r = lcg(seed, values.length);
  return values.map((v, i) => r[i] < 0 ? 0 : v * 10 ** (-6 * Math.abs(r[(i * 7) % r.length])));
}

function passes(g: Conv2dGeometry, seed: number, mixed = false): Pass[] {
  const shape = (v: Float32Array, k: number) => mixed ? sparse(v, seed + 10 + k) : v;
  const x = shape(lcg(seed, g.n * g.c * g.h * g.w), 0);
  const w = lcg(seed + 1, g.k * g.c * 9, 0.2);
  const dy = shape(lcg(seed + 2, g.n * g.k * g.outH * g.outW), 1);
  return [
    {
      name: "forward",
      call: { inputs: { x, w }, outputs: { y: dy.length } },
      absCall: { inputs: { x: abs(x), w: abs(w) }, outputs: { y: dy.length } },
      out: "y",
      run: (be, s) => be.conv2dForward({ x: s.x, w: s.w, y: s.y, geom: g }),
    },
    {
      name: "backward-data",
      call: { inputs: { dy, w }, outputs: { dx: x.length } },
      absCall: { inputs: { dy: abs(dy), w: abs(w) }, outputs: { dx: x.length } },
      out: "dx",
      run: (be, s) => be.conv2dBackwardData({ dy: s.dy, w: s.w, dx: s.dx, geom: g }),
    },
    {
      name: "backward-weights",
      call: { inputs: { x, dy }, outputs: { dw: w.length } },
      absCall: { inputs: { x: abs(x), dy: abs(dy) }, outputs: { dw: w.length } },
      out: "dw",
      run: (be, s) => be.conv2dBackwardWeights({ x: s.x, dy: s.dy, dw: s.dw, geom: g }),
    },
  ];
}

const SHAPES: [number, number, number, number, number][] = [
  [2, 16, 16, 8, 8],
  [2, 32, 32, 7, 7],
  [2, 16, 32, 5, 6],
  [1, 64, 64, 4, 4],
  [1, 64, 64, 7, 7],
];

cpuTest(
  "cpu winograd: 3x3 stride-1 convolutions use jit_wino_4x3 and stay within the conformance tolerance",
  (wino) => {
    const direct = createCpuBackend({ threads: 1, tuning: { winograd: false } });
    const ref = createReferenceBackend();
    const worst = { winograd: 0, direct: 0 };
    try {
      for (const [i, [n, c, k, h, w]] of SHAPES.entries()) {
        const g = geometry(n, c, k, h, w);
        for (const p of passes(g, 100 + 7 * i)) {
          const what = `${p.name} n${n} ${c}->${k} ${h}x${w}`;
          const want = runOn(ref, p.call, p.run)[p.out];
          const scale = runOn(ref, p.absCall, p.run)[p.out];
          const got = runOn(wino, p.call, p.run)[p.out];
          const plain = runOn(direct, p.call, p.run)[p.out];
          assertClose(`winograd ${what}`, got, want, scale);
          assertClose(`direct ${what}`, plain, want, scale);
          worst.winograd = Math.max(worst.winograd, worstRelative(got, want, scale));
          worst.direct = Math.max(worst.direct, worstRelative(plain, want, scale));
        }
      }
      const impls = wino.rt.implementations().filter((p) => p.what.startsWith("convolution"));
      const winoImpls = impls.filter((p) => p.impl.startsWith("jit_wino_4x3"));
      // Every forward and backward-data primitive, and backward-weights from 64 channels.
      assert.ok(
        winoImpls.some((p) => p.what === "convolution backward-weights"),
        `no Winograd backward-weights among ${JSON.stringify(impls)}`,
      );
      assert.ok(winoImpls.length >= 2 * SHAPES.length, JSON.stringify(impls));
      assert.ok(
        direct.rt.implementations().every((p) => !p.impl.startsWith("jit_wino")),
        "the direct backend ran Winograd",
      );
      console.log(
        `worst error / (|expected| + sum of |terms|): winograd ${
          worst.winograd.toExponential(2)
        }, ` +
          `direct ${worst.direct.toExponential(2)}`,
      );
      assert.ok(
        worst.winograd < 2e-5,
        `Winograd lost more precision than measured: ${worst.winograd}`,
      );
    } finally {
      direct.dispose();
      ref.dispose();
    }
  },
);

cpuTest(
  "cpu winograd: on sparse, mixed-magnitude data the error stays below 1e-5 of the output's largest term sum",
  (wino) => {
    const ref = createReferenceBackend();
    let worst = 0;
    try {
      for (const [i, [n, c, k, h, w]] of SHAPES.entries()) {
        const g = geometry(n, c, k, h, w);
        for (const p of passes(g, 300 + 7 * i, true)) {
          const want = runOn(ref, p.call, p.run)[p.out];
          const scale = runOn(ref, p.absCall, p.run)[p.out];
          const got = runOn(wino, p.call, p.run)[p.out];
          const top = scale.reduce((a, b) => Math.max(a, b), 0);
          let err = 0;
          for (let j = 0; j < want.length; j++) err = Math.max(err, Math.abs(got[j] - want[j]));
          worst = Math.max(worst, err / top);
        }
      }
      console.log(`worst error / largest sum of |terms| of the output: ${worst.toExponential(2)}`);
      assert.ok(worst < 1e-5, `normwise error ${worst}`);
    } finally {
      ref.dispose();
    }
  },
);

// The whole network on the backend as training creates it (Winograd on).
defineResNetConformance("cpu (default tuning: winograd)", () => createCpuBackend({ threads: 1 }));
