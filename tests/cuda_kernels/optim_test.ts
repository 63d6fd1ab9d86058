/**
 * optim.cu on the emulated device against f64 oracles of the contract: multi-tensor SGD (PyTorch
 * semantics, per-tensor weight decay, nesterov) with and without LARS (solo-learn's rule: trust
 * ratio from norms computed on the device, clip, tensors left out or with a zero norm get neither
 * decay nor adaptation), and the EMA in place, over tensors of uneven sizes (an empty one, one
 * spanning several chunks) in one launch each.
 */

import { multiTensorChunks } from "../../ffi/cuda/kernels/signatures.ts";
import { assertClose, BLOCK, rand } from "./helpers.ts";
import { type KernelRig, rigUnavailable, withRig } from "./rig.ts";

const skip = rigUnavailable();
const test = (name: string, fn: () => void) =>
  Deno.test({ name: name + (skip ? ` (${skip})` : ""), ignore: skip !== undefined, fn });

const SIZES = [700, 0, 33, 2500, 64];
const CHUNK = 256;

interface Lars {
  eta: number;
  eps: number;
  clip: boolean;
  adapt: readonly boolean[];
}

/** One SGD step on f64 copies (the contract's sgdUpdateMulti). */
function sgdOracle(
  p: Float32Array[],
  g: Float32Array[],
  buf: Float32Array[],
  lr: number,
  momentum: number,
  wd: number[],
  nesterov: boolean,
  lars: Lars | null,
) {
  const norm = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0));
  return p.map((pt, t) => {
    let r = 1, decay = wd[t];
    if (lars) {
      const pn = norm(pt), gn = norm(g[t]);
      if (lars.adapt[t] && pn > 0 && gn > 0) {
        r = lars.eta * pn / (gn + wd[t] * pn + lars.eps);
        if (lars.clip) r = Math.min(r / lr, 1);
      } else decay = 0;
    }
    const np = new Float64Array(pt.length), nb = new Float64Array(pt.length);
    for (let i = 0; i < pt.length; i++) {
      const d = r * (g[t][i] + decay * pt[i]);
      nb[i] = momentum * buf[t][i] + d;
      np[i] = pt[i] - lr * (nesterov ? d + momentum * nb[i] : nb[i]);
    }
    return { p: np, buf: nb };
  });
}

/** Uploads a list of tensors and a device array of their addresses. */
function tensorList(rig: KernelRig, arrays: Float32Array[]): { ptrs: bigint[]; table: bigint } {
  const ptrs = arrays.map((a) => rig.upload(a));
  return { ptrs, table: rig.upload(BigUint64Array.from(ptrs)) };
}

for (
  const [label, lars, nesterov] of [
    ["plain", null, false],
    ["nesterov", null, true],
    ["LARS", { eta: 0.02, eps: 1e-8, clip: false, adapt: [true, true, false, true, true] }, false],
    [
      "LARS clipped",
      { eta: 0.005, eps: 1e-6, clip: true, adapt: [true, true, true, true, false] },
      true,
    ],
  ] as const
) {
  test(`sgd_update_multi (${label}) over uneven tensors in one launch`, () => {
    const p = SIZES.map((n, t) => rand(100 + t, n));
    // Gradient scales differ per tensor, so trust ratios (and clipping) differ too.
    const g = SIZES.map((n, t) => rand(200 + t, n, -0.02 * (t + 1) ** 2, 0.02 * (t + 1) ** 2));
    g[4].fill(0); // a zero gradient norm: never adapted
    const buf = SIZES.map((n, t) => rand(300 + t, n, -0.01, 0.01));
    const wd = [5e-4, 1e-4, 0, 1e-3, 2e-3];
    const [lr, momentum] = [0.06, 0.9];
    const want = sgdOracle(p, g, buf, lr, momentum, wd, nesterov, lars);
    withRig((rig) => {
      const P = tensorList(rig, p), G = tensorList(rig, g), B = tensorList(rig, buf);
      const chunks = multiTensorChunks(SIZES, CHUNK);
      const blocks = chunks[SIZES.length];
      const sizes = rig.upload(Int32Array.from(SIZES)), starts = rig.upload(chunks);
      const decay = rig.upload(Float32Array.from(wd));
      let adapt = 0n, partials = 0n;
      if (lars) {
        adapt = rig.upload(Int32Array.from(lars.adapt, Number));
        partials = rig.alloc(8 * 2 * blocks); // f64 partials
        rig.launch("multi_sq_norm_partials_f32", blocks, BLOCK, [
          P.table,
          G.table,
          sizes,
          starts,
          SIZES.length,
          CHUNK,
          partials,
        ]);
      }
      rig.launch("sgd_update_multi_f32", blocks, BLOCK, [
        P.table,
        G.table,
        B.table,
        sizes,
        starts,
        SIZES.length,
        CHUNK,
        decay,
        adapt,
        partials,
        lr,
        momentum,
        nesterov ? 1 : 0,
        lars?.eta ?? 0,
        lars?.eps ?? 0,
        lars?.clip ? 1 : 0,
      ]);
      SIZES.forEach((n, t) => {
        const gotP = rig.download(P.ptrs[t], new Float32Array(n));
        const gotB = rig.download(B.ptrs[t], new Float32Array(n));
        assertClose(gotP, want[t].p, 1e-7, 1e-6, `${label} param ${t}`);
        assertClose(gotB, want[t].buf, 1e-7, 1e-5, `${label} momentum ${t}`);
      });
    });
  });
}

test("ema_update_multi in place (out = teacher) and into separate outputs", () => {
  const teacher = SIZES.map((n, t) => rand(400 + t, n));
  const student = SIZES.map((n, t) => rand(500 + t, n));
  const m = 0.996;
  const want = teacher.map((tt, t) =>
    Float64Array.from(tt, (v, i) => m * v + (1 - m) * student[t][i])
  );
  withRig((rig) => {
    const T = tensorList(rig, teacher), S = tensorList(rig, student);
    const O = tensorList(rig, SIZES.map((n) => new Float32Array(n).fill(NaN)));
    const chunks = multiTensorChunks(SIZES, 100);
    const args = (out: bigint) => [
      T.table,
      S.table,
      out,
      rig.upload(Int32Array.from(SIZES)),
      rig.upload(chunks),
      SIZES.length,
      100,
      m,
      1 - m,
    ];
    rig.launch("ema_update_multi_f32", chunks[SIZES.length], 64, args(O.table));
    rig.launch("ema_update_multi_f32", chunks[SIZES.length], 64, args(T.table));
    SIZES.forEach((n, t) => {
      assertClose(rig.download(O.ptrs[t], new Float32Array(n)), want[t], 1e-7, 1e-6, `out ${t}`);
      assertClose(rig.download(T.ptrs[t], new Float32Array(n)), want[t], 1e-7, 1e-6, `in ${t}`);
    });
  });
});
