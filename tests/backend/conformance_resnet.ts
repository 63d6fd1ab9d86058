/**
 * Whole-network conformance: a ResNet-18 forward (training mode) and backward on the backend under
 * test equals the reference backend's within tolerance: loss, features, every parameter gradient
 * and every updated BN running statistic.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Backend } from "../../src/backend/backend.ts";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { rngKey } from "../../src/random/philox.ts";
import { initResNet, resnetForward, type ResNetOptions } from "../../src/nn/mod.ts";
import { mul, sum } from "../../src/ops/mod.ts";
import { createContext, disposeTree, flattenTree, valueAndGrad } from "../../src/tensor/mod.ts";
import { assertClose } from "./conformance_harness.ts";

/**
 * Normwise relative tolerance per tensor. Measured worst case: 5e-6 (cifar), 1e-5 (imagenet stem).
 * Inputs are sized so that the last stage still sees >= 8 values per channel: batch norm over
 * 2 values (batch 2, 1x1 maps) is ill-conditioned and amplifies f32 rounding a thousandfold.
 */
const NET_RTOL = 1e-4;

interface NetCase {
  label: string;
  opts: ResNetOptions;
  batch: number;
  size: number;
}

const CASES: NetCase[] = [
  {
    label: "cifar stem, width 64, 3x16x16",
    opts: { depth: 18, stem: "cifar", inChannels: 3 },
    batch: 2,
    size: 16,
  },
  {
    // Widths 4 and 8 put 4/8/16/32/64 channels in channel-padded blocked layouts (aBcd16b): oneDNN
    // 2.6.3's binary add + ReLU post-op was wrong there (the cpu backend now splits it).
    label: "cifar stem, width 8, 1x16x16 (channel-padded layouts)",
    opts: { depth: 18, stem: "cifar", inChannels: 1, width: 8 },
    batch: 2,
    size: 16,
  },
  {
    label: "imagenet stem + max-pool, width 16, 1x64x64",
    opts: { depth: 18, stem: "imagenet", inChannels: 1, width: 16 },
    batch: 2,
    size: 64,
  },
];

function lcg(seed: number, n: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 * 2 - 1) * scale;
  }
  return out;
}

/** Forward + backward of one case on `backend`; every result downloaded by name. */
function run(backend: Backend, c: NetCase): Map<string, Float32Array> {
  const ctx = createContext(backend);
  const out = new Map<string, Float32Array>();
  ctx.scope(() => {
    const { params, buffers } = initResNet(ctx, { ...c.opts, key: rngKey(7) });
    const x = ctx.fromArray(lcg(1, c.batch * c.opts.inChannels * c.size * c.size, 2), [
      c.batch,
      c.opts.inChannels,
      c.size,
      c.size,
    ]);
    const dim = 8 * (c.opts.width ?? 64);
    const r = ctx.fromArray(lcg(2, c.batch * dim, 1), [c.batch, dim]);
    const f = (p: typeof params) => {
      const res = resnetForward(p, buffers, x, { training: true });
      return { value: sum(mul(res.features, r)), aux: res };
    };
    const { value, grads, aux } = valueAndGrad(f)(params);
    out.set("loss", value.toFloat32());
    out.set("features", aux.features.toFloat32());
    for (const [path, t] of flattenTree(grads)) out.set(`grad ${path}`, t.toFloat32());
    for (const [path, t] of flattenTree(aux.buffers)) out.set(`buffer ${path}`, t.toFloat32());
    disposeTree(params);
    disposeTree(buffers);
  });
  assert.equal(ctx.liveTensors, 0, "the ResNet check leaked tensors");
  return out;
}

/** Registers the whole-ResNet-18 test for the backend `make` creates. */
export function defineResNetConformance(name: string, make: () => Backend): void {
  if (name === "reference") {
    // The reference against itself proves nothing here (tests/nn covers its ResNet): save the time.
    Deno.test({
      name: `conformance ${name}: ResNet-18 (the oracle itself)`,
      ignore: true,
      fn() {},
    });
    return;
  }
  for (const c of CASES) {
    Deno.test(`conformance ${name}: ResNet-18 forward + backward (${c.label})`, () => {
      const subject = make();
      const oracle = createReferenceBackend();
      try {
        const got = run(subject, c);
        const want = run(oracle, c);
        assert.deepEqual([...got.keys()], [...want.keys()]);
        for (const [key, e] of want) {
          assertClose(`${name} ResNet-18 ${key}`, got.get(key)!, e, undefined, NET_RTOL);
        }
        assert.equal(subject.liveAllocations(), 0);
      } finally {
        subject.dispose();
        oracle.dispose();
      }
    });
  }
}
