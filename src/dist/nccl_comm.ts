/**
 * The `nccl` device communicator: collectives on the cuda backend's device storages through NCCL,
 * enqueued on the backend's own stream (so they are ordered with its kernels and need no host
 * copy or synchronisation of their own). The 128-byte `ncclUniqueId` is made by rank 0 and
 * broadcast over the MPI `Comm` (or, with `NCCL_COMM_ID=host:port` on every rank, NCCL bootstraps
 * itself there).
 *
 * No hangs: NCCL collectives never time out on their own, and a rank that hangs leaves the others'
 * kernels spinning. `wait` (the end of every gradient average, i.e. once per step) polls the
 * stream (`cuStreamQuery`) and `ncclCommGetAsyncError` until the stream is done, and past the
 * deadline (`RESSL_COMM_TIMEOUT_S`) or on an asynchronous error calls `ncclCommAbort` and ends the
 * job through the host communicator, naming this rank. A rank that dies is reported by the
 * launcher (mpirun ends the job), as on CPUs.
 *
 * On the emulated device (`RESSL_CUDA_EMULATION=1`) the stand-in `libnccl.so.2`
 * (`emulator/nccl/`) runs the same calls between processes over TCP.
 *
 * @module
 */

import type { Backend, Storage } from "../backend/backend.ts";
import type { CudaBackend } from "../backend/cuda/backend.ts";
import { cu } from "../backend/cuda/storage.ts";
import { openCudaLibrary } from "../../ffi/cuda/discovery.ts";
import { cString } from "../../ffi/cuda/errors.ts";
import {
  loadNccl,
  NCCL_DATA,
  NCCL_OP,
  NCCL_UNIQUE_ID_BYTES,
  type NcclLibrary,
} from "../../ffi/cuda/nccl.ts";
import { type Comm, CommError, type CommRequest, rankLabel, type ReduceOp } from "./comm.ts";
import type { DeviceComm } from "./device_comm.ts";

/** `CUDA_ERROR_NOT_READY`: work still queued on a stream. */
const CUDA_ERROR_NOT_READY = 600;

const DATA = { f32: NCCL_DATA.float32, i32: NCCL_DATA.int32, bf16: NCCL_DATA.bfloat16, u8: 1 };

/** Options of {@link createNcclComm}. */
export interface NcclCommOptions {
  /** Seconds a wait may take before the job is ended (default: the host communicator's). */
  timeoutS?: number;
  /** Environment for library discovery (default: the process's; emulation is inherited). */
  env?: Readonly<Record<string, string | undefined>>;
}

/** True when `backend` is the cuda backend (the one NCCL can serve). */
export function isCudaBackend(backend: Backend): backend is CudaBackend {
  return backend.name === "cuda" && "rt" in backend;
}

/**
 * A NCCL communicator among the ranks of `comm` on the cuda `backend` (every rank calls it at the
 * same point). Throws `CudaUnavailableError` when NCCL cannot be loaded.
 */
export function createNcclComm(
  comm: Comm,
  backend: CudaBackend,
  opts: NcclCommOptions = {},
): DeviceComm {
  const rt = backend.rt;
  const env = opts.env ?? (rt.emulated ? { RESSL_CUDA_EMULATION: "1" } : undefined);
  const nccl: NcclLibrary = loadNccl({ env });
  const drv = openCudaLibrary("cuda", {
    cuStreamQuery: { parameters: ["pointer"], result: "i32" },
  }, { env });
  const timeoutS = opts.timeoutS ?? 300;
  const stream = rt.stream;
  const label = `${rankLabel(comm)} (nccl ${nccl.version})`;
  const id = new Uint8Array(NCCL_UNIQUE_ID_BYTES);
  if (comm.rank === 0) nccl.check(nccl.symbols.ncclGetUniqueId(id), "make the NCCL unique id");
  comm.broadcast(id, 0);
  const handle = new BigUint64Array(1);
  nccl.check(
    nccl.symbols.ncclCommInitRank(handle, comm.size, id, comm.rank),
    `join the NCCL communicator as ${rankLabel(comm)}`,
  );
  const ncclComm = Deno.UnsafePointer.create(handle[0]);
  let disposed = false;
  const asyncError = new Int32Array(1);

  const check = (status: number, what: string) => {
    try {
      nccl.check(status, what);
    } catch (e) {
      throw new CommError(`${label}: ${(e as Error).message}`);
    }
  };
  const fatal = (why: string): never => {
    nccl.symbols.ncclCommAbort(ncclComm);
    return comm.abort(1, `nccl: ${why}; ending the job`);
  };
  /** Polls the stream until its work (every collective queued so far) is done. */
  const waitStream = (what: string) => {
    const deadline = performance.now() + timeoutS * 1000;
    for (let spins = 0;; spins++) {
      check(nccl.symbols.ncclCommGetAsyncError(ncclComm, asyncError), "poll NCCL");
      if (asyncError[0] !== 0) {
        const text = cString(nccl.symbols.ncclGetErrorString(asyncError[0]));
        fatal(`${what} failed: ${text} (another rank died, or its connection broke)`);
      }
      const s = drv.lib.symbols.cuStreamQuery(stream);
      if (s === 0) return;
      if (s !== CUDA_ERROR_NOT_READY) {
        fatal(`${what}: the CUDA stream failed (CUresult ${s})`);
      }
      if (performance.now() > deadline) {
        fatal(
          `${what} did not complete within ${timeoutS} s (RESSL_COMM_TIMEOUT_S): another rank ` +
            `died, hangs, or called a different collective`,
        );
      }
      if (spins > 1000) {
        const until = performance.now() + 0.1;
        while (performance.now() < until) { /* a short pause between polls */ }
      }
    }
  };
  const own = (s: Storage, what: string) => {
    if (disposed) throw new CommError(`${label}: ${what} after dispose()`);
    if (s.backend !== backend) {
      throw new CommError(`${label}: ${what} got a storage of another backend`);
    }
    return cu(s);
  };
  const reduceOp = (op: ReduceOp) => NCCL_OP[op];

  const dc: DeviceComm = {
    kind: "nccl",
    comm,
    backend,
    allreduce(buf: Storage, op: ReduceOp = "sum"): void {
      dc.allreduceStart(buf, op);
    },
    allreduceStart(buf: Storage, op: ReduceOp = "sum"): CommRequest {
      const b = own(buf, "allreduce");
      if (b.dtype !== "f32" && b.dtype !== "i32") {
        throw new CommError(`${label}: cannot allreduce a ${b.dtype} storage`);
      }
      if (op === "avg" && b.dtype === "i32") {
        throw new CommError(`${label}: cannot average an i32 storage`);
      }
      check(
        nccl.symbols.ncclAllReduce(
          b.ptr,
          b.ptr,
          BigInt(b.length),
          DATA[b.dtype],
          reduceOp(op),
          ncclComm,
          stream,
        ),
        `allreduce(${op}, ${b.length} × ${b.dtype})`,
      );
      let done = false;
      return {
        test: () => done || drv.lib.symbols.cuStreamQuery(stream) === 0,
        wait: () => {
          if (!done) waitStream(`allreduce(${op}, ${b.length} × ${b.dtype})`);
          done = true;
        },
      };
    },
    allgather(send: Storage, result: Storage): void {
      const s = own(send, "allgather"), r = own(result, "allgather");
      if (s.dtype !== r.dtype || r.length !== s.length * comm.size) {
        throw new CommError(
          `${label}: allgather of ${s.length} × ${s.dtype} per rank needs a ${s.dtype} result ` +
            `of ${s.length * comm.size} elements, got ${r.length} × ${r.dtype}`,
        );
      }
      check(
        nccl.symbols.ncclAllGather(s.ptr, r.ptr, BigInt(s.length), DATA[s.dtype], ncclComm, stream),
        `allgather(${s.length} × ${s.dtype})`,
      );
    },
    broadcast(buf: Storage, root = 0): void {
      const b = own(buf, "broadcast");
      if (!Number.isInteger(root) || root < 0 || root >= comm.size) {
        throw new CommError(`${label}: broadcast root ${root} is not a rank below ${comm.size}`);
      }
      check(
        nccl.symbols.ncclBroadcast(
          b.ptr,
          b.ptr,
          BigInt(b.length),
          DATA[b.dtype],
          root,
          ncclComm,
          stream,
        ),
        `broadcast(${b.length} × ${b.dtype} from rank ${root})`,
      );
    },
    dispose(): void {
      if (disposed) return;
      disposed = true;
      waitStream("the last collectives");
      check(nccl.symbols.ncclCommDestroy(ncclComm), "destroy the NCCL communicator");
      nccl.close();
      drv.lib.close();
    },
  };
  return dc;
}
