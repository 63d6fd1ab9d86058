/**
 * elementwise.cu on the emulated device against f64 oracles: casts bit for bit (random values and
 * every special case: ties, subnormals, overflow, infinities, NaN payloads), axpby (f32, bf16, in
 * place, zero coefficients hiding NaN), mul, broadcast_scalar, relu (NaN kept), relu_backward and
 * the two-pass sum on several grid sizes.
 */

import assert from "node:assert/strict";
import {
  assertBf16Close,
  assertClose,
  bf16Nearest,
  BLOCK,
  fromBf16,
  grid1,
  rand,
  toBf16,
} from "./helpers.ts";
import { rigUnavailable, withRig } from "./rig.ts";

const skip = rigUnavailable();
const test = (name: string, fn: () => void) =>
  Deno.test({ name: name + (skip ? ` (${skip})` : ""), ignore: skip !== undefined, fn });

/** f32 inputs covering the cast's corner cases, plus random values of every magnitude. */
function castInputs(): Float32Array {
  const bits = [
    0x00000000,
    0x80000000,
    0x3f800000,
    0x3f808000,
    0x3f818000,
    0x3f80ffff,
    0x3f807fff,
    0x00000001,
    0x80000001,
    0x007fffff,
    0x00008000,
    0x00018000,
    0x7f7fffff,
    0x7f7f7fff,
    0x7f7f8000,
    0xff7f8000,
    0x7f800000,
    0xff800000,
    0x7fc00000,
    0xffc00001,
    0x7f800001,
    0xff812345,
    0x7fbfffff,
  ];
  const special = new Float32Array(new Uint32Array(bits).buffer);
  const r = rand(11, 2000, -1, 1);
  const mixed = new Float32Array(r.length);
  for (let i = 0; i < r.length; i++) mixed[i] = r[i] * 2 ** (((i * 37) % 270) - 140);
  return Float32Array.from([...special, ...mixed]);
}

test("cast f32 -> bf16 rounds to nearest even bit for bit; bf16 -> f32 is exact", () => {
  const x = castInputs();
  const xBits = new Uint32Array(x.buffer);
  const want = Uint16Array.from(x, (v, i) => bf16Nearest(v, xBits[i]));
  withRig((rig) => {
    const n = x.length;
    const px = rig.upload(x), py = rig.alloc(2 * n), pz = rig.alloc(4 * n);
    rig.launch("cast_f32_to_bf16", grid1(n), BLOCK, [px, py, n]);
    const got = rig.download(py, new Uint16Array(n));
    for (let i = 0; i < n; i++) {
      if (got[i] !== want[i]) {
        assert.fail(
          `bf16(0x${xBits[i].toString(16)}) = 0x${got[i].toString(16)}, ` +
            `expected 0x${want[i].toString(16)}`,
        );
      }
    }
    rig.launch("cast_bf16_to_f32", grid1(n), BLOCK, [py, pz, n]);
    const back = rig.download(pz, new Float32Array(n));
    assert.deepEqual(new Uint32Array(back.buffer), new Uint32Array(fromBf16(want).buffer));
  });
});

test("axpby f32 and bf16, in place, and zero coefficients that skip NaN inputs", () => {
  const n = 1000;
  const x = rand(1, n), y = rand(2, n);
  withRig((rig) => {
    const px = rig.upload(x), py = rig.upload(y), out = rig.alloc(4 * n);
    rig.launch("axpby_f32", grid1(n), BLOCK, [px, py, out, 0.75, -1.5, n]);
    const want = Float64Array.from(x, (v, i) => 0.75 * v - 1.5 * y[i]);
    assertClose(rig.download(out, new Float32Array(n)), want, 1e-7, 1e-6, "axpby");
    rig.launch("axpby_f32", grid1(n), BLOCK, [px, py, px, 2, 0.5, n]); // out = x
    const inPlace = Float64Array.from(x, (v, i) => 2 * v + 0.5 * y[i]);
    assertClose(rig.download(px, new Float32Array(n)), inPlace, 1e-7, 1e-6, "in place");
    const nan = rig.upload(new Float32Array(n).fill(NaN));
    rig.launch("axpby_f32", grid1(n), BLOCK, [py, nan, out, 3, 0, n]);
    assertClose(rig.download(out, new Float32Array(n)), y.map((v) => 3 * v), 0, 1e-7, "beta 0");
    rig.launch("axpby_f32", grid1(n), BLOCK, [nan, py, out, 0, -2, n]);
    assertClose(rig.download(out, new Float32Array(n)), y.map((v) => -2 * v), 0, 1e-7, "alpha 0");

    const xb = toBf16(x), yb = toBf16(y);
    const bx = rig.upload(xb), by = rig.upload(yb), bo = rig.alloc(2 * n);
    rig.launch("axpby_bf16", grid1(n), BLOCK, [bx, by, bo, 0.3, 0.9, n]);
    const fx = fromBf16(xb), fy = fromBf16(yb);
    const wantB = Float64Array.from(fx, (v, i) => 0.3 * v + 0.9 * fy[i]);
    assertBf16Close(rig.download(bo, new Uint16Array(n)), wantB, 1, "axpby bf16");
  });
});

test("mul, broadcast_scalar, relu (NaN kept) and relu_backward, f32 and bf16", () => {
  const n = 777;
  const a = rand(3, n, -2, 2), b = rand(4, n, -2, 2);
  a[5] = NaN;
  a[6] = -0;
  withRig((rig) => {
    const pa = rig.upload(a), pb = rig.upload(b), out = rig.alloc(4 * n);
    rig.launch("mul_f32", grid1(n), BLOCK, [pa, pb, out, n]);
    assertClose(rig.download(out, new Float32Array(n)), a.map((v, i) => v * b[i]), 0, 0, "mul");
    rig.launch("broadcast_scalar_f32", grid1(n), BLOCK, [pb, out, -3, n]);
    const bc = rig.download(out, new Float32Array(n));
    assert.ok(bc.every((v) => v === Math.fround(-3 * b[0])), "broadcast");
    rig.launch("relu_f32", grid1(n), BLOCK, [pa, out, n]);
    const relu = rig.download(out, new Float32Array(n));
    assertClose(relu, a.map((v) => (v < 0 ? 0 : v)), 0, 0, "relu");
    assert.ok(Number.isNaN(relu[5]), "relu keeps NaN");
    rig.launch("relu_backward_f32", grid1(n), BLOCK, [out, pb, pa, n]);
    const dx = rig.download(pa, new Float32Array(n));
    assertClose(dx, relu.map((v, i) => (v > 0 ? b[i] : 0)), 0, 0, "relu_backward");

    const ab = toBf16(a), bb = toBf16(b);
    const pab = rig.upload(ab), pbb = rig.upload(bb), ob = rig.alloc(2 * n), db = rig.alloc(2 * n);
    rig.launch("relu_bf16", grid1(n), BLOCK, [pab, ob, n]);
    const rb = rig.download(ob, new Uint16Array(n));
    const negative = (v: number) =>
      (v & 0x8000) !== 0 && (v & 0x7fff) !== 0 && (v & 0x7fff) <= 0x7f80;
    assert.deepEqual([...rb], [...ab].map((v) => (negative(v) ? 0 : v)), "-0 and NaN stay");
    rig.launch("relu_backward_bf16", grid1(n), BLOCK, [ob, pbb, db, n]);
    const gb = rig.download(db, new Uint16Array(n));
    const yb = fromBf16(rb);
    assert.deepEqual([...gb], [...bb].map((v, i) => (yb[i] > 0 ? v : 0)));
  });
});

test("sum: partials on several grids, then one block; n = 0 gives 0", () => {
  const n = 5003;
  const x = rand(5, n, -1, 3);
  const want = x.reduce((s, v) => s + v, 0);
  withRig((rig) => {
    const px = rig.upload(x), part = rig.alloc(8 * 64), out = rig.alloc(4); // f64 partials
    for (const g of [1, 3, 64]) {
      rig.launch("sum_partials_f32", g, BLOCK, [px, part, n]);
      rig.launch("sum_finish_f32", 1, 64, [part, g, out, 0.5]);
      assertClose(rig.download(out, new Float32Array(1)), [0.5 * want], 0, 1e-6, `sum G=${g}`);
    }
    rig.launch("sum_partials_f32", 1, BLOCK, [px, part, 0]);
    rig.launch("sum_finish_f32", 1, 32, [part, 1, out, 2]);
    assert.equal(rig.download(out, new Float32Array(1))[0], 0);
  });
});
