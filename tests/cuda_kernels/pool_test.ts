/**
 * pool.cu on the emulated device against direct-definition oracles: max pooling with padding
 * (padded positions never win), ties (the first maximum in row-major order takes the gradient),
 * NaN (wins, as PyTorch), overlapping windows (gradients add up), and global average pooling
 * forward/backward with planes shorter and longer than a warp.
 */

import { assertClose, BLOCK, grid1, rand } from "./helpers.ts";
import { rigUnavailable, withRig } from "./rig.ts";

const skip = rigUnavailable();
const test = (name: string, fn: () => void) =>
  Deno.test({ name: name + (skip ? ` (${skip})` : ""), ignore: skip !== undefined, fn });

interface Pool {
  n: number;
  c: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
}

const outSize = (i: number, k: number, s: number, p: number) => Math.floor((i + 2 * p - k) / s) + 1;

/** y and dx by the definition: scan each window in row-major order, NaN or a larger value wins. */
function poolOracle(g: Pool, x: Float32Array, dy: Float32Array) {
  const oh = outSize(g.h, g.kh, g.sh, g.ph), ow = outSize(g.w, g.kw, g.sw, g.pw);
  const y = new Float64Array(g.n * g.c * oh * ow), dx = new Float64Array(x.length);
  for (let plane = 0; plane < g.n * g.c; plane++) {
    for (let a = 0; a < oh; a++) {
      for (let b = 0; b < ow; b++) {
        let best = -Infinity, arg = -1;
        for (let i = 0; i < g.kh; i++) {
          for (let j = 0; j < g.kw; j++) {
            const r = a * g.sh - g.ph + i, s = b * g.sw - g.pw + j;
            if (r < 0 || r >= g.h || s < 0 || s >= g.w) continue;
            const at = plane * g.h * g.w + r * g.w + s;
            if (arg < 0 || x[at] > best || Number.isNaN(x[at])) [best, arg] = [x[at], at];
          }
        }
        const o = (plane * oh + a) * ow + b;
        y[o] = arg < 0 ? -Infinity : x[arg];
        if (arg >= 0) dx[arg] += dy[o];
      }
    }
  }
  return { y, dx };
}

test("max pooling forward/backward: padding, ties to the first maximum, NaN, overlaps", () => {
  const cases: Pool[] = [
    { n: 2, c: 3, h: 9, w: 8, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1 },
    { n: 1, c: 2, h: 7, w: 10, kh: 2, kw: 3, sh: 1, sw: 3, ph: 1, pw: 0 },
    { n: 1, c: 1, h: 5, w: 5, kh: 5, kw: 5, sh: 1, sw: 1, ph: 2, pw: 2 },
  ];
  withRig((rig) => {
    for (const [k, g] of cases.entries()) {
      // Values on a coarse grid make ties common; one NaN per case.
      const x = rand(70 + k, g.n * g.c * g.h * g.w, -2, 2).map((v) => Math.round(v * 2) / 2);
      x[3] = NaN;
      const oh = outSize(g.h, g.kh, g.sh, g.ph), ow = outSize(g.w, g.kw, g.sw, g.pw);
      const dy = rand(80 + k, g.n * g.c * oh * ow);
      const want = poolOracle(g, x, dy);
      const geom = [g.n, g.c, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, oh, ow];
      const px = rig.upload(x), pdy = rig.upload(dy);
      const y = rig.alloc(4 * dy.length), dx = rig.alloc(4 * x.length);
      rig.launch("max_pool2d_forward_f32", grid1(dy.length, 3), BLOCK, [px, y, ...geom]);
      assertClose(rig.download(y, new Float32Array(dy.length)), want.y, 0, 0, `y case ${k}`);
      rig.launch("max_pool2d_backward_f32", grid1(x.length, 3), BLOCK, [px, pdy, dx, ...geom]);
      assertClose(rig.download(dx, new Float32Array(x.length)), want.dx, 1e-7, 1e-6, `dx ${k}`);
    }
  });
});

test("global average pooling forward and backward", () => {
  withRig((rig) => {
    for (const [planes, hw] of [[13, 16], [5, 49], [3, 1], [2, 300]]) {
      const x = rand(planes * hw, planes * hw, -1, 2), dy = rand(hw, planes);
      const px = rig.upload(x), y = rig.alloc(4 * planes);
      rig.launch("global_avg_pool_f32", 2, 64, [px, y, planes, hw]);
      const want = Float64Array.from({ length: planes }, (_, p) => {
        let s = 0;
        for (let i = 0; i < hw; i++) s += x[p * hw + i];
        return s / hw;
      });
      assertClose(rig.download(y, new Float32Array(planes)), want, 1e-7, 1e-6, `gap ${hw}`);
      const pdy = rig.upload(dy), dx = rig.alloc(4 * planes * hw);
      rig.launch("global_avg_pool_backward_f32", grid1(planes * hw), BLOCK, [
        pdy,
        dx,
        planes,
        hw,
      ]);
      const wantDx = Float32Array.from(
        { length: planes * hw },
        (_, i) => dy[Math.floor(i / hw)] / hw,
      );
      assertClose(rig.download(dx, new Float32Array(planes * hw)), wantDx, 0, 0, `gap dx ${hw}`);
    }
  });
});
