/**
 * The emulated device runs the test kernels of tests/emulator/kernels/*.cu: each file is built by
 * the real nvcc into a fatbin (loaded with cuModuleLoadData, which lists its kernels) and by
 * emulator/build.sh for the host (what actually runs). Results are checked exactly against
 * TypeScript models of what the kernels compute on a GPU: shared memory + __syncthreads, warp
 * shuffles and votes, atomics, dynamic shared memory, bf16 conversion, 3-D indices and argument
 * packing (kernelParams and the `extra` buffer).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Arg,
  argSize,
  emulatorUnavailable,
  fatbin,
  LIB_DIR,
  openEmu,
  skipNote,
  writeArg,
} from "./emu_helpers.ts";

const ignore = emulatorUnavailable() !== undefined;
const note = skipNote();

/** float -> bf16 bits, round to nearest even (NaN -> 0x7FFF), the device's __float2bfloat16_rn. */
function bf16Bits(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  if ((u & 0x7fffffff) > 0x7f800000) return 0x7fff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}
function bf16Value(bits: number): number {
  return new Float32Array(new Uint32Array([bits << 16]).buffer)[0];
}

Deno.test({
  name: "emulator kernels: axpby, 3-D indices and mixed-size arguments" + note,
  ignore,
  fn() {
    const emu = openEmu();
    try {
      const mod = emu.module(fatbin("tests/emulator/kernels/emu_plain.cu"));
      const n = 1000;
      const x = emu.upload(Float32Array.from({ length: n }, (_, i) => i));
      const y = emu.upload(new Float32Array(n).fill(1));
      emu.launch(emu.fn(mod, "emu_axpby"), [4], [256], [{ ptr: y }, { ptr: x }, { f32: 2 }, {
        f32: 3,
      }, { i32: n }]);
      const got = emu.download(y, new Float32Array(n));
      assert.deepEqual([...got], Array.from({ length: n }, (_, i) => 2 * i + 3));

      const grid = [2, 3, 2], block = [4, 2, 3];
      const threads = 12 * 24;
      const idx = emu.alloc(threads * 12 * 4);
      emu.launch(emu.fn(mod, "emu_indices"), grid, block, [{ ptr: idx }]);
      const rec = emu.download(idx, new Uint32Array(threads * 12));
      let k = 0;
      for (let bz = 0; bz < 2; bz++) {
        for (let by = 0; by < 3; by++) {
          for (let bx = 0; bx < 2; bx++) {
            for (let tz = 0; tz < 3; tz++) {
              for (let ty = 0; ty < 2; ty++) {
                for (let tx = 0; tx < 4; tx++) {
                  assert.deepEqual([...rec.subarray(12 * k, 12 * k + 12)], [
                    tx,
                    ty,
                    tz,
                    bx,
                    by,
                    bz,
                    ...block,
                    ...grid,
                  ]);
                  k++;
                }
              }
            }
          }
        }
      }

      // char, double, pointer, short, float: the same through kernelParams and through `extra`.
      const out = emu.alloc(32);
      const f = emu.fn(mod, "emu_args");
      const args: Arg[] = [{ i8: -5 }, { f64: 1e10 + 0.5 }, { ptr: out }, { i16: -1234 }, {
        f32: 2.25,
      }];
      emu.launch(f, [1], [32], args);
      assert.deepEqual([...emu.download(out, new BigInt64Array(4))], [
        -5n,
        10000000000n,
        -1234n,
        4n,
      ]);
      emu.ok(emu.s.cuMemsetD8Async(out, 0, 32n, null), "memset");
      const packed = new Uint8Array(64);
      const view = new DataView(packed.buffer);
      let at = 0;
      for (const a of args) {
        at = Math.ceil(at / argSize(a)) * argSize(a);
        writeArg(view, at, a);
        at += argSize(a);
      }
      assert.equal(at, 32);
      const size = new BigUint64Array([BigInt(at)]);
      const extra = new BigUint64Array([
        1n,
        BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(packed))),
        2n,
        BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(size))),
        0n,
      ]);
      emu.ok(
        emu.s.cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, null, null, Deno.UnsafePointer.of(extra)),
        "extra launch",
      );
      assert.deepEqual([...emu.download(out, new BigInt64Array(4))], [
        -5n,
        10000000000n,
        -1234n,
        4n,
      ]);
    } finally {
      emu.close();
    }
  },
});

Deno.test({
  name: "emulator kernels: bf16 round to nearest even, atomics, fast-math as exact host math" +
    note,
  ignore,
  fn() {
    const emu = openEmu();
    try {
      const mod = emu.module(fatbin("tests/emulator/kernels/emu_plain.cu"));
      const e = 2 ** -8, t = 2 ** -7;
      const inputs = [
        1,
        1 + e,
        1 + 3 * e,
        1 + t,
        -(1 + e),
        3.14159,
        65504.7,
        1e-40,
        -0,
        Infinity,
        NaN,
        3.4e38,
      ];
      const n = inputs.length;
      const x = emu.upload(Float32Array.from(inputs));
      const out = emu.alloc(2 * n), back = emu.alloc(4 * n), sum = emu.alloc(2 * n);
      emu.launch(emu.fn(mod, "emu_bf16"), [1], [32], [{ ptr: x }, { ptr: out }, { ptr: back }, {
        ptr: sum,
      }, { i32: n }]);
      const bits = emu.download(out, new Uint16Array(n));
      const want = inputs.map(bf16Bits);
      assert.deepEqual([...bits], want);
      assert.deepEqual([bits[1], bits[2]], [0x3f80, 0x3f82], "ties go to the even neighbour");
      assert.deepEqual([...emu.download(back, new Float32Array(n))], want.map(bf16Value));
      const sums = emu.download(sum, new Uint16Array(n));
      assert.deepEqual([...sums], want.map((b) => bf16Bits(bf16Value(b) + 1)));

      const m = 300;
      const vals = Int32Array.from({ length: m }, (_, i) => ((i * 37) % 101) - 50);
      const v = emu.upload(vals);
      const isum = emu.upload(new Int32Array([0])), fsum = emu.upload(new Float32Array([0]));
      const imax = emu.upload(new Int32Array([-1000])),
        umin = emu.upload(new Uint32Array([0xffffffff]));
      const cas = emu.upload(new BigUint64Array([0n])), last = emu.upload(new Int32Array([0]));
      emu.launch(emu.fn(mod, "emu_atomics"), [3], [128], [
        { ptr: v },
        { i32: m },
        { ptr: isum },
        { ptr: fsum },
        { ptr: imax },
        { ptr: umin },
        { ptr: cas },
        { ptr: last },
      ]);
      const total = vals.reduce((a, b) => a + b, 0);
      assert.equal(emu.download(isum, new Int32Array(1))[0], total);
      assert.equal(emu.download(fsum, new Float32Array(1))[0], total);
      assert.equal(emu.download(imax, new Int32Array(1))[0], Math.max(...vals));
      assert.equal(emu.download(umin, new Uint32Array(1))[0], Math.min(...vals) + 1000);
      assert.equal(emu.download(cas, new BigUint64Array(1))[0], BigInt(m));
      assert.equal(emu.download(last, new Int32Array(1))[0], 7);

      const xs = Float32Array.from([0.5, 1, 2.75, 10, 88]);
      const fm = emu.alloc(4 * 4 * xs.length);
      emu.launch(emu.fn(mod, "emu_fastmath"), [1], [32], [{ ptr: emu.upload(xs) }, { ptr: fm }, {
        i32: xs.length,
      }]);
      const got = emu.download(fm, new Float32Array(4 * xs.length));
      xs.forEach((xv, i) => {
        const exact = [Math.exp(xv), 1 / Math.sqrt(xv), 1 / xv, Math.log(xv)];
        exact.forEach((ev, j) => {
          const ulp = Math.abs(Math.fround(ev)) * 2 ** -23;
          assert.ok(
            Math.abs(got[4 * i + j] - ev) <= ulp,
            `intrinsic ${j} of ${xv}: ${got[4 * i + j]} vs ${ev}`,
          );
        });
      });
    } finally {
      emu.close();
    }
  },
});

Deno.test({
  name:
    "emulator kernels: shared memory, __syncthreads, warp shuffles/votes, dynamic shared memory" +
    note,
  ignore,
  fn() {
    const emu = openEmu();
    try {
      const mod = emu.module(fatbin("tests/emulator/kernels/emu_sync.cu"));
      const n = 100_003;
      const xs = Float32Array.from({ length: n }, (_, i) => (i * 13) % 8);
      const out = emu.upload(new Float32Array([0]));
      emu.launch(emu.fn(mod, "emu_block_sum"), [7], [256], [{ ptr: emu.upload(xs) }, { i32: n }, {
        ptr: out,
      }]);
      assert.equal(emu.download(out, new Float32Array(1))[0], xs.reduce((a, b) => a + b, 0));

      const m = 1000, bd = 256;
      const ins = Int32Array.from({ length: m }, (_, i) => i * 3 + 1);
      const rev = emu.upload(new Int32Array(m).fill(-7));
      emu.launch(
        emu.fn(mod, "emu_dyn_reverse"),
        [4],
        [bd],
        [{ ptr: emu.upload(ins) }, { ptr: rev }, { i32: m }],
        null,
        4 * bd,
      );
      const want = Array.from({ length: m }, (_, i) => {
        const j = Math.floor(i / bd) * bd + (bd - 1 - (i % bd));
        return j < m ? ins[j] : -7;
      });
      assert.deepEqual([...emu.download(rev, new Int32Array(m))], want);

      const k = 50, b2 = 64;
      const fin = Float32Array.from({ length: k }, (_, i) => i / 4);
      const two = emu.alloc(4 * k);
      emu.launch(
        emu.fn(mod, "emu_dyn_two"),
        [1],
        [b2],
        [{ ptr: emu.upload(fin) }, { ptr: two }, { i32: k }],
        null,
        8 * b2,
      );
      const f = (t: number) => (t < k ? fin[t] : 0);
      assert.deepEqual(
        [...emu.download(two, new Float32Array(k))],
        Array.from({ length: k }, (_, t) => f((t + 1) % b2) + 3 * (b2 - 1 - t)),
      );

      const blocks = 2, bw = 64;
      const vals = Int32Array.from({ length: blocks * bw }, (_, i) => (i * 7 + 3) % 67);
      const wo = emu.alloc(4 * 8 * vals.length);
      emu.launch(emu.fn(mod, "emu_warp_ops"), [blocks], [bw], [{ ptr: emu.upload(vals) }, {
        ptr: wo,
      }]);
      const res = emu.download(wo, new Int32Array(8 * vals.length));
      for (let t = 0; t < vals.length; t++) {
        const w0 = t - (t % 32), lane = t % 32, b0 = t - (t % bw);
        const warp = vals.subarray(w0, w0 + 32), blk = vals.subarray(b0, b0 + bw);
        const seg = lane - (lane % 16);
        const expect = [
          warp.reduce((a, b) => a + b, 0),
          warp[5],
          lane === 0 ? warp[0] : warp[lane - 1],
          lane + 3 >= seg + 16 ? warp[lane] : warp[lane + 3],
          warp.reduce((bits, v, l) => bits | ((v & 1) << l), 0) | 0,
          warp.some((v) => v > 60) ? 1 : 0,
          1,
          blk.filter((v) => v % 2 === 0).length,
        ];
        assert.deepEqual([...res.subarray(8 * t, 8 * t + 8)], expect, `thread ${t}`);
      }

      const sv = Int32Array.from({ length: 512 }, (_, i) => (i * 11) % 23);
      const scan = emu.alloc(4 * 512), hist = emu.alloc(4 * 16);
      emu.launch(emu.fn(mod, "emu_scan_hist"), [2], [256], [
        { ptr: emu.upload(sv) },
        { ptr: scan },
        { ptr: hist },
      ]);
      const scanned = emu.download(scan, new Int32Array(512));
      const bins = emu.download(hist, new Int32Array(16));
      for (let b = 0; b < 2; b++) {
        let acc = 0;
        const h = new Array(8).fill(0);
        for (let t = 0; t < 256; t++) {
          acc += sv[b * 256 + t];
          h[sv[b * 256 + t] % 8]++;
          assert.equal(scanned[b * 256 + t], acc);
        }
        assert.deepEqual([...bins.subarray(8 * b, 8 * b + 8)], h);
      }

      // Shared memory is undefined before it is written; the emulator fills it with 0xFF bytes.
      const un = emu.alloc(4 * 64);
      emu.launch(emu.fn(mod, "emu_uninit_shared"), [1], [64], [{ ptr: un }]);
      assert.deepEqual([...emu.download(un, new Int32Array(64))], new Array(64).fill(-1));
    } finally {
      emu.close();
    }
  },
});

Deno.test({
  name:
    "emulator kernels: libraries without barriers run threads as plain calls, others as fibers" +
    note,
  ignore,
  fn() {
    openEmu().close(); // builds
    const table = (file: string) => {
      const lib = Deno.dlopen(join(LIB_DIR, "kernels", file), {
        ressl_emu_module_table: { parameters: [], result: "pointer" },
      });
      const view = new Deno.UnsafePointerView(lib.symbols.ressl_emu_module_table()!);
      const info = {
        abi: view.getUint32(0),
        fibers: view.getUint32(4),
        kernels: view.getUint32(8),
      };
      lib.close();
      return info;
    };
    assert.deepEqual(table("test_emu_plain.so"), { abi: 1, fibers: 0, kernels: 9 });
    assert.deepEqual(table("test_emu_sync.so"), { abi: 1, fibers: 1, kernels: 6 });
  },
});
