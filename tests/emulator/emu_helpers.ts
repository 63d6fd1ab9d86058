/**
 * Shared pieces of the emulated-device tests: building the emulator (`emulator/build.sh`, once per
 * process, under a lock) and the test kernels' fatbins (the real `nvcc`), and opening the stand-in
 * `libcuda.so.1` through a small local symbol table, so these tests do not depend on the bindings
 * in `ffi/cuda/`.
 *
 * @module
 */

import { existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** Where `emulator/build.sh` puts the stand-in libraries. */
export const LIB_DIR = join(ROOT, "build", "emulator", "lib");
const FATBIN_DIR = join(ROOT, "build", "emulator", "test_fatbins");
const WHEELS = Deno.env.get("RESSL_CUDA_WHEELS_DIR") ?? join(ROOT, ".cache", "nvidia");

function onPath(tool: string): boolean {
  return new Deno.Command("sh", { args: ["-c", `command -v ${tool}`], stdout: "null" })
    .outputSync().success;
}

/** Why the emulator tests cannot run on this machine (a missing tool or header), or undefined. */
export function emulatorUnavailable(): string | undefined {
  for (const tool of ["g++", "make", "nvcc"]) {
    if (!onPath(tool)) return `${tool} is not installed`;
  }
  for (const header of ["nvidia/cu13/include/cublas_v2.h", "nvidia/cudnn/include/cudnn.h"]) {
    if (!existsSync(join(WHEELS, header))) {
      return `${join(WHEELS, header)} is missing (run scripts/setup_cuda.sh)`;
    }
  }
  return undefined;
}

/** The reason as a test-name suffix. */
export function skipNote(): string {
  const why = emulatorUnavailable();
  return why ? ` (skipped: ${why})` : "";
}

function run(cmd: string, args: string[], what: string): void {
  const out = new Deno.Command(cmd, { args, cwd: ROOT, stdout: "piped", stderr: "piped" })
    .outputSync();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`${what} failed (exit ${out.code}):\n${text}`);
  }
}

let built = false;
/** Runs `emulator/build.sh` (incremental; serialised with flock against parallel test files). */
export function ensureBuilt(): void {
  if (built) return;
  mkdirSync(join(ROOT, "build", "emulator"), { recursive: true });
  run(
    "flock",
    [join(ROOT, "build", "emulator", ".build.lock"), "bash", "emulator/build.sh"],
    "emulator/build.sh",
  );
  built = true;
}

/**
 * What nvcc makes of a test kernel source (relative to the repository root) with `flags` (e.g.
 * `-fatbin` and -gencode options), cached in build/emulator/test_fatbins as NAME`tag` and rebuilt
 * when the source is newer.
 */
export function nvccOutput(source: string, flags: string[], tag: string): Uint8Array {
  const src = join(ROOT, source);
  const out = join(FATBIN_DIR, source.replaceAll("/", "_").replace(/\.cu$/, "") + tag);
  if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(dirname(out), { recursive: true });
    const tmp = `${out}.${crypto.randomUUID()}.tmp`; // test files run in parallel in one process
    run("nvcc", [...flags, "-o", tmp, src], `nvcc ${flags.join(" ")} ${source}`);
    Deno.renameSync(tmp, out);
  }
  return Deno.readFileSync(out);
}

/** The fatbin of a test kernel source: sm_90 SASS + compute_90 PTX, as the project builds them. */
export function fatbin(source: string): Uint8Array {
  return nvccOutput(source, [
    "-fatbin",
    "-gencode",
    "arch=compute_90,code=sm_90",
    "-gencode",
    "arch=compute_90,code=compute_90",
  ], ".fatbin");
}

/** The stand-in driver's functions these tests call. */
export const DRIVER_SYMBOLS = {
  cuInit: { parameters: ["u32"], result: "i32" },
  cuDriverGetVersion: { parameters: ["buffer"], result: "i32" },
  cuDeviceGetCount: { parameters: ["buffer"], result: "i32" },
  cuDeviceGet: { parameters: ["buffer", "i32"], result: "i32" },
  cuDeviceGetName: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  cuDeviceGetAttribute: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  cuDeviceTotalMem_v2: { parameters: ["buffer", "i32"], result: "i32" },
  cuDevicePrimaryCtxRetain: { parameters: ["buffer", "i32"], result: "i32" },
  cuCtxSetCurrent: { parameters: ["pointer"], result: "i32" },
  cuCtxSynchronize: { parameters: [], result: "i32" },
  cuStreamCreate: { parameters: ["buffer", "u32"], result: "i32" },
  cuStreamDestroy_v2: { parameters: ["pointer"], result: "i32" },
  cuStreamSynchronize: { parameters: ["pointer"], result: "i32" },
  cuStreamQuery: { parameters: ["pointer"], result: "i32" },
  cuStreamWaitEvent: { parameters: ["pointer", "pointer", "u32"], result: "i32" },
  cuEventCreate: { parameters: ["buffer", "u32"], result: "i32" },
  cuEventRecord: { parameters: ["pointer", "pointer"], result: "i32" },
  cuEventQuery: { parameters: ["pointer"], result: "i32" },
  cuEventSynchronize: { parameters: ["pointer"], result: "i32" },
  cuEventElapsedTime_v2: { parameters: ["buffer", "pointer", "pointer"], result: "i32" },
  cuEventDestroy_v2: { parameters: ["pointer"], result: "i32" },
  cuMemAlloc_v2: { parameters: ["buffer", "usize"], result: "i32" },
  cuMemFree_v2: { parameters: ["u64"], result: "i32" },
  cuMemAllocAsync: { parameters: ["buffer", "usize", "pointer"], result: "i32" },
  cuMemFreeAsync: { parameters: ["u64", "pointer"], result: "i32" },
  cuMemGetInfo_v2: { parameters: ["buffer", "buffer"], result: "i32" },
  cuMemHostAlloc: { parameters: ["buffer", "usize", "u32"], result: "i32" },
  cuMemFreeHost: { parameters: ["pointer"], result: "i32" },
  cuMemcpyHtoD_v2: { parameters: ["u64", "buffer", "usize"], result: "i32" },
  cuMemcpyDtoH_v2: { parameters: ["buffer", "u64", "usize"], result: "i32" },
  cuMemcpyHtoDAsync_v2: { parameters: ["u64", "pointer", "usize", "pointer"], result: "i32" },
  cuMemcpyDtoHAsync_v2: { parameters: ["pointer", "u64", "usize", "pointer"], result: "i32" },
  cuMemcpyDtoDAsync_v2: { parameters: ["u64", "u64", "usize", "pointer"], result: "i32" },
  cuMemsetD32Async: { parameters: ["u64", "u32", "usize", "pointer"], result: "i32" },
  cuMemsetD8Async: { parameters: ["u64", "u8", "usize", "pointer"], result: "i32" },
  cuModuleLoadData: { parameters: ["buffer", "buffer"], result: "i32" },
  cuModuleUnload: { parameters: ["pointer"], result: "i32" },
  cuModuleGetFunction: { parameters: ["buffer", "pointer", "buffer"], result: "i32" },
  cuFuncSetAttribute: { parameters: ["pointer", "i32", "i32"], result: "i32" },
  cuLaunchKernel: {
    parameters: [
      "pointer",
      "u32",
      "u32",
      "u32",
      "u32",
      "u32",
      "u32",
      "u32",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  cuStreamBeginCapture_v2: { parameters: ["pointer", "i32"], result: "i32" },
  cuStreamEndCapture: { parameters: ["pointer", "buffer"], result: "i32" },
  cuStreamIsCapturing: { parameters: ["pointer", "buffer"], result: "i32" },
  cuGraphGetNodes: { parameters: ["pointer", "pointer", "buffer"], result: "i32" },
  cuGraphInstantiateWithFlags: { parameters: ["buffer", "pointer", "u64"], result: "i32" },
  cuGraphLaunch: { parameters: ["pointer", "pointer"], result: "i32" },
  cuGraphExecDestroy: { parameters: ["pointer"], result: "i32" },
  cuGraphDestroy: { parameters: ["pointer"], result: "i32" },
  cuGetErrorName: { parameters: ["i32", "buffer"], result: "i32" },
  cuGetErrorString: { parameters: ["i32", "buffer"], result: "i32" },
  ressl_emu_last_error: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** CUresult values the tests look for. */
export const CU = {
  SUCCESS: 0,
  INVALID_VALUE: 1,
  OUT_OF_MEMORY: 2,
  NOT_INITIALIZED: 3,
  NO_DEVICE: 100,
  INVALID_IMAGE: 200,
  NO_BINARY_FOR_GPU: 209,
  INVALID_PTX: 218,
  INVALID_HANDLE: 400,
  ILLEGAL_STATE: 401,
  NOT_FOUND: 500,
  NOT_READY: 600,
  ILLEGAL_ADDRESS: 700,
  LAUNCH_OUT_OF_RESOURCES: 701,
  ILLEGAL_INSTRUCTION: 715,
  LAUNCH_FAILED: 719,
  NOT_SUPPORTED: 801,
  STREAM_CAPTURE_UNSUPPORTED: 900,
  STREAM_CAPTURE_INVALIDATED: 901,
} as const;

export type DriverSymbols = Deno.DynamicLibrary<typeof DRIVER_SYMBOLS>["symbols"];

/** A device pointer plus the handles a test uses. */
export type Ptr = Deno.PointerValue;

/** The stand-in driver, initialised, with the primary context current on this thread. */
export interface Emu {
  readonly s: DriverSymbols;
  /** Throws `what: NAME (code): message` unless `r` is CUDA_SUCCESS. */
  ok(r: number, what: string): void;
  /** The error name of a code ("CUDA_ERROR_NOT_FOUND"). */
  name(r: number): string;
  /** The emulator's message for its latest failure. */
  lastError(): string;
  alloc(bytes: number): bigint;
  upload(data: ArrayBufferView): bigint;
  download<T extends ArrayBufferView>(src: bigint, out: T): T;
  stream(flags?: number): Ptr;
  event(flags?: number): Ptr;
  module(image: Uint8Array): Ptr;
  fn(mod: Ptr, name: string): Ptr;
  /** Launches with kernelParams built from `args` (see `params`). */
  launch(f: Ptr, grid: number[], block: number[], args: Arg[], stream?: Ptr, shared?: number): void;
  close(): void;
}

/** A kernel argument: a device pointer or a number of the given C type. */
export type Arg =
  | { ptr: bigint }
  | { f32: number }
  | { f64: number }
  | { i32: number }
  | { i16: number }
  | { i8: number }
  | { i64: bigint };

/** Bytes (natural alignment = size) of each argument kind. */
export function argSize(a: Arg): number {
  if ("ptr" in a || "f64" in a || "i64" in a) return 8;
  if ("i16" in a) return 2;
  if ("i8" in a) return 1;
  return 4;
}

/** Writes one argument's bytes at `at`. */
export function writeArg(view: DataView, at: number, a: Arg): void {
  if ("ptr" in a) view.setBigUint64(at, a.ptr, true);
  else if ("i64" in a) view.setBigInt64(at, a.i64, true);
  else if ("f64" in a) view.setFloat64(at, a.f64, true);
  else if ("f32" in a) view.setFloat32(at, a.f32, true);
  else if ("i32" in a) view.setInt32(at, a.i32, true);
  else if ("i16" in a) view.setInt16(at, a.i16, true);
  else view.setInt8(at, a.i8);
}

/** kernelParams: one 8-byte slot per argument and the array of their addresses. */
export function params(args: Arg[]): { slots: Uint8Array; pointers: BigUint64Array } {
  const slots = new Uint8Array(8 * Math.max(args.length, 1));
  const view = new DataView(slots.buffer);
  args.forEach((a, i) => writeArg(view, 8 * i, a));
  const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(slots)));
  const pointers = new BigUint64Array(args.map((_, i) => base + BigInt(8 * i)));
  return { slots, pointers };
}

const decoder = new TextDecoder();

/**
 * Opens the stand-in driver with device 0's primary context current, building the emulator first
 * unless `build` is false (child processes of a test that already built it).
 */
export function openEmu(build = true): Emu {
  if (build) ensureBuilt();
  const lib = Deno.dlopen(join(LIB_DIR, "libcuda.so.1"), DRIVER_SYMBOLS);
  const s = lib.symbols;
  const out = new BigUint64Array(1);
  const handle = () => Deno.UnsafePointer.create(out[0]);
  const allocations: bigint[] = [];
  const keep: unknown[] = [];
  const name = (r: number) => {
    const p = new BigUint64Array(1);
    if (s.cuGetErrorName(r, p) !== 0) return `unknown CUresult ${r}`;
    return Deno.UnsafePointerView.getCString(Deno.UnsafePointer.create(p[0])!);
  };
  const lastError = () => Deno.UnsafePointerView.getCString(s.ressl_emu_last_error()!);
  const ok = (r: number, what: string) => {
    if (r !== 0) throw new Error(`${what}: ${name(r)} (${r}): ${lastError()}`);
  };
  ok(s.cuInit(0), "cuInit");
  const dev = new Int32Array(1);
  ok(s.cuDeviceGet(dev, 0), "cuDeviceGet");
  ok(s.cuDevicePrimaryCtxRetain(out, dev[0]), "cuDevicePrimaryCtxRetain");
  ok(s.cuCtxSetCurrent(handle()), "cuCtxSetCurrent");
  const emu: Emu = {
    s,
    ok,
    name,
    lastError,
    alloc(bytes) {
      ok(s.cuMemAlloc_v2(out, BigInt(bytes)), `cuMemAlloc_v2(${bytes})`);
      allocations.push(out[0]);
      return out[0];
    },
    upload(data) {
      const p = emu.alloc(data.byteLength);
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      ok(s.cuMemcpyHtoD_v2(p, bytes, BigInt(data.byteLength)), "cuMemcpyHtoD_v2");
      return p;
    },
    download(src, dst) {
      const bytes = new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength);
      ok(s.cuMemcpyDtoH_v2(bytes, src, BigInt(dst.byteLength)), "cuMemcpyDtoH_v2");
      return dst;
    },
    stream(flags = 0) {
      ok(s.cuStreamCreate(out, flags), "cuStreamCreate");
      return handle();
    },
    event(flags = 0) {
      ok(s.cuEventCreate(out, flags), "cuEventCreate");
      return handle();
    },
    module(image) {
      ok(s.cuModuleLoadData(out, image), "cuModuleLoadData");
      return handle();
    },
    fn(mod, kernel) {
      ok(s.cuModuleGetFunction(out, mod, new TextEncoder().encode(kernel + "\0")), kernel);
      return handle();
    },
    launch(f, grid, block, args, stream = null, shared = 0) {
      const p = params(args);
      keep.push(p);
      const [gx, gy = 1, gz = 1] = grid;
      const [bx, by = 1, bz = 1] = block;
      ok(
        s.cuLaunchKernel(
          f,
          gx,
          gy,
          gz,
          bx,
          by,
          bz,
          shared,
          stream,
          Deno.UnsafePointer.of(p.pointers),
          null,
        ),
        "cuLaunchKernel",
      );
    },
    close() {
      s.cuCtxSynchronize();
      for (const p of allocations) s.cuMemFree_v2(p);
      lib.close();
    },
  };
  return emu;
}

/**
 * Runs one case of isolated.ts in its own Deno process (its own emulated device: no other test
 * file can synchronise its streams or share its sticky errors), with `env` added to the
 * environment; returns what the case returned, throws its failure.
 */
export async function runIsolated(
  name: string,
  env: Record<string, string> = {},
): Promise<unknown> {
  ensureBuilt();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", join(ROOT, "tests", "emulator", "isolated.ts"), name],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = decoder.decode(out.stdout);
  const line = text.trim().split("\n").at(-1) ?? "";
  let result: { ok?: boolean; error?: string; value?: unknown };
  try {
    result = JSON.parse(line);
  } catch {
    throw new Error(
      `isolated case ${name} printed no result (exit ${out.code}):\n${text}\n${
        decoder.decode(out.stderr)
      }`,
    );
  }
  if (!result.ok) {
    throw new Error(`isolated case ${name}: ${result.error}\n${decoder.decode(out.stderr)}`);
  }
  return result.value;
}
