/**
 * A small rig that runs the project's kernels from tests: device memory, uploads, downloads and
 * launches by kernel name with the argument types of `signatures.ts`. It loads the committed fatbin
 * through the CUDA bindings, on the emulated device (`RESSL_CUDA_EMULATION=1`, the default here;
 * stand-ins built by `bash emulator/build.sh`) or, with `RESSL_CUDA_EMULATION=0` on a GPU machine,
 * on the real driver.
 *
 * @module
 */

import { join } from "node:path";
import { emulatorDir } from "../../ffi/cuda/discovery.ts";
import { type CudaDevice, type CudaDriver, loadDriver, openDevice } from "../../ffi/cuda/driver.ts";
import { type CudaKernel, type Dim3, type KernelArg, loadModule } from "../../ffi/cuda/launch.ts";
import * as mem from "../../ffi/cuda/memory.ts";
import {
  KERNEL_SIGNATURES,
  type KernelName,
  KERNELS_FATBIN_URL,
} from "../../ffi/cuda/kernels/signatures.ts";

/** Host arrays the rig moves. */
export type HostData = Float32Array | Uint16Array | Uint8Array | Int32Array;

/** Device memory and kernel launches for tests. */
export interface KernelRig {
  /** Allocates `bytes` of device memory (freed by `close`). */
  alloc(bytes: number): bigint;
  /** Allocates and uploads a copy of `data`. */
  upload(data: HostData | BigUint64Array): bigint;
  /** Downloads into `out` (synchronises). */
  download<T extends HostData>(ptr: bigint, out: T): T;
  /** Launches `kernel` (the legacy stream) with its arguments in declaration order. */
  launch(kernel: KernelName, grid: Dim3, block: Dim3, args: readonly KernelArg[]): void;
  /** Frees everything and closes the libraries. */
  close(): void;
}

const env = (): Record<string, string> => ({
  ...Deno.env.toObject(),
  RESSL_CUDA_EMULATION: Deno.env.get("RESSL_CUDA_EMULATION") ?? "1",
});

/** Why the kernel tests cannot run here, or undefined when they can. */
export function rigUnavailable(): string | undefined {
  const e = env();
  if (e.RESSL_CUDA_EMULATION === "0") return undefined;
  try {
    if (Deno.statSync(join(emulatorDir({ env: e }), "libcuda.so.1")).isFile) return undefined;
  } catch {
    // not built
  }
  return "skipped: the emulated device is not built (run bash emulator/build.sh)";
}

/** Opens the rig: driver, device 0, the kernels' module. */
export function openRig(): KernelRig {
  const drv: CudaDriver = loadDriver({ env: env() });
  let dev: CudaDevice | null = null;
  const allocations: bigint[] = [];
  try {
    dev = openDevice(drv, 0);
    const module = loadModule(drv, Deno.readFileSync(KERNELS_FATBIN_URL));
    const kernels = new Map<KernelName, CudaKernel>();
    const kernel = (name: KernelName): CudaKernel => {
      let k = kernels.get(name);
      if (!k) {
        k = module.kernel(name, KERNEL_SIGNATURES[name]);
        kernels.set(name, k);
      }
      return k;
    };
    const device = dev;
    return {
      alloc(bytes) {
        const p = mem.memAlloc(drv, Math.max(bytes, 4));
        allocations.push(p);
        return p;
      },
      upload(data) {
        const p = this.alloc(data.byteLength);
        if (data.byteLength > 0) mem.copyHtoD(drv, p, data);
        return p;
      },
      download(ptr, out) {
        if (out.byteLength > 0) mem.copyDtoH(drv, out, ptr);
        return out;
      },
      launch(name, grid, block, args) {
        kernel(name).launch(grid, block, args);
      },
      close() {
        for (const p of allocations.splice(0)) mem.memFree(drv, p);
        module.unload();
        device.release();
        drv.close();
      },
    };
  } catch (e) {
    dev?.release();
    drv.close();
    throw e;
  }
}

/** Runs `body` with an open rig, closing it afterwards. */
export function withRig(body: (rig: KernelRig) => void): void {
  const rig = openRig();
  try {
    body(rig);
  } finally {
    rig.close();
  }
}
