/**
 * F16, BF16 and F64 in safetensors: round trips, the bit conversions (against hand-derived values
 * and against PyTorch 1.13's rounding), and reading a tensor as another float type only when exact
 * or explicitly rounded.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { join } from "node:path";
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  writeSafetensors,
} from "../../src/io/safetensors.ts";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../src/io/float_convert.ts";
import { readEntryAs } from "../../src/io/safetensors_convert.ts";

const PY = "/usr/bin/python3";
const HELPER = new URL("./safetensors_rw.py", import.meta.url).pathname;

const bitsOf = (v: number) => new Uint32Array(Float32Array.of(v).buffer)[0];
const f32Of = (bits: number) => new Float32Array(Uint32Array.of(bits).buffer)[0];

Deno.test("bf16 and f16 conversions: exact widening, round to nearest even, specials", () => {
  const bf = (v: number) => f32ToBf16(Float32Array.of(v))[0];
  assert.equal(bf(1), 0x3f80);
  assert.equal(bf(-0), 0x8000);
  assert.equal(bf(f32Of(0x3f808000)), 0x3f80, "tie, even below");
  assert.equal(bf(f32Of(0x3f818000)), 0x3f82, "tie, even above");
  assert.equal(bf(f32Of(0x3f808001)), 0x3f81, "above the tie");
  assert.equal(bf(f32Of(0x3f807fff)), 0x3f80, "below the tie");
  assert.equal(bf(f32Of(0x7f7fffff)), 0x7f80, "largest f32 rounds to infinity");
  assert.equal(bf(Infinity), 0x7f80);
  assert.equal(bf(-Infinity), 0xff80);
  assert.equal(bf(NaN), 0x7fc0);
  assert.equal(bf(f32Of(0x00000001)), 0x0000, "smallest subnormal rounds to zero");
  assert.equal(bf(f32Of(0x00018000)), 0x0002, "subnormal tie to even");
  const back = bf16ToF32(Uint16Array.of(0x3f80, 0xc049, 0x0001, 0x7f80, 0xffc0));
  assert.deepEqual([...back.subarray(0, 4)], [1, f32Of(0xc0490000), f32Of(0x00010000), Infinity]);
  assert.ok(Number.isNaN(back[4]));
  const h = (v: number) => f32ToF16(Float32Array.of(v))[0];
  assert.equal(h(1), 0x3c00);
  assert.equal(h(65504), 0x7bff);
  assert.equal(h(65520), 0x7c00, "tie above the largest f16 rounds to infinity");
  assert.equal(h(2 ** -24), 0x0001);
  assert.equal(h(2 ** -25), 0x0000, "half the smallest subnormal: tie to even (zero)");
  assert.equal(h(1 + 2 ** -11), 0x3c00, "tie to even");
  assert.equal(h(1 + 3 * 2 ** -11), 0x3c02, "tie to even, upwards");
  assert.deepEqual([...f16ToF32(Uint16Array.of(0x3c00, 0x0001, 0xfbff, 0x7c00))], [
    1,
    2 ** -24,
    -65504,
    Infinity,
  ]);
  // Widening then narrowing gives every bit pattern back (NaNs stay NaN).
  const all = Uint16Array.from({ length: 65536 }, (_, k) => k);
  const bfBack = f32ToBf16(bf16ToF32(all));
  const hBack = f32ToF16(f16ToF32(all));
  for (let k = 0; k < 65536; k++) {
    const nanBf = (k & 0x7f80) === 0x7f80 && (k & 0x7f) !== 0;
    const nanH = (k & 0x7c00) === 0x7c00 && (k & 0x3ff) !== 0;
    if (!nanBf) assert.equal(bfBack[k], k, `bf16 ${k}`);
    if (!nanH) assert.equal(hBack[k], k, `f16 ${k}`);
  }
});

Deno.test("safetensors: F16, BF16 and F64 round trip; F16 is read as exact f32", () => {
  const f16 = Float32Array.of(1, -0, 65504, 2 ** -24, -2.5, Infinity);
  const bf = f32ToBf16(Float32Array.of(1, -3.140625, 1e30));
  const f64 = Float64Array.of(0.1, -1e300, 2 ** -1074, Math.PI);
  const bytes = encodeSafetensors({
    h: { dtype: "F16", shape: [2, 3], data: f16 },
    hb: { dtype: "F16", shape: [2], data: Uint16Array.of(0x3c00, 0x0001) },
    b: { dtype: "BF16", shape: [3], data: bf },
    d: { dtype: "F64", shape: [4], data: f64 },
  });
  assert.equal(
    bytes.length,
    8 + Number(new DataView(bytes.buffer).getBigUint64(0, true)) + 12 + 4 + 6 + 32,
  );
  const back = decodeSafetensors(bytes).tensors;
  assert.deepEqual(back.h, { dtype: "F16", shape: [2, 3], data: f16 });
  assert.ok(Object.is(back.h.data[1], -0));
  assert.deepEqual(back.hb.data, Float32Array.of(1, 2 ** -24));
  assert.deepEqual(back.b, { dtype: "BF16", shape: [3], data: bf });
  assert.deepEqual(back.d, { dtype: "F64", shape: [4], data: f64 });
  assert.throws(
    () => encodeSafetensors({ h: { dtype: "F16", shape: [2], data: Float32Array.of(1, 0.1) } }),
    /tensor 'h' as F16: value 0\.10000000149011612 at index 1 is not exactly an f16 \(round it deliberately with f32ToF16/,
  );
  assert.throws(
    () => encodeSafetensors({ b: { dtype: "BF16", shape: [1], data: Float32Array.of(1) } }),
    /tensor 'b': dtype BF16 but data is a Float32Array \(BF16 is written from Uint16Array\)/,
  );
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 65535 }), { maxLength: 20 }), (bits) => {
    const u = Uint16Array.from(bits);
    const t = decodeSafetensors(encodeSafetensors({
      b: { dtype: "BF16", shape: [u.length], data: u },
      h: { dtype: "F16", shape: [u.length], data: u },
    })).tensors;
    assert.deepEqual(t.b.data, u);
    assert.deepEqual(t.h.data, f16ToF32(u));
  }));
});

Deno.test("readEntryAs: exact conversions happen, lossy ones only when asked, integers refused", () => {
  const f64 = { dtype: "F64" as const, shape: [3], data: Float64Array.of(1.5, 0.1, -2) };
  assert.throws(
    () => readEntryAs(f64, "F32", { name: "w" }),
    /Cannot read tensor 'w' \(F64\) as F32: value 0\.1 at index 1 is not exactly a F32 value \(pass \{ round: true \}/,
  );
  assert.deepEqual(readEntryAs(f64, "F32", { round: true }), Float32Array.of(1.5, 0.1, -2));
  const exact = { dtype: "F64" as const, shape: [2], data: Float64Array.of(0.5, NaN) };
  assert.deepEqual(readEntryAs(exact, "F32"), Float32Array.of(0.5, NaN));
  const bf = { dtype: "BF16" as const, shape: [2], data: Uint16Array.of(0x3f80, 0x4049) };
  assert.deepEqual(readEntryAs(bf, "F32"), Float32Array.of(1, 3.140625));
  assert.equal(readEntryAs(bf, "BF16"), bf.data);
  const f32 = { dtype: "F32" as const, shape: [2], data: Float32Array.of(1, 1.001) };
  assert.throws(
    () => readEntryAs(f32, "BF16"),
    /value 1\.00100004673\d* at index 1 is not exactly a BF16 value/,
  );
  assert.deepEqual(readEntryAs(f32, "BF16", { round: true }), Uint16Array.of(0x3f80, 0x3f80));
  assert.deepEqual(readEntryAs({ ...f32, data: Float32Array.of(1, 3.140625) }, "BF16"), bf.data);
  assert.throws(
    () => readEntryAs(f64, "BF16", { round: true }),
    /F64 to BF16 is not converted in one step/,
  );
  const ints = { dtype: "I32" as const, shape: [1], data: Int32Array.of(1) };
  assert.throws(
    () => readEntryAs(ints, "F32", { name: "n" }),
    /tensor 'n' \(I32\) as F32: it holds integers/,
  );
});

const havePython = (() => {
  try {
    return new Deno.Command(PY, { args: ["-c", "import torch"] }).outputSync().success;
  } catch {
    return false;
  }
})();

/** Tricky f32 values: ties of both formats, subnormals, overflow, specials. */
const VALUES = [
  1,
  0.1,
  f32Of(0x3f808000),
  f32Of(0x3f818000),
  f32Of(0x3f808001),
  1 + 2 ** -11,
  1 + 3 * 2 ** -11,
  65504,
  65519,
  65520,
  2 ** -24,
  2 ** -25,
  3 * 2 ** -26,
  f32Of(0x7f7fffff),
  f32Of(0x00018000),
  -0,
  Infinity,
  -Infinity,
  NaN,
  -123.456,
];

Deno.test({
  name: havePython
    ? "safetensors: F16/BF16/F64 match PyTorch both ways (its rounding, its reader)"
    : "safetensors F16/BF16 vs PyTorch (skipped: /usr/bin/python3 with torch not found)",
  ignore: !havePython,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const path = join(dir, "torch.safetensors");
      const args = VALUES.map((v) => (Object.is(v, -0) ? "-0.0" : String(v)));
      const made = await new Deno.Command(PY, { args: [HELPER, "torch", path, ...args] }).output();
      assert.ok(made.success, new TextDecoder().decode(made.stderr));
      const t = (await readSafetensors(path)).tensors;
      const v32 = Float32Array.from(VALUES);
      assert.deepEqual(t.f32.data, v32);
      // NaN: any NaN pattern (PyTorch's vectorised path gives 0xffff, its scalar one 0x7fc0).
      const nanFree = (bits: Uint16Array) =>
        [...bits].map((b) => ((b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0 ? "nan" : b));
      assert.deepEqual(
        nanFree(t.bf16.data as Uint16Array),
        nanFree(f32ToBf16(v32)),
        "bf16 = torch's",
      );
      assert.deepEqual(t.f16.data, f16ToF32(f32ToF16(v32)), "f16 = torch's (NaN read as NaN)");
      assert.deepEqual(t.f64.data, Float64Array.from(VALUES));
      // The other way: a file we write, read by the json+struct reader (finite values only).
      const finite = Float32Array.from(VALUES.filter(Number.isFinite));
      const ours = join(dir, "ours.safetensors");
      await writeSafetensors(ours, {
        b: { dtype: "BF16", shape: [finite.length], data: f32ToBf16(finite) },
        h: { dtype: "F16", shape: [finite.length], data: f32ToF16(finite) },
        d: { dtype: "F64", shape: [2], data: Float64Array.of(0.1, -1e300) },
      });
      const out = await new Deno.Command(PY, { args: [HELPER, "check", ours] }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      const got = JSON.parse(new TextDecoder().decode(out.stdout)).tensors;
      const named = (a: Float32Array) =>
        [...a].map((
          v,
        ) => (Number.isFinite(v) ? v : Number.isNaN(v) ? "nan" : v > 0 ? "inf" : "-inf"));
      assert.deepEqual(got.b.values, named(bf16ToF32(f32ToBf16(finite))));
      assert.deepEqual(got.h.values, named(f16ToF32(f32ToF16(finite))));
      assert.ok(got.h.values.includes("inf"), "65520 and above overflow f16");
      assert.deepEqual(got.d.values, [0.1, -1e300]);
      assert.equal(bitsOf(got.b.values[0]), bitsOf(bf16ToF32(f32ToBf16(finite))[0]));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
