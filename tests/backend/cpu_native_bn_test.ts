/**
 * The cpu backend's own batch-norm kernels (`libressl_cpu.so`, `src/backend/cpu/native_norm.ts`):
 * they load where `scripts/setup_cpu.sh` built them; on every layout they take (nChw16c, nChw16c
 * with padded channels, plain NCHW, plain [n, c]) and every fusion (residual, ReLU, dresidual) they
 * equal the reference backend and the oneDNN path (`nativeKernels: false`); they give bit-identical
 * results on 1 and 2 threads; NaN follows the reference (ReLU keeps it, the backward mask selects);
 * an infinite input or gradient goes to the reference path; a channel far from zero keeps an
 * accurate variance. (The conformance suite runs them too, from plain inputs.)
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Backend, Storage } from "../../src/backend/backend.ts";
import { type CpuBackend, createCpuBackend } from "../../src/backend/cpu/backend.ts";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import type { CpuStorage } from "../../src/backend/cpu/storage.ts";
import { DataType, FormatTag } from "../../ffi/dnnl/mod.ts";
import {
  assertNear,
  blockedActivation,
  layoutOf,
  lcg,
  ownKernelsTest,
  readF32,
} from "./cpu_test_util.ts";

const EPS = 1e-5;

/** A test with a fresh 2-thread cpu backend whose own kernels must have loaded. */
function nativeTest(name: string, fn: (be: CpuBackend) => void): void {
  ownKernelsTest(name, () => {
    const be = createCpuBackend({ threads: 2 });
    try {
      assert.ok(be.rt.kernels !== null, `own kernels did not load: ${be.versions.ownKernels}`);
      fn(be);
    } finally {
      be.dispose();
    }
  });
}

interface Case {
  n: number;
  c: number;
  h: number;
  w: number;
  /** nChw16c from a convolution, or plain uploads. */
  blocked: boolean;
}

interface Host {
  x: Float32Array;
  residual: Float32Array;
  dy: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
}

function hostInputs(k: Case, seed: number): Host {
  const size = k.n * k.c * k.h * k.w;
  return {
    x: lcg(seed, size, 2).map((v, i) => v + (i % 7) * 0.1),
    residual: lcg(seed + 1, size),
    dy: lcg(seed + 2, size),
    gamma: lcg(seed + 3, k.c).map((v) => 1 + 0.5 * v),
    beta: lcg(seed + 4, k.c, 0.5),
  };
}

function put(be: Backend, a: Float32Array): Storage {
  const s = be.alloc("f32", a.length);
  be.upload(s, a);
  return s;
}

/** x, residual, dy on `be`: blocked ones are convolution outputs whose values are then read back. */
function activations(
  be: Backend,
  k: Case,
  h: Host,
): { x: Storage; residual: Storage; dy: Storage } {
  if (!k.blocked) return { x: put(be, h.x), residual: put(be, h.residual), dy: put(be, h.dy) };
  const dims: [number, number, number, number] = [k.n, k.c, k.h, k.w];
  const cpu = be as CpuBackend;
  const out = {
    x: blockedActivation(cpu, "f32", dims, 11),
    residual: blockedActivation(cpu, "f32", dims, 12),
    dy: blockedActivation(cpu, "f32", dims, 13),
  };
  assert.equal(layoutOf(out.x).blocked, true, "a convolution output should be blocked");
  h.x = readF32(be, out.x);
  h.residual = readF32(be, out.residual);
  h.dy = readF32(be, out.dy);
  return out;
}

type Fusion = { residual: boolean; relu: boolean; dresidual: boolean };

/** Forward + backward with `f` on `be`; every output read back as f32. */
function step(
  be: Backend,
  k: Case,
  a: { x: Storage; residual: Storage; dy: Storage },
  h: Host,
  f: Fusion,
): Record<string, Float32Array> {
  const size = k.n * k.c * k.h * k.w, geom = { n: k.n, c: k.c, hw: k.h * k.w };
  const gamma = put(be, h.gamma), beta = put(be, h.beta);
  const y = be.alloc("f32", size), mean = be.alloc("f32", k.c), variance = be.alloc("f32", k.c);
  const residual = f.residual ? a.residual : null;
  be.batchNormForwardTraining({
    x: a.x,
    gamma,
    beta,
    y,
    mean,
    variance,
    geom,
    eps: EPS,
    residual,
    relu: f.relu,
  });
  const dx = be.alloc("f32", size), dgamma = be.alloc("f32", k.c), dbeta = be.alloc("f32", k.c);
  const dresidual = f.dresidual ? be.alloc("f32", size) : null;
  be.batchNormBackward({
    x: a.x,
    dy: a.dy,
    gamma,
    mean,
    variance,
    dx,
    dgamma,
    dbeta,
    geom,
    eps: EPS,
    relu: f.relu,
    y: f.relu ? y : null,
    dresidual,
  });
  const out: Record<string, Float32Array> = {};
  const all: Record<string, Storage | null> = { y, mean, variance, dx, dgamma, dbeta, dresidual };
  for (const [name, s] of Object.entries(all)) {
    if (s === null) continue;
    out[name] = readF32(be, s);
    be.free(s);
  }
  be.free(gamma);
  be.free(beta);
  return out;
}

const FUSIONS: Fusion[] = [];
for (const residual of [false, true]) {
  for (const relu of [false, true]) {
    for (const dresidual of [false, true]) FUSIONS.push({ residual, relu, dresidual });
  }
}

const CASES: Case[] = [
  { n: 3, c: 16, h: 6, w: 5, blocked: true },
  { n: 2, c: 48, h: 4, w: 4, blocked: true },
  { n: 2, c: 20, h: 3, w: 3, blocked: true }, // nChw16c with 12 padded channels
  { n: 3, c: 5, h: 7, w: 3, blocked: false }, // plain NCHW, hw = 21 (a tail after 8-wide steps)
  { n: 9, c: 37, h: 1, w: 1, blocked: false }, // plain [n, c]
];

nativeTest("cpu own batch norm: loads where built and reports itself", (be) => {
  assert.match(
    be.versions.ownKernels,
    /libressl_cpu\.so: f32 batch norm, SGD, EMA, sum, log-softmax/,
  );
  const off = createCpuBackend({ threads: 1, tuning: { nativeKernels: false } });
  try {
    assert.equal(off.rt.kernels, null);
    assert.match(off.versions.ownKernels, /switched off.*batch norm on oneDNN/);
  } finally {
    off.dispose();
  }
});

nativeTest(
  "cpu own batch norm: every layout and fusion equals the reference and the oneDNN path; 1 and 2 threads agree bitwise",
  (be) => {
    const ref = createReferenceBackend();
    const one = createCpuBackend({ threads: 1 });
    const onednn = createCpuBackend({ threads: 2, tuning: { nativeKernels: false } });
    try {
      for (const k of CASES) {
        const h = hostInputs(k, 3 + k.c);
        const a = activations(be, k, h);
        const sides = [one, onednn, ref].map((b) => ({
          b,
          a: { x: put(b, h.x), residual: put(b, h.residual), dy: put(b, h.dy) },
        }));
        for (const f of FUSIONS) {
          const what = `${JSON.stringify(k)} ${JSON.stringify(f)}`;
          const got = step(be, k, a, h, f);
          const [single, viaOneDnn, want] = sides.map((s) => step(s.b, k, s.a, h, f));
          for (const [name, w] of Object.entries(want)) {
            assertNear(`${what} '${name}' vs reference`, got[name], w, 2e-5);
            assertNear(`${what} '${name}' vs oneDNN`, got[name], viaOneDnn[name], 2e-5);
          }
          if (!k.blocked) {
            // The same plain data on 1 thread (blocked inputs differ in layout there).
            for (const name of Object.keys(got)) {
              assert.deepEqual(got[name], single[name], `${what} '${name}': 1 vs 2 threads`);
            }
          }
        }
        for (const s of [...Object.values(a)]) be.free(s);
        for (const { b, a: sa } of sides) for (const s of Object.values(sa)) b.free(s);
      }
      assert.equal(be.liveAllocations(), 0);
      const bn = be.rt.implementations().filter((p) => p.what.startsWith("batch-norm"));
      assert.deepEqual(bn, [], "every call should have run on the own kernels");
    } finally {
      one.dispose();
      onednn.dispose();
      ref.dispose();
    }
  },
);

nativeTest("cpu own batch norm: blocked results do not depend on the thread count", (be) => {
  const k = { n: 4, c: 32, h: 9, w: 9, blocked: true };
  const one = createCpuBackend({ threads: 1 });
  try {
    const runs = [be, one].map((b) => {
      const h = hostInputs(k, 5);
      return step(b, k, activations(b, k, h), h, { residual: true, relu: true, dresidual: true });
    });
    for (const name of Object.keys(runs[0])) {
      assert.deepEqual(runs[0][name], runs[1][name], `'${name}': 2 vs 1 threads`);
    }
  } finally {
    one.dispose();
  }
});

/** Uploads `a` and, with `blocked`, lays the storage out as nChw16c [n, c, h, w]. */
function putLaidOut(be: CpuBackend, a: Float32Array, k: Case, blocked: boolean): Storage {
  const s = put(be, a);
  if (blocked) {
    const mds = be.rt.mds;
    const md = mds.intern(mds.tagged([k.n, k.c, k.h, k.w], FormatTag.nChw16c, DataType.f32));
    be.rt.layout(s as CpuStorage, md);
    assert.equal(layoutOf(s).blocked, true);
  }
  return s;
}

nativeTest("cpu own batch norm: NaN and infinity follow the reference", (be) => {
  const ref = createReferenceBackend();
  // hw = 16: the 8-wide loops, no scalar tail.
  const k = { n: 2, c: 16, h: 4, w: 4, blocked: false };
  const poisoned: [string, (h: Host) => void][] = [
    ["NaN dy where y <= 0 (masked: dx finite)", (h) => {
      h.x.fill(0);
      h.x[0] = -1; // channel 0: y < 0 at element 0 with gamma > 0, beta = 0
      h.x[1] = 1;
      h.gamma.fill(1);
      h.beta.fill(0);
      h.dy[0] = NaN;
    }],
    ["NaN residual (y NaN there, through ReLU)", (h) => void (h.residual[5] = NaN)],
    ["NaN gamma (its channel NaN)", (h) => void (h.gamma[3] = NaN)],
    ["NaN x (its channel's statistics NaN)", (h) => void (h.x[17] = NaN)],
    ["infinite x (the reference's infinite mean)", (h) => void (h.x[2] = Infinity)],
    ["infinite dy (non-finite sums)", (h) => void (h.dy[9] = -Infinity)],
  ];
  try {
    for (const [what, poison] of poisoned) {
      const h = hostInputs(k, 9);
      poison(h);
      for (const [f, blocked] of FUSIONS.flatMap((f) => [[f, false], [f, true]] as const)) {
        const run = (b: Backend) => {
          const up = (v: Float32Array) => b === be ? putLaidOut(be, v, k, blocked) : put(b, v);
          const a = { x: up(h.x), residual: up(h.residual), dy: up(h.dy) };
          const out = step(b, k, a, h, f);
          for (const s of Object.values(a)) b.free(s);
          return out;
        };
        const got = run(be), want = run(ref);
        for (const [name, w] of Object.entries(want)) {
          const g = got[name];
          for (let i = 0; i < w.length; i++) {
            const same = Number.isNaN(w[i])
              ? Number.isNaN(g[i])
              : !Number.isFinite(w[i])
              ? g[i] === w[i]
              : Math.abs(g[i] - w[i]) <= 1e-4 * (1 + Math.abs(w[i]));
            const where = `${what} ${JSON.stringify(f)}${blocked ? " nChw16c" : ""}`;
            assert.ok(same, `${where} '${name}'[${i}]: ${g[i]} vs ${w[i]}`);
          }
        }
      }
    }
  } finally {
    ref.dispose();
  }
});

nativeTest("cpu own batch norm: a channel far from zero keeps an accurate variance", (be) => {
  const ref = createReferenceBackend();
  const k = { n: 8, c: 16, h: 8, w: 8, blocked: false };
  const h = hostInputs(k, 21);
  h.x = h.x.map((v) => 3e4 + v * 1e-2); // mean 3e4, standard deviation ~1e-2
  try {
    const [got, want] = [be, ref].map((b) => {
      const a = { x: put(b, h.x), residual: put(b, h.residual), dy: put(b, h.dy) };
      return step(b, k, a, h, { residual: false, relu: false, dresidual: false });
    });
    assertNear("variance", got.variance, want.variance, 1e-4);
    assertNear("mean", got.mean, want.mean, 1e-7);
  } finally {
    ref.dispose();
  }
});
