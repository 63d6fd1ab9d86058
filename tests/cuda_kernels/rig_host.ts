/**
 * A development aid for the kernel tests: runs the kernels from host libraries built out of the
 * `.cu` files with the emulator's shim and block scheduler (one library per file, each exporting
 * `ressl_emu_module_table()`), calling a kernel's `run()` directly with host memory. Selected by
 * `RESSL_KERNEL_HOST_LIBS=<folder of those libraries>`; the normal path is the emulated driver
 * (rig.ts). Build the libraries with tests/cuda_kernels/build_host_libs.sh.
 *
 * @module
 */

import type { Dim3, KernelArg } from "../../ffi/cuda/launch.ts";
import { argLayout, packArgs } from "../../ffi/cuda/launch.ts";
import { KERNEL_SIGNATURES, type KernelName } from "../../ffi/cuda/kernels/signatures.ts";
import type { KernelRig } from "./rig.ts";

const RUN = { parameters: ["pointer"], result: "i32" } as const;

function dim3(d: Dim3): [number, number, number] {
  const [x, y = 1, z = 1] = typeof d === "number" ? [d] : d;
  return [x, y, z];
}

/** Opens every library of `dir` and indexes its kernels by name. */
export function openHostRig(dir: string): KernelRig {
  const libs: Deno.DynamicLibrary<
    { ressl_emu_module_table: { parameters: []; result: "pointer" } }
  >[] = [];
  const runs = new Map<string, Deno.UnsafeFnPointer<typeof RUN>>();
  for (const e of Deno.readDirSync(dir)) {
    if (!e.name.endsWith(".so")) continue;
    const lib = Deno.dlopen(`${dir}/${e.name}`, {
      ressl_emu_module_table: { parameters: [], result: "pointer" },
    });
    libs.push(lib);
    const info = new Deno.UnsafePointerView(lib.symbols.ressl_emu_module_table()!);
    const count = info.getUint32(8);
    const table = info.getPointer(16)!;
    for (let k = 0; k < count; k++) {
      const entry = new Deno.UnsafePointerView(Deno.UnsafePointer.offset(table, 56 * k)!);
      const name = Deno.UnsafePointerView.getCString(entry.getPointer(8)!);
      runs.set(name, new Deno.UnsafeFnPointer(entry.getPointer(48)!, RUN));
    }
  }
  const keep: Uint8Array[] = [];
  const address = (buf: Uint8Array) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
  const buffers = new Map<bigint, Uint8Array>();
  const errorText = new Uint8Array(512);
  return {
    alloc(bytes) {
      const buf = new Uint8Array(Math.max(bytes, 4) + 64);
      const base = address(buf);
      const aligned = (base + 63n) & ~63n;
      keep.push(buf);
      const view = buf.subarray(Number(aligned - base));
      buffers.set(aligned, view);
      return aligned;
    },
    upload(data) {
      const p = this.alloc(data.byteLength);
      buffers.get(p)!.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      return p;
    },
    download(ptr, out) {
      const src = buffers.get(ptr);
      if (!src) throw new Error(`download from an unknown address 0x${ptr.toString(16)}`);
      new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(
        src.subarray(0, out.byteLength),
      );
      return out;
    },
    launch(name: KernelName, grid: Dim3, block: Dim3, args: readonly KernelArg[]) {
      const run = runs.get(name);
      if (!run) throw new Error(`no host library defines kernel ${name}`);
      const sig = KERNEL_SIGNATURES[name];
      const layout = argLayout(sig);
      const words = new BigUint64Array(Math.ceil(layout.size / 8) + sig.length + 8);
      const view = new DataView(words.buffer);
      packArgs(view, sig, layout, args, name);
      const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(words)));
      const paramsAt = Math.ceil(layout.size / 8) * 8;
      layout.offsets.forEach((o, i) => view.setBigUint64(paramsAt + 8 * i, base + BigInt(o), true));
      const launch = new BigUint64Array(7);
      const lv = new DataView(launch.buffer);
      const [gx, gy, gz] = dim3(grid), [bx, by, bz] = dim3(block);
      [gx, gy, gz, bx, by, bz, 0].forEach((v, i) => lv.setUint32(4 * i, v, true));
      lv.setBigUint64(32, base + BigInt(paramsAt), true);
      lv.setBigUint64(40, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(errorText))), true);
      lv.setBigUint64(48, BigInt(errorText.length), true);
      const status = run.call(Deno.UnsafePointer.of(launch));
      if (status !== 0) {
        const end = errorText.indexOf(0);
        const why = new TextDecoder().decode(errorText.subarray(0, end < 0 ? undefined : end));
        throw new Error(`kernel ${name} failed with CUresult ${status}: ${why}`);
      }
    },
    close() {
      keep.length = 0;
      buffers.clear();
      for (const lib of libs) lib.close();
    },
  };
}
