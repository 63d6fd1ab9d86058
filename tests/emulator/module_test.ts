/**
 * Module images and launch checks on the emulated device: cuModuleLoadData validates and parses
 * the real nvcc output (fatbin, bare cubin, PTX; compressed or not) as the driver would, refuses
 * code for another GPU, a kernel without a host build and a stale host build; cuModuleGetFunction
 * answers CUDA_ERROR_NOT_FOUND for a name the image lacks; cuLaunchKernel refuses bad
 * configurations. Also the device queries and error strings.
 */

import assert from "node:assert/strict";
import {
  CU,
  type Emu,
  emulatorUnavailable,
  fatbin,
  nvccOutput,
  openEmu,
  skipNote,
} from "./emu_helpers.ts";

const ignore = emulatorUnavailable() !== undefined;
const note = skipNote();
const PLAIN = "tests/emulator/kernels/emu_plain.cu";

function load(emu: Emu, image: Uint8Array): number {
  const out = new BigUint64Array(1);
  return emu.s.cuModuleLoadData(out, image);
}

function cstr(ptr: bigint): string {
  return Deno.UnsafePointerView.getCString(Deno.UnsafePointer.create(ptr)!);
}

Deno.test({
  name: "emulator modules: images as nvcc writes them, and the ones the driver refuses" + note,
  ignore,
  fn() {
    const emu = openEmu();
    try {
      const mod = emu.module(fatbin(PLAIN));
      const out = new BigUint64Array(1);
      const name = (s: string) => new TextEncoder().encode(s + "\0");
      assert.equal(emu.s.cuModuleGetFunction(out, mod, name("emu_missing")), CU.NOT_FOUND);
      assert.equal(emu.name(CU.NOT_FOUND), "CUDA_ERROR_NOT_FOUND");
      emu.s.cuGetErrorString(CU.NOT_FOUND, out);
      assert.equal(cstr(out[0]), "named symbol not found");
      assert.equal(emu.s.cuGetErrorName(12345, out), CU.INVALID_VALUE, "unknown code");

      // A bare sm_90 cubin, and a PTX-only fatbin (zstd-compressed PTX, "JIT-compiled").
      const cubin = nvccOutput(PLAIN, ["-cubin", "-arch=sm_90"], ".cubin");
      const ptxOnly = nvccOutput(
        PLAIN,
        ["-fatbin", "-gencode", "arch=compute_90,code=compute_90"],
        ".ptx.fatbin",
      );
      for (const image of [cubin, ptxOnly]) {
        emu.ok(emu.s.cuModuleLoadData(out, image), "load");
        const f = emu.fn(Deno.UnsafePointer.create(out[0]), "emu_axpby");
        const y = emu.upload(new Float32Array([1, 2, 3]));
        emu.launch(f, [1], [32], [{ ptr: y }, { ptr: y }, { f32: 1 }, { f32: 1 }, { i32: 3 }]);
        assert.deepEqual([...emu.download(y, new Float32Array(3))], [2, 4, 6]);
      }
      // Code for another GPU only: sm_80 SASS cannot run on sm_90, nor sm_100 SASS.
      for (const arch of ["80", "100"]) {
        const other = nvccOutput(PLAIN, [
          "-fatbin",
          "-gencode",
          `arch=compute_${arch},code=sm_${arch}`,
        ], `.sm${arch}.fatbin`);
        assert.equal(load(emu, other), CU.NO_BINARY_FOR_GPU, `sm_${arch} only`);
      }
      assert.match(emu.lastError(), /sm_100/);
      // Not an image at all, a damaged fatbin header, a truncated cubin. The cubin is truncated
      // inside an uncompressed fatbin, whose entry says how many bytes it has: a bare cubin has
      // no size but its own header (the driver, like the emulator, takes the ELF header's word),
      // so one whose section table lies past its end would be read from whatever memory follows.
      assert.equal(load(emu, new TextEncoder().encode("hello, GPU\0")), CU.INVALID_PTX);
      const damaged = fatbin(PLAIN).slice();
      damaged[4] = 7; // version
      assert.equal(load(emu, damaged), CU.INVALID_IMAGE);
      const plain = nvccOutput(PLAIN, [
        "-fatbin",
        "--no-compress",
        "-gencode",
        "arch=compute_90,code=sm_90",
      ], ".sm90.plain.fatbin");
      const elfAt = plain.findIndex((_, i) =>
        plain[i] === 0x7f && plain[i + 1] === 0x45 && plain[i + 2] === 0x4c && plain[i + 3] === 0x46
      );
      assert.ok(elfAt > 0, "an uncompressed fatbin holds the cubin as it is");
      emu.ok(load(emu, plain), "the intact uncompressed fatbin loads");
      const truncated = plain.slice();
      // e_shoff: the section table moved past the end of the entry
      new DataView(truncated.buffer).setBigUint64(elfAt + 0x28, BigInt(plain.length * 4), true);
      assert.equal(load(emu, truncated), CU.INVALID_IMAGE);
      assert.match(emu.lastError(), /out of bounds \(truncated image\?\)/);

      // In the image but without a host build; in both but with other parameter types.
      assert.equal(
        load(emu, fatbin("tests/emulator/no_host/emu_no_host.cu")),
        CU.NO_BINARY_FOR_GPU,
      );
      assert.match(emu.lastError(), /emu_no_host_kernel with no host build/);
      assert.equal(
        load(emu, fatbin("tests/emulator/no_host/emu_changed_args.cu")),
        CU.NO_BINARY_FOR_GPU,
      );
      assert.match(
        emu.lastError(),
        /emu_axpby: the image's parameters \(8B@0, 8B@8, 8B@16, 8B@24, 4B@32\) differ/,
      );
      // C++ linkage: the mangled name, as in the image. A kernel template's instance: no host build.
      const cpp = emu.fn(mod, "_Z14emu_cpp_kernelPii");
      const o = emu.alloc(4 * 8);
      emu.launch(cpp, [1], [8], [{ ptr: o }, { i32: 42 }]);
      assert.deepEqual([...emu.download(o, new Int32Array(8))], new Array(8).fill(42));
      assert.equal(
        load(emu, fatbin("tests/emulator/no_host/emu_template.cu")),
        CU.NO_BINARY_FOR_GPU,
      );
      assert.match(emu.lastError(), /_Z19emu_template_kernelIfEvPT_ with no host build/);
      emu.ok(emu.s.cuModuleUnload(mod), "cuModuleUnload");
      assert.equal(emu.s.cuModuleUnload(mod), CU.INVALID_HANDLE, "unloaded twice");
    } finally {
      emu.close();
    }
  },
});

Deno.test({
  name: "emulator launches: configurations the driver refuses" + note,
  ignore,
  fn() {
    const emu = openEmu();
    try {
      const mod = emu.module(fatbin(PLAIN));
      const axpby = emu.fn(mod, "emu_axpby");
      const y = emu.alloc(4096);
      const args = [{ ptr: y }, { ptr: y }, { f32: 1 }, { f32: 1 }, { i32: 8 }];
      const launch = (g: number[], b: number[], shared = 0) => {
        try {
          emu.launch(axpby, g, b, args, null, shared);
          return CU.SUCCESS;
        } catch (e) {
          return Number(/\((\d+)\)/.exec((e as Error).message)![1]);
        }
      };
      assert.equal(launch([1], [1024]), CU.SUCCESS);
      assert.equal(launch([1], [1025]), CU.INVALID_VALUE, "more than 1024 threads");
      assert.equal(launch([1], [32, 32, 2]), CU.INVALID_VALUE);
      assert.equal(launch([1], [1, 1, 65]), CU.INVALID_VALUE, "block z above 64");
      assert.equal(launch([0], [32]), CU.INVALID_VALUE, "empty grid");
      assert.equal(launch([1, 65536], [32]), CU.INVALID_VALUE, "grid y above 65535");
      assert.equal(
        launch([1], [32], 48 * 1024 + 4),
        CU.INVALID_VALUE,
        "over 48 KiB of shared memory",
      );
      emu.ok(emu.s.cuFuncSetAttribute(axpby, 8, 100 * 1024), "MAX_DYNAMIC_SHARED_SIZE_BYTES");
      assert.equal(launch([1], [32], 100 * 1024), CU.SUCCESS, "after opting in");
      assert.equal(
        emu.s.cuFuncSetAttribute(axpby, 8, 300 * 1024),
        CU.INVALID_VALUE,
        "beyond the device",
      );
      const bounded = emu.fn(mod, "emu_bounded");
      assert.throws(
        () => emu.launch(bounded, [1], [256], [{ ptr: y }]),
        /\(701\)/,
        "__launch_bounds__(128)",
      );
      emu.launch(bounded, [2], [128], [{ ptr: y }]);
      assert.equal(
        emu.s.cuLaunchKernel(axpby, 1, 1, 1, 32, 1, 1, 0, null, null, null),
        CU.INVALID_VALUE,
        "no arguments",
      );
      const packed = new Uint8Array(32);
      const size = new BigUint64Array([24n]);
      const extra = new BigUint64Array([
        1n,
        BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(packed))),
        2n,
        BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(size))),
        0n,
      ]);
      assert.equal(
        emu.s.cuLaunchKernel(axpby, 1, 1, 1, 32, 1, 1, 0, null, null, Deno.UnsafePointer.of(extra)),
        CU.INVALID_VALUE,
        "the buffer is 28 bytes, not 24",
      );
      assert.match(emu.lastError(), /emu_axpby takes 28 bytes of parameters, the buffer says 24/);
      emu.ok(emu.s.cuCtxSynchronize(), "sync");
      assert.deepEqual([...emu.download(y, new Int32Array(256))].slice(126, 130), [126, 127, 0, 1]);
    } finally {
      emu.close();
    }
  },
});

Deno.test({
  name: "emulator device: an sm_90 device with H100 attributes" + note,
  ignore,
  fn() {
    const emu = openEmu();
    try {
      const v = new Int32Array(1);
      emu.ok(emu.s.cuDriverGetVersion(v), "cuDriverGetVersion");
      assert.ok(v[0] >= 13000);
      emu.ok(emu.s.cuDeviceGetCount(v), "cuDeviceGetCount");
      assert.equal(v[0], 1);
      const attr = (a: number) => {
        emu.ok(emu.s.cuDeviceGetAttribute(v, a, 0), `attribute ${a}`);
        return v[0];
      };
      // major, minor, SMs, threads/block, warp, shared/block, opt-in shared/block
      assert.deepEqual([75, 76, 16, 1, 10, 8, 97].map(attr), [9, 0, 132, 1024, 32, 49152, 232448]);
      assert.equal(emu.s.cuDeviceGetAttribute(v, 9999, 0), CU.INVALID_VALUE);
      assert.equal(emu.s.cuDeviceGet(v, 1), 101, "CUDA_ERROR_INVALID_DEVICE");
      const name = new Uint8Array(128);
      emu.ok(emu.s.cuDeviceGetName(name, 128, 0), "cuDeviceGetName");
      assert.match(new TextDecoder().decode(name), /emulated/);
    } finally {
      emu.close();
    }
  },
});
