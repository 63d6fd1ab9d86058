/**
 * Measures the emulated device: the cost of a kernel launch (enqueue + run at synchronisation),
 * the per-thread cost of an elementwise kernel with threads as plain calls and as fibers, and the
 * cuDNN stand-in's convolutions at the sizes of a narrow ResNet-18 on 32x32 images.
 * Usage: deno run --allow-all emulator/bench.ts   (builds the emulator and test fatbins first)
 *
 * @module
 */

import { join } from "node:path";
import { fatbin, LIB_DIR, openEmu } from "../tests/emulator/emu_helpers.ts";
import { CUDNN_TEST_SYMBOLS, quarters } from "../tests/emulator/cudnn_reference.ts";

const emu = openEmu();
const s = emu.s;
const stream = emu.stream();
const sync = () => emu.ok(s.cuStreamSynchronize(stream), "sync");

function time(what: string, reps: number, body: () => void, unit?: (ms: number) => string): void {
  body();
  sync();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) body();
  sync();
  const ms = (performance.now() - t0) / reps;
  console.log(`${what.padEnd(58)} ${ms.toFixed(3).padStart(9)} ms${unit ? "  " + unit(ms) : ""}`);
}

const plain = emu.module(fatbin("tests/emulator/kernels/emu_plain.cu"));
const syncMod = emu.module(fatbin("tests/emulator/kernels/emu_sync.cu"));
const axpby = emu.fn(plain, "emu_axpby");
const n = 1 << 20;
const x = emu.upload(new Float32Array(n).fill(1)), y = emu.upload(new Float32Array(n).fill(2));
time(
  "launch of a 1-block kernel (32 threads), per launch",
  2000,
  () =>
    emu.launch(
      axpby,
      [1],
      [32],
      [{ ptr: y }, { ptr: x }, { f32: 1 }, { f32: 0 }, { i32: 32 }],
      stream,
    ),
);
const perThread = (ms: number) => `${(ms * 1e6 / n).toFixed(1)} ns/thread`;
time(
  "axpby over 2^20 threads, plain calls (no barrier in the file)",
  5,
  () =>
    emu.launch(axpby, [n / 256], [256], [{ ptr: y }, { ptr: x }, { f32: 1 }, { f32: 0 }, {
      i32: n,
    }], stream),
  perThread,
);
const sum = emu.fn(syncMod, "emu_block_sum");
const acc = emu.alloc(4);
time(
  "block_sum over 2^20 threads, fibers (4 barriers, 5 shuffles)",
  5,
  () => emu.launch(sum, [n / 256], [256], [{ ptr: x }, { i32: n }, { ptr: acc }], stream),
  perThread,
);
try {
  const kernels = Deno.readFileSync(
    join(LIB_DIR, "..", "..", "..", "ffi", "cuda", "kernels", "ressl_kernels.fatbin"),
  );
  const relu = emu.fn(emu.module(kernels), "relu_f32");
  time(
    "project relu_f32 over 2^20 threads (its file uses barriers)",
    5,
    () => emu.launch(relu, [n / 256], [256], [{ ptr: x }, { ptr: y }, { i32: n }], stream),
    perThread,
  );
} catch (e) {
  console.log(`(project kernels not measured: ${(e as Error).message})`);
}

const dnn = Deno.dlopen(join(LIB_DIR, "libcudnn.so.9"), CUDNN_TEST_SYMBOLS).symbols;
const out = new BigUint64Array(1);
const make = (f: (o: BigUint64Array) => number) => (f(out), Deno.UnsafePointer.create(out[0]));
const h = make(dnn.cudnnCreate);
dnn.cudnnSetStream(h, stream);
const one = new Float32Array([1]), zero = new Float32Array([0]);
for (
  const [label, N, C, H, K, stride, dt] of [
    ["conv 3x3 32x16x32x32 -> 16 (f32)", 32, 16, 32, 16, 1, 0],
    ["conv 3x3 32x16x32x32 -> 16 (bf16)", 32, 16, 32, 16, 1, 9],
    ["conv 3x3 32x64x8x8 -> 64 stride 2 (f32)", 32, 64, 8, 64, 2, 0],
  ] as const
) {
  const xd = make(dnn.cudnnCreateTensorDescriptor), yd = make(dnn.cudnnCreateTensorDescriptor);
  const wd = make(dnn.cudnnCreateFilterDescriptor), cd = make(dnn.cudnnCreateConvolutionDescriptor);
  dnn.cudnnSetTensor4dDescriptor(xd, 0, dt, N, C, H, H);
  dnn.cudnnSetFilter4dDescriptor(wd, dt, 0, K, C, 3, 3);
  dnn.cudnnSetConvolution2dDescriptor(cd, 1, 1, stride, stride, 1, 1, 1, 0);
  dnn.cudnnSetConvolutionMathType(cd, dt === 0 ? 3 : 1);
  const P = Math.floor((H + 2 - 3) / stride) + 1;
  dnn.cudnnSetTensor4dDescriptor(yd, 0, dt, N, K, P, P);
  const es = dt === 0 ? 4 : 2;
  const xs = emu.alloc(es * N * C * H * H),
    ws = emu.alloc(es * K * C * 9),
    ys = emu.alloc(es * N * K * P * P);
  const init = quarters(N * C * H * H, 1);
  emu.ok(
    s.cuMemcpyHtoD_v2(
      xs,
      new Uint8Array(init.buffer, 0, es * N * C * H * H),
      BigInt(es * N * C * H * H),
    ),
    "x",
  );
  const flops = 2 * N * K * C * 9 * P * P;
  const rate = (ms: number) => `${(flops / ms / 1e6).toFixed(2)} GFLOP/s`;
  time(
    `${label} forward`,
    3,
    () => dnn.cudnnConvolutionForward(h, one, xd, xs, wd, ws, cd, 0, 0n, 0n, zero, yd, ys),
    rate,
  );
  time(
    `${label} backward data`,
    3,
    () => dnn.cudnnConvolutionBackwardData(h, one, wd, ws, yd, ys, cd, 0, 0n, 0n, zero, xd, xs),
    rate,
  );
  time(
    `${label} backward filter`,
    3,
    () => dnn.cudnnConvolutionBackwardFilter(h, one, xd, xs, yd, ys, cd, 0, 0n, 0n, zero, wd, ws),
    rate,
  );
}
dnn.cudnnDestroy(h);
emu.close();
