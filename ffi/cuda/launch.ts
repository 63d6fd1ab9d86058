/**
 * Modules and kernel launches. A kernel is declared once with its argument types; each launch packs
 * the arguments into one reused buffer at their natural alignment (the layout of the kernel's
 * parameter space) and passes it to `cuLaunchKernel` through `extra`
 * (`CU_LAUNCH_PARAM_BUFFER_POINTER`, buffer, `CU_LAUNCH_PARAM_BUFFER_SIZE`, &size,
 * `CU_LAUNCH_PARAM_END`) or, with `params: "kernelParams"`, as an array of pointers into the same
 * buffer. The driver copies the arguments during the call, so the buffer is reused at once; the
 * pointers to it are made once per kernel (`Deno.UnsafePointer.of` is costly).
 *
 * @module
 */

import type { CudaDriver } from "./driver.ts";
import { CU_LAUNCH_PARAM } from "./driver_symbols.ts";
import { cStringBuffer } from "./errors.ts";
import type { CudaStream } from "./memory.ts";

/** A kernel argument's C type: a device pointer, 64/32-bit integers, floats. */
export type KernelArgType = "ptr" | "u64" | "i64" | "i32" | "u32" | "f32" | "f64";

const SIZE: Readonly<Record<KernelArgType, number>> = {
  ptr: 8,
  u64: 8,
  i64: 8,
  f64: 8,
  i32: 4,
  u32: 4,
  f32: 4,
};

/** Byte offsets of each argument and the size of the packed parameter buffer. */
export interface ArgLayout {
  readonly offsets: readonly number[];
  readonly size: number;
}

/** The packed layout of `signature`: each argument at the next multiple of its own size. */
export function argLayout(signature: readonly KernelArgType[]): ArgLayout {
  const offsets: number[] = [];
  let at = 0;
  for (const t of signature) {
    const size = SIZE[t];
    if (size === undefined) throw new TypeError(`Unknown kernel argument type '${t}'`);
    at = Math.ceil(at / size) * size;
    offsets.push(at);
    at += size;
  }
  return { offsets, size: at };
}

/** A kernel argument value: `bigint` (or a safe integer) for 64-bit types, `number` otherwise. */
export type KernelArg = number | bigint;

/** Writes `args` into `view` at `layout` (little-endian), checking each against its type. */
export function packArgs(
  view: DataView,
  signature: readonly KernelArgType[],
  layout: ArgLayout,
  args: readonly KernelArg[],
  kernel = "kernel",
): void {
  if (args.length !== signature.length) {
    throw new TypeError(
      `Cannot launch ${kernel}: it takes ${signature.length} arguments (${
        signature.join(", ")
      }), ` +
        `got ${args.length}`,
    );
  }
  for (let i = 0; i < args.length; i++) {
    const t = signature[i];
    const v = args[i];
    const at = layout.offsets[i];
    const bad = () =>
      new TypeError(`Cannot launch ${kernel}: argument ${i} (${t}) cannot be ${String(v)}`);
    switch (t) {
      case "ptr":
      case "u64":
      case "i64": {
        const b = typeof v === "bigint" ? v : Number.isSafeInteger(v) ? BigInt(v) : null;
        if (b === null) throw bad();
        if (t === "i64") view.setBigInt64(at, BigInt.asIntN(64, b), true);
        else if (b < 0n || b >= 1n << 64n) throw bad();
        else view.setBigUint64(at, b, true);
        break;
      }
      case "i32":
        if (typeof v !== "number" || !Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) {
          throw bad();
        }
        view.setInt32(at, v, true);
        break;
      case "u32":
        if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= 2 ** 32) throw bad();
        view.setUint32(at, v, true);
        break;
      case "f32":
        if (typeof v !== "number") throw bad();
        view.setFloat32(at, v, true);
        break;
      case "f64":
        if (typeof v !== "number") throw bad();
        view.setFloat64(at, v, true);
        break;
    }
  }
}

/** Grid or block dimensions: `x` or `[x, y?, z?]`. */
export type Dim3 = number | readonly [number, number?, number?];

function dims(d: Dim3, what: string): [number, number, number] {
  const [x, y = 1, z = 1] = typeof d === "number" ? [d] : d;
  for (const v of [x, y, z]) {
    if (!Number.isInteger(v) || v < 1 || v >= 2 ** 31) {
      throw new RangeError(`Cannot launch with ${what} ${JSON.stringify(d)}: use integers >= 1`);
    }
  }
  return [x, y, z];
}

/** How arguments reach `cuLaunchKernel`. */
export type ParamsMode = "extra" | "kernelParams";

/** Options of one launch. */
export interface LaunchOptions {
  /** Dynamic shared memory in bytes (default 0). */
  sharedBytes?: number;
  /** The stream (default: the legacy default stream). */
  stream?: CudaStream;
}

/** A kernel of a loaded module with its declared signature. */
export interface CudaKernel {
  readonly name: string;
  readonly signature: readonly KernelArgType[];
  readonly layout: ArgLayout;
  /** The `CUfunction`. */
  readonly handle: Deno.PointerObject;
  /** Queues the kernel on `opts.stream` with `args` packed per the signature. */
  launch(grid: Dim3, block: Dim3, args: readonly KernelArg[], opts?: LaunchOptions): void;
}

/** A loaded module (`CUmodule`). */
export interface CudaModule {
  readonly handle: Deno.PointerObject;
  /** Looks up `name` (`cuModuleGetFunction`; `extern "C"` names) and declares its arguments. */
  kernel(name: string, signature: readonly KernelArgType[], mode?: ParamsMode): CudaKernel;
  /** `cuModuleUnload`. */
  unload(): void;
}

function isBinaryImage(image: Uint8Array): boolean {
  const elf = image[0] === 0x7f && image[1] === 0x45 && image[2] === 0x4c && image[3] === 0x46;
  const fatbin = image.length >= 4 &&
    new DataView(image.buffer, image.byteOffset, 4).getUint32(0, true) === 0xba55ed50;
  return elf || fatbin;
}

/**
 * `cuModuleLoadData` from a fatbin, cubin or PTX image (PTX text is NUL-terminated here if it is
 * not already).
 */
export function loadModule(drv: CudaDriver, image: Uint8Array): CudaModule {
  if (image.length === 0) throw new RangeError("Cannot load a CUDA module from an empty image");
  let bytes = image;
  if (!isBinaryImage(image) && image[image.length - 1] !== 0) {
    bytes = new Uint8Array(image.length + 1);
    bytes.set(image);
  }
  const out = new BigUint64Array(1);
  drv.check(drv.symbols.cuModuleLoadData(out, bytes), `load a CUDA module (${image.length} bytes)`);
  const module = Deno.UnsafePointer.create(out[0]);
  if (module === null) throw new Error("cuModuleLoadData returned a null module");
  let unloaded = false;
  return {
    handle: module,
    kernel: (name, signature, mode = "extra") => makeKernel(drv, module, name, signature, mode),
    unload(): void {
      if (unloaded) return;
      unloaded = true;
      drv.check(drv.symbols.cuModuleUnload(module), "unload a CUDA module");
    },
  };
}

/**
 * One buffer per kernel holding the packed arguments, then the size word, the `extra` array and the
 * `kernelParams` array that point into it. Everything the driver reads lives in this one buffer,
 * so the DataView used by each launch keeps all of it alive.
 */
export interface LaunchBuffer {
  /** The whole buffer; arguments are packed at offset 0. */
  readonly view: DataView;
  /** Address of the `extra` array (`CU_LAUNCH_PARAM_BUFFER_POINTER`, ..., `CU_LAUNCH_PARAM_END`). */
  readonly extra: Deno.PointerObject;
  /** Address of the `kernelParams` array (one pointer per argument into the packed arguments). */
  readonly kernelParams: Deno.PointerObject;
}

/** Builds the {@link LaunchBuffer} of `layout`. */
export function launchBuffer(layout: ArgLayout): LaunchBuffer {
  const argBytes = Math.max(8, Math.ceil(layout.size / 8) * 8);
  const sizeAt = argBytes;
  const extraAt = sizeAt + 8;
  const paramsAt = extraAt + 5 * 8;
  // A BigUint64Array's buffer is 8-byte aligned, which covers every argument type.
  const words = new BigUint64Array((paramsAt + 8 * layout.offsets.length) / 8);
  const view = new DataView(words.buffer);
  const basePtr = Deno.UnsafePointer.of(words);
  if (basePtr === null) throw new Error("Deno.UnsafePointer.of returned null for a launch buffer");
  const base = BigInt(Deno.UnsafePointer.value(basePtr));
  view.setBigUint64(sizeAt, BigInt(layout.size), true);
  const extra = [
    BigInt(CU_LAUNCH_PARAM.BUFFER_POINTER),
    base,
    BigInt(CU_LAUNCH_PARAM.BUFFER_SIZE),
    base + BigInt(sizeAt),
    BigInt(CU_LAUNCH_PARAM.END),
  ];
  extra.forEach((v, i) => view.setBigUint64(extraAt + 8 * i, v, true));
  layout.offsets.forEach((o, i) => view.setBigUint64(paramsAt + 8 * i, base + BigInt(o), true));
  return {
    view,
    extra: Deno.UnsafePointer.offset(basePtr, extraAt) as Deno.PointerObject,
    kernelParams: Deno.UnsafePointer.offset(basePtr, paramsAt) as Deno.PointerObject,
  };
}

function makeKernel(
  drv: CudaDriver,
  module: Deno.PointerObject,
  name: string,
  signature: readonly KernelArgType[],
  mode: ParamsMode,
): CudaKernel {
  const out = new BigUint64Array(1);
  drv.check(
    drv.symbols.cuModuleGetFunction(out, module, cStringBuffer(name)),
    `find kernel '${name}' in the module`,
  );
  const fn = Deno.UnsafePointer.create(out[0]);
  if (fn === null) throw new Error(`cuModuleGetFunction returned null for '${name}'`);
  const sig = [...signature];
  const layout = argLayout(sig);
  const { view, extra, kernelParams } = launchBuffer(layout);
  const noArgs = sig.length === 0;
  const extraPtr = noArgs || mode !== "extra" ? null : extra;
  const paramsPtr = noArgs || mode !== "kernelParams" ? null : kernelParams;
  return {
    name,
    signature: sig,
    layout,
    handle: fn,
    launch(grid, block, args, opts = {}): void {
      packArgs(view, sig, layout, args, name);
      const [gx, gy, gz] = dims(grid, "grid");
      const [bx, by, bz] = dims(block, "block");
      const shared = opts.sharedBytes ?? 0;
      const status = drv.symbols.cuLaunchKernel(
        fn,
        gx,
        gy,
        gz,
        bx,
        by,
        bz,
        shared,
        opts.stream ?? null,
        paramsPtr,
        extraPtr,
      );
      if (status !== 0) {
        drv.check(status, `launch ${name} (grid ${gx}x${gy}x${gz}, block ${bx}x${by}x${bz})`);
      }
    },
  };
}
