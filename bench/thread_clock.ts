/**
 * CPU time of the calling thread (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)` from libc through FFI),
 * in milliseconds. With the cpu backend on one OpenMP thread every oneDNN primitive runs on the
 * calling (main) thread, so this clock measures a kernel's work without the time the thread spent
 * preempted by other processes: a load-immune profile on the shared machine.
 *
 * @module
 */

/** `CLOCK_THREAD_CPUTIME_ID` on Linux. */
const CLOCK_THREAD_CPUTIME_ID = 3;

let libc:
  | Deno.DynamicLibrary<{ clock_gettime: { parameters: ["i32", "buffer"]; result: "i32" } }>
  | undefined;
const TS = new BigInt64Array(2);

/** Milliseconds of CPU time the calling thread has used. */
export function threadCpuMs(): number {
  libc ??= Deno.dlopen("libc.so.6", {
    clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  });
  if (libc.symbols.clock_gettime(CLOCK_THREAD_CPUTIME_ID, TS) !== 0) {
    throw new Error("Cannot read the thread CPU clock: clock_gettime failed");
  }
  return Number(TS[0]) * 1e3 + Number(TS[1]) / 1e6;
}
