/**
 * Collectives on backend storages (device memory), the contract the trainer's gradient
 * allreduce, key/view allgathers and SyncBN sums use. It is separate from `Comm` (host typed
 * arrays) so that a GPU communicator (NCCL) works on device pointers without host copies, while
 * `Comm` stays what every process has (rank, size, abort, host-side small messages such as the
 * NCCL unique id).
 *
 * `stagedDeviceComm` implements it over any `Comm` and any backend by `download` → host
 * collective → `upload`: the right choice for the CPU backends, where "device" memory is host
 * memory; a NCCL implementation replaces it on a GPU.
 *
 * @module
 */

import type { Backend, HostArray, Storage } from "../backend/backend.ts";
import { type Comm, CommError, type CommRequest, type ReduceArray, type ReduceOp } from "./comm.ts";

/** Collectives over backend storages. Same ordering and timeout rules as `Comm`. */
export interface DeviceComm {
  /** `staged` (host collectives on downloaded copies) or `nccl` (device buffers, GPU stream). */
  readonly kind: "staged" | "nccl";
  /** The host communicator of the same processes (rank, size, abort, host messages). */
  readonly comm: Comm;
  /** The backend whose storages the collectives take. */
  readonly backend: Backend;
  /** Reduces `buf` element-wise across ranks, in place (f32 or i32 storages). */
  allreduce(buf: Storage, op?: ReduceOp): void;
  /**
   * Starts an in-place allreduce of `buf` and returns at once (gradient buckets overlapping
   * backward); `buf` must not be read or written until the request's `wait` returns.
   */
  allreduceStart(buf: Storage, op?: ReduceOp): CommRequest;
  /** Writes every rank's `send` in rank order into `result` (`size × send.length` elements). */
  allgather(send: Storage, result: Storage): void;
  /** Copies rank `root`'s `buf` into every rank's `buf`. */
  broadcast(buf: Storage, root?: number): void;
  /** Releases what the communicator holds beyond `comm` (not `comm` itself). Idempotent. */
  dispose(): void;
}

const HOST_CTORS = {
  f32: Float32Array,
  i32: Int32Array,
  u8: Uint8Array,
  bf16: Uint16Array,
} as const;

function sameBackend(dc: { comm: Comm; backend: Backend }, s: Storage, what: string): void {
  if (s.backend !== dc.backend) {
    throw new CommError(
      `rank ${dc.comm.rank} of ${dc.comm.size}: ${what} got a storage of another backend`,
    );
  }
}

/** A `DeviceComm` that copies through host memory: download, host collective, upload. */
export function stagedDeviceComm(comm: Comm, backend: Backend): DeviceComm {
  const dc: DeviceComm = {
    kind: "staged",
    comm,
    backend,
    allreduce(buf: Storage, op: ReduceOp = "sum"): void {
      dc.allreduceStart(buf, op).wait();
    },
    allreduceStart(buf: Storage, op: ReduceOp = "sum"): CommRequest {
      sameBackend(dc, buf, "allreduce");
      if (buf.dtype !== "f32" && buf.dtype !== "i32") {
        throw new CommError(
          `rank ${comm.rank} of ${comm.size}: cannot allreduce a ${buf.dtype} storage: ` +
            `reduce f32 (or i32) storages`,
        );
      }
      const host = backend.download(buf) as ReduceArray & HostArray;
      const req = comm.allreduceStart(host, op);
      let done = false;
      return {
        test: () => req.test(),
        wait: () => {
          if (done) return;
          req.wait();
          backend.upload(buf, host);
          done = true;
        },
      };
    },
    allgather(send: Storage, result: Storage): void {
      sameBackend(dc, send, "allgather");
      sameBackend(dc, result, "allgather");
      if (send.dtype !== result.dtype || result.length !== send.length * comm.size) {
        throw new CommError(
          `rank ${comm.rank} of ${comm.size}: allgather of ${send.length} × ${send.dtype} per ` +
            `rank needs a ${send.dtype} result of ${send.length * comm.size} elements, got ` +
            `${result.length} × ${result.dtype}`,
        );
      }
      backend.upload(result, comm.allgather(backend.download(send)));
    },
    broadcast(buf: Storage, root = 0): void {
      sameBackend(dc, buf, "broadcast");
      const host = comm.rank === root
        ? backend.download(buf)
        : new HOST_CTORS[buf.dtype](buf.length);
      comm.broadcast(host, root);
      if (comm.rank !== root) backend.upload(buf, host);
    },
    dispose(): void {},
  };
  return dc;
}
