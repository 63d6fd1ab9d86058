/**
 * Streams, events (ordering and timing) and graph capture through the driver. Handles are pointer
 * objects owned by the caller, destroyed explicitly.
 *
 * @module
 */

import type { CudaDriver } from "./driver.ts";
import { CU_FLAGS } from "./driver_symbols.ts";
import type { CudaStream } from "./memory.ts";

function handle(out: BigUint64Array, what: string): Deno.PointerObject {
  const p = Deno.UnsafePointer.create(out[0]);
  if (p === null) throw new Error(`${what} returned a null handle`);
  return p;
}

/** `cuStreamCreate` (default flags: non-blocking, so it never syncs with the legacy stream). */
export function createStream(drv: CudaDriver, flags: number = CU_FLAGS.STREAM_NON_BLOCKING) {
  const out = new BigUint64Array(1);
  drv.check(drv.symbols.cuStreamCreate(out, flags), "create a CUDA stream");
  return handle(out, "cuStreamCreate");
}

/** `cuStreamDestroy_v2`. */
export function destroyStream(drv: CudaDriver, stream: Deno.PointerObject): void {
  drv.check(drv.symbols.cuStreamDestroy_v2(stream), "destroy a CUDA stream");
}

/** `cuStreamSynchronize`: waits for all work queued on `stream`. */
export function syncStream(drv: CudaDriver, stream: CudaStream): void {
  drv.check(drv.symbols.cuStreamSynchronize(stream), "synchronise a CUDA stream");
}

/** `cuStreamWaitEvent`: work queued on `stream` later waits for `event`. */
export function streamWaitEvent(
  drv: CudaDriver,
  stream: CudaStream,
  event: Deno.PointerObject,
): void {
  drv.check(drv.symbols.cuStreamWaitEvent(stream, event, 0), "make a stream wait for an event");
}

/** `cuEventCreate` (flags: `CU_FLAGS.EVENT_*`; the default records timing). */
export function createEvent(drv: CudaDriver, flags: number = CU_FLAGS.EVENT_DEFAULT) {
  const out = new BigUint64Array(1);
  drv.check(drv.symbols.cuEventCreate(out, flags), "create a CUDA event");
  return handle(out, "cuEventCreate");
}

/** `cuEventRecord` on `stream`. */
export function recordEvent(drv: CudaDriver, event: Deno.PointerObject, stream: CudaStream): void {
  drv.check(drv.symbols.cuEventRecord(event, stream), "record a CUDA event");
}

/** `cuEventSynchronize`. */
export function syncEvent(drv: CudaDriver, event: Deno.PointerObject): void {
  drv.check(drv.symbols.cuEventSynchronize(event), "wait for a CUDA event");
}

/** `cuEventElapsedTime_v2`: milliseconds between two recorded (and completed) events. */
export function elapsedMs(
  drv: CudaDriver,
  start: Deno.PointerObject,
  end: Deno.PointerObject,
): number {
  const ms = new Float32Array(1);
  drv.check(drv.symbols.cuEventElapsedTime_v2(ms, start, end), "read the time between events");
  return ms[0];
}

/** `cuEventDestroy_v2`. */
export function destroyEvent(drv: CudaDriver, event: Deno.PointerObject): void {
  drv.check(drv.symbols.cuEventDestroy_v2(event), "destroy a CUDA event");
}

/** An instantiated CUDA graph, replayable on any stream. */
export interface CudaGraph {
  /** The captured graph (`CUgraph`). */
  readonly graph: Deno.PointerObject;
  /** Its executable instance (`CUgraphExec`). */
  readonly exec: Deno.PointerObject;
  /** `cuGraphLaunch` on `stream`. */
  launch(stream: CudaStream): void;
  /** Destroys the instance and the graph. */
  destroy(): void;
}

/**
 * Captures the work `record` queues on `stream` (not the default stream) into a graph
 * (`cuStreamBeginCapture_v2` ... `cuStreamEndCapture`) and instantiates it
 * (`cuGraphInstantiateWithFlags`). If `record` throws, the capture is ended and discarded.
 */
export function captureGraph(
  drv: CudaDriver,
  stream: Deno.PointerObject,
  record: () => void,
  opts: { mode?: number; instantiateFlags?: number } = {},
): CudaGraph {
  const s = drv.symbols;
  const mode = opts.mode ?? CU_FLAGS.STREAM_CAPTURE_MODE_THREAD_LOCAL;
  drv.check(s.cuStreamBeginCapture_v2(stream, mode), "begin capturing a CUDA graph");
  const out = new BigUint64Array(1);
  try {
    record();
  } catch (e) {
    if (s.cuStreamEndCapture(stream, out) === 0 && out[0] !== 0n) {
      s.cuGraphDestroy(Deno.UnsafePointer.create(out[0]));
    }
    throw e;
  }
  drv.check(s.cuStreamEndCapture(stream, out), "end capturing a CUDA graph");
  const graph = handle(out, "cuStreamEndCapture");
  const execOut = new BigUint64Array(1);
  const st = s.cuGraphInstantiateWithFlags(execOut, graph, BigInt(opts.instantiateFlags ?? 0));
  if (st !== 0) {
    s.cuGraphDestroy(graph);
    drv.check(st, "instantiate a captured CUDA graph");
  }
  const exec = handle(execOut, "cuGraphInstantiateWithFlags");
  let destroyed = false;
  return {
    graph,
    exec,
    launch(on: CudaStream): void {
      if (destroyed) throw new Error("Cannot launch a CUDA graph after destroy()");
      drv.check(s.cuGraphLaunch(exec, on), "launch a CUDA graph");
    },
    destroy(): void {
      if (destroyed) return;
      destroyed = true;
      drv.check(s.cuGraphExecDestroy(exec), "destroy a CUDA graph instance");
      drv.check(s.cuGraphDestroy(graph), "destroy a CUDA graph");
    },
  };
}

/** `cuStreamIsCapturing`: `CU_FLAGS.STREAM_CAPTURE_STATUS_*`. */
export function captureStatus(drv: CudaDriver, stream: CudaStream): number {
  const out = new Int32Array(1);
  drv.check(drv.symbols.cuStreamIsCapturing(stream, out), "query a stream's capture status");
  return out[0];
}
