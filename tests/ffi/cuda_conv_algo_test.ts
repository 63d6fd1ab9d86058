/**
 * Convolution algorithm choice: perf records are read at the cuDNN struct layout, the fastest usable
 * algorithm within the workspace limit wins, and refusals say why; convolution shapes are checked.
 */

import assert from "node:assert/strict";
import { type AlgoPerf, chooseAlgorithm, parsePerfs } from "../../ffi/cuda/conv_algo.ts";
import { normalizeConvShape } from "../../ffi/cuda/conv_plan.ts";
import { CUDNN_PERF } from "../../ffi/cuda/cudnn_symbols.ts";

function perf(p: Partial<AlgoPerf> & { algo: number }): AlgoPerf {
  return { status: 0, time: 1, memory: 0, determinism: 1, mathType: 3, ...p };
}

Deno.test("conv algo: perf records are read at cuDNN's struct layout", () => {
  const bytes = new Uint8Array(3 * CUDNN_PERF.size);
  const v = new DataView(bytes.buffer);
  const recs = [
    [6, 0, 0.25, 1n << 33n, 1, 1],
    [1, 3000, -1, 0n, 0, 3],
    [0, 0, 2.5, 4096n, 1, 0],
  ] as const;
  recs.forEach(([algo, status, time, memory, det, math], i) => {
    const at = i * CUDNN_PERF.size;
    v.setInt32(at + CUDNN_PERF.algo, algo, true);
    v.setInt32(at + CUDNN_PERF.status, status, true);
    v.setFloat32(at + CUDNN_PERF.time, time, true);
    v.setBigUint64(at + CUDNN_PERF.memory, memory, true);
    v.setInt32(at + CUDNN_PERF.determinism, det, true);
    v.setInt32(at + CUDNN_PERF.mathType, math, true);
  });
  assert.deepEqual(parsePerfs(bytes, 3), [
    { algo: 6, status: 0, time: 0.25, memory: 2 ** 33, determinism: 1, mathType: 1 },
    { algo: 1, status: 3000, time: -1, memory: 0, determinism: 0, mathType: 3 },
    { algo: 0, status: 0, time: 2.5, memory: 4096, determinism: 1, mathType: 0 },
  ]);
  assert.throws(() => parsePerfs(bytes, 4), /Cannot read 4 cuDNN perf records from 144 bytes/);
});

Deno.test("conv algo: the fastest measured algorithm within the workspace limit wins", () => {
  const perfs = [
    perf({ algo: 0, time: 3, memory: 0 }),
    perf({ algo: 1, time: 1, memory: 10_000 }), // fastest, too big
    perf({ algo: 2, time: 2, memory: 1_000 }),
    perf({ algo: 3, time: 0.5, status: 3000 }), // failed
    perf({ algo: 4, time: 2, memory: 500 }), // ties on time: less memory first
  ];
  const pick = chooseAlgorithm(perfs, { workspaceLimit: 5_000, order: "measured" });
  assert.deepEqual(pick, { ok: true, perf: perfs[4] });
  const roomy = chooseAlgorithm(perfs, { workspaceLimit: 10_000, order: "measured" });
  assert.equal(roomy.ok && roomy.perf.algo, 1);
});

Deno.test("conv algo: heuristic ranking keeps cuDNN's order; determinism filters", () => {
  const perfs = [
    perf({ algo: 5, time: -1, memory: 1 << 30, determinism: 0 }),
    perf({ algo: 2, time: -1, memory: 100, determinism: 0 }),
    perf({ algo: 1, time: -1, memory: 200, determinism: 1 }),
  ];
  const ranked = chooseAlgorithm(perfs, { workspaceLimit: 1 << 20, order: "ranked" });
  assert.equal(ranked.ok && ranked.perf.algo, 2);
  const det = chooseAlgorithm(perfs, {
    workspaceLimit: 1 << 20,
    order: "ranked",
    deterministic: true,
  });
  assert.equal(det.ok && det.perf.algo, 1);
});

Deno.test("conv algo: refusals explain themselves", () => {
  assert.deepEqual(
    chooseAlgorithm([perf({ algo: 0, status: 3000 })], {
      workspaceLimit: 1,
      order: "ranked",
    }),
    { ok: false, reason: "cuDNN reports no algorithm that supports this problem" },
  );
  assert.deepEqual(
    chooseAlgorithm([perf({ algo: 0, memory: 300 }), perf({ algo: 1, memory: 200 })], {
      workspaceLimit: 100,
      order: "measured",
    }),
    {
      ok: false,
      reason: "every algorithm needs more workspace than the limit of 100 bytes (the smallest " +
        "needs 200)",
    },
  );
  assert.deepEqual(
    chooseAlgorithm([perf({ algo: 0, determinism: 0 })], {
      workspaceLimit: 100,
      order: "measured",
      deterministic: true,
    }),
    { ok: false, reason: "no deterministic algorithm supports this problem" },
  );
});

Deno.test("conv plan: shapes get defaults and bad values are refused by name", () => {
  assert.deepEqual(normalizeConvShape({ n: 2, c: 3, h: 8, w: 8, k: 4, r: 3, s: 3, padH: 1 }), {
    n: 2,
    c: 3,
    h: 8,
    w: 8,
    k: 4,
    r: 3,
    s: 3,
    padH: 1,
    padW: 0,
    strideH: 1,
    strideW: 1,
    dilationH: 1,
    dilationW: 1,
    groups: 1,
  });
  const base = { n: 2, c: 4, h: 8, w: 8, k: 6, r: 3, s: 3 };
  assert.throws(() => normalizeConvShape({ ...base, n: 0 }), /n = 0: use an integer >= 1/);
  assert.throws(() => normalizeConvShape({ ...base, padW: -1 }), /padW = -1: use an integer >= 0/);
  assert.throws(() => normalizeConvShape({ ...base, strideH: 0 }), /strideH = 0/);
  assert.throws(
    () => normalizeConvShape({ ...base, groups: 4 }),
    /4 groups: c = 4 and k = 6 must both be multiples of it/,
  );
});
