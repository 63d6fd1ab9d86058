/**
 * The MPI communicator: OpenMPI or MPICH through FFI (`ffi/mpi/`), every collective nonblocking
 * (`MPI_Iallreduce`, `MPI_Iallgather`, `MPI_Ibcast`, `MPI_Ibarrier`) and polled with `MPI_Test`
 * against a deadline; past it the job is aborted with a message naming this rank and the
 * collective. Errors come back as codes (`MPI_ERRORS_RETURN`) and are thrown as `CommError`s
 * with `MPI_Error_string`'s text. MPI is initialised `MPI_THREAD_FUNNELED`: every call is made
 * on the main thread (no `nonblocking` FFI call, no worker).
 *
 * @module
 */

import {
  MPI_MAX_COUNT,
  MPI_REQUEST_BYTES,
  MPI_STATUS_BYTES,
  MPI_THREAD,
} from "../../ffi/mpi/constants.ts";
import { loadMpi, type MpiBuffer, type MpiLibrary } from "../../ffi/mpi/load.ts";
import { abortStatus, arrayDtype, type Comm, type CommArray, CommError } from "./comm.ts";
import type { CommRequest, ReduceArray, ReduceOp } from "./comm.ts";
import type { LaunchInfo } from "./launch.ts";
import { chunkRanges, pollUntil, sleepSync } from "./poll.ts";
import { checkBroadcast, checkGather, checkReduce, divideBySize } from "./validate.ts";

/** Options of {@link createMpiComm}. */
export interface MpiCommOptions {
  /** What the launcher said; rank and size are checked against MPI's. */
  launch: LaunchInfo;
  /** MPI library file or soname; default: the soname of `launch.mpi` (OpenMPI where unknown). */
  library?: string;
  /** Seconds a collective may wait before the job is aborted. */
  timeoutS: number;
  /** Largest element count per MPI call (default 2^31-1); bigger arrays go in pieces. */
  maxCount?: number;
  /** Milliseconds to poll without pausing before sleeping between polls (default 10). */
  spinMs?: number;
  /** End the job (naming this rank) on an uncaught error or unhandled rejection (default true). */
  abortOnUncaughtError?: boolean;
  /**
   * With OpenMPI, make `MPI_Iallreduce` use the ring algorithm (default true): libnbc otherwise
   * picks a binomial reduce + broadcast for every in-place call and for fewer than 4 ranks, which
   * moves twice the data through one rank (40 MB: ~2.5× slower here). Sets
   * `OMPI_MCA_coll_libnbc_iallreduce_algorithm=1` before `MPI_Init` unless it is already set
   * (set it to 0 to get libnbc's own choice back).
   */
  ompiRingAllreduce?: boolean;
  /**
   * Print one line per rank at start (`rank 1 of 2 (mpich, local 1 of 2): pid 4242 on node7`)
   * so that a launcher message naming only a PID (Hydra) can be traced to a rank (default: when
   * size > 1).
   */
  announce?: boolean;
}

/** OpenMPI's MCA variable choosing libnbc's `MPI_Iallreduce` algorithm (1 = ring). */
export const OMPI_IALLREDUCE_ALGORITHM_ENV = "OMPI_MCA_coll_libnbc_iallreduce_algorithm";

/** Milliseconds `abort` waits between printing its message and `MPI_Abort`. */
const ABORT_FLUSH_MS = 500;

/** Started MPI requests of one collective, with what to do once all complete. */
interface Pending {
  readonly what: string;
  readonly reqs: Uint8Array[];
  readonly done: boolean[];
  /** Arrays MPI reads or writes until completion (kept reachable here). */
  readonly keep: unknown[];
  finish?: () => void;
  complete: boolean;
}

function describeError(e: unknown): string {
  if (e instanceof Error) return e.stack ?? `${e.name}: ${e.message}`;
  return String(e);
}

/**
 * Initialises MPI and returns the world communicator. Throws when the library cannot be loaded
 * or MPI cannot be initialised; aborts the job when MPI's rank/size disagree with the launcher's
 * (the loaded library does not belong to the launcher).
 */
export function createMpiComm(opts: MpiCommOptions): Comm {
  const { launch } = opts;
  if (!(opts.timeoutS > 0)) {
    throw new RangeError(`Cannot use a collective timeout of ${opts.timeoutS} s: use a number > 0`);
  }
  const maxCount = opts.maxCount ?? MPI_MAX_COUNT;
  if (!Number.isInteger(maxCount) || maxCount < 1 || maxCount > MPI_MAX_COUNT) {
    throw new RangeError(`Cannot use maxCount ${maxCount}: use an integer in 1..${MPI_MAX_COUNT}`);
  }
  const lib: MpiLibrary = loadMpi({ path: opts.library, flavor: launch.mpi });
  const who = `${lib.flavor} '${lib.path}' (${lib.version})`;
  if (lib.finalized()) {
    throw new CommError(
      `Cannot initialise MPI (${who}) again: it was finalised in this process (a communicator ` +
        `was disposed); MPI allows one initialisation per process`,
    );
  }
  if (lib.initialized()) {
    throw new CommError(
      `Cannot initialise MPI (${who}): it is already initialised in this process; create one ` +
        `communicator per process and pass it where it is needed`,
    );
  }
  if (lib.flavor === "openmpi" && (opts.ompiRingAllreduce ?? true)) {
    try {
      // OpenMPI reads its MCA variables from the environment during MPI_Init.
      if (Deno.env.get(OMPI_IALLREDUCE_ALGORITHM_ENV) === undefined) {
        Deno.env.set(OMPI_IALLREDUCE_ALGORITHM_ENV, "1");
      }
    } catch { /* no --allow-env: libnbc's own choice */ }
  }
  const provided = new Int32Array(1);
  let rc = lib.initThread(MPI_THREAD.funneled, provided);
  if (rc !== 0) {
    // No MPI_Error_string here: OpenMPI aborts the process when it is called before MPI_Init.
    throw new CommError(`Cannot initialise MPI (${who}): MPI_Init_thread returned error ${rc}`);
  }
  rc = lib.setErrorsReturn();
  const out = new Int32Array(1);
  const rcRank = lib.worldRank(out);
  const rank = out[0];
  const rcSize = lib.worldSize(out);
  const size = out[0];
  const label = `rank ${rank} of ${size}`;
  const abortNow = (code: number, message: string, as = label): never => {
    console.error(`${as} (${lib.flavor}): ${message}`);
    // Let the launcher forward the message: Hydra drops a rank's unread output when it aborts.
    sleepSync(ABORT_FLUSH_MS);
    lib.abort(abortStatus(code));
    Deno.exit(abortStatus(code)); // MPI_Abort returned (it should not)
  };
  if (rc !== 0 || rcRank !== 0 || rcSize !== 0) {
    abortNow(
      1,
      `Cannot set up MPI_COMM_WORLD (${who}): ${lib.errorString(rc || rcRank || rcSize)}`,
    );
  }
  if (launch.launcher !== "none" && (launch.rank !== rank || launch.size !== size)) {
    abortNow(
      1,
      `The launcher says rank ${launch.rank} of ${launch.size} (${launch.source}), but ${who} ` +
        `initialised as rank ${rank} of ${size}: the MPI library does not belong to the ` +
        `launcher (OpenMPI's mpirun needs libmpi.so.40, mpirun.mpich needs libmpich.so.12; ` +
        `check RESSL_MPI_LIB)`,
      `rank ${launch.rank} of ${launch.size} by the launcher, ${label} by MPI`,
    );
  }
  const localRank = launch.launcher === "none" ? 0 : launch.localRank;
  const localSize = launch.launcher === "none" ? 1 : launch.localSize;
  if (opts.announce ?? size > 1) {
    let host = "this host";
    try {
      host = Deno.hostname();
    } catch { /* no --allow-sys: leave the host out */ }
    console.error(
      `${label} (${lib.flavor}, local ${localRank} of ${localSize}): pid ${Deno.pid} on ${host}`,
    );
  }

  const poll = { timeoutMs: opts.timeoutS * 1000, spinMs: opts.spinMs ?? 10, sleepMs: 0.05 };
  const flag = new Int32Array(1);
  const status = new Uint8Array(MPI_STATUS_BYTES);
  const outstanding = new Set<Pending>();
  let seq = 0;
  let disposed = false;

  const fail = (what: string, code: number): never => {
    throw new CommError(
      `${label} (${lib.flavor}): ${what} failed: ${lib.errorString(code)} (MPI error ${code})`,
    );
  };
  const begin = (what: string): Pending => {
    if (disposed) throw new CommError(`${label}: ${what} after dispose()`);
    seq++;
    return { what: `${what} (collective #${seq})`, reqs: [], done: [], keep: [], complete: false };
  };
  /** Starts one MPI request of `p`; `start` fills the request slot and returns the code. */
  const add = (p: Pending, start: (req: Uint8Array) => number, ...keep: unknown[]) => {
    const req = new Uint8Array(MPI_REQUEST_BYTES);
    const code = start(req);
    if (code !== 0) fail(p.what, code);
    p.reqs.push(req);
    p.done.push(false);
    p.keep.push(...keep);
  };
  const testPending = (p: Pending): boolean => {
    if (p.complete) return true;
    let all = true;
    for (let i = 0; i < p.reqs.length; i++) {
      if (p.done[i]) continue;
      const code = lib.test(p.reqs[i], flag, status);
      if (code !== 0) fail(p.what, code);
      if (flag[0] !== 0) p.done[i] = true;
      else all = false;
    }
    if (!all) return false;
    p.complete = true;
    outstanding.delete(p);
    p.finish?.();
    return true;
  };
  const waitPending = (p: Pending): void => {
    if (!pollUntil(() => testPending(p), poll)) {
      abortNow(
        1,
        `${p.what} did not complete within ${opts.timeoutS} s (RESSL_COMM_TIMEOUT_S): another ` +
          `rank died, hangs, or called a different collective; ending the job`,
      );
    }
  };
  /** `.buffer` moves a small on-heap typed array off the V8 heap, so MPI's pointer stays valid. */
  const pin = (a: CommArray): MpiBuffer => {
    void a.buffer;
    return a;
  };

  const startAllreduce = (buf: ReduceArray, op: ReduceOp): Pending => {
    const dtype = checkReduce({ rank, size }, buf, op);
    const p = begin(`allreduce(${op}, ${buf.length} × ${dtype})`);
    pin(buf);
    for (const [off, n] of chunkRanges(buf.length, maxCount)) {
      const piece = buf.subarray(off, off + n);
      const mpiOp = op === "avg" ? "sum" : op;
      add(p, (req) => lib.iallreduceInPlace(piece, n, dtype, mpiOp, req), piece);
    }
    if (op === "avg") p.finish = () => divideBySize(buf, size);
    outstanding.add(p);
    return p;
  };

  const abortOnUncaught = opts.abortOnUncaughtError ?? true;
  const onError = (e: ErrorEvent) => {
    abortNow(1, `uncaught error, ending the job: ${describeError(e.error ?? e.message)}`);
  };
  const onRejection = (e: PromiseRejectionEvent) => {
    abortNow(1, `unhandled promise rejection, ending the job: ${describeError(e.reason)}`);
  };
  if (abortOnUncaught) {
    globalThis.addEventListener("error", onError);
    globalThis.addEventListener("unhandledrejection", onRejection);
  }

  const comm: Comm = {
    kind: "mpi",
    rank,
    size,
    localRank,
    localSize,
    launch,
    description: `mpi ${who} ${label}`,
    allreduce(buf: ReduceArray, op: ReduceOp = "sum"): void {
      waitPending(startAllreduce(buf, op));
    },
    allreduceStart(buf: ReduceArray, op: ReduceOp = "sum"): CommRequest {
      const p = startAllreduce(buf, op);
      return { test: () => testPending(p), wait: () => waitPending(p) };
    },
    allgather<T extends CommArray>(send: T, result?: T): T {
      const plan = checkGather({ rank, size }, send, result);
      const dtype = arrayDtype(send);
      const n = send.length;
      const p = begin(`allgather(${n} × ${dtype} per rank)`);
      const res = plan.result;
      pin(send);
      pin(res);
      const ctor = send.constructor as new (length: number) => T;
      if (n > maxCount) {
        // Pieces of each rank's block land in a temporary, then in their places in the result.
        const copies: Array<() => void> = [];
        for (const [off, c] of chunkRanges(n, maxCount)) {
          const piece = send.subarray(off, off + c);
          const tmp = new ctor(c * size);
          add(p, (req) => lib.iallgather(piece, c, dtype, tmp, req), piece, tmp);
          copies.push(() => {
            for (let r = 0; r < size; r++) res.set(tmp.subarray(r * c, (r + 1) * c), r * n + off);
          });
        }
        p.finish = () => copies.forEach((f) => f());
      } else if (plan.inPlace) {
        add(p, (req) => lib.iallgatherInPlace(res, n, dtype, req), res);
      } else if (n > 0) {
        add(p, (req) => lib.iallgather(send, n, dtype, res, req), send, res);
      }
      waitPending(p);
      return res;
    },
    broadcast(buf: CommArray, root = 0): void {
      checkBroadcast({ rank, size }, buf, root);
      const dtype = arrayDtype(buf);
      const p = begin(`broadcast(${buf.length} × ${dtype} from rank ${root})`);
      pin(buf);
      for (const [off, n] of chunkRanges(buf.length, maxCount)) {
        const piece = buf.subarray(off, off + n);
        add(p, (req) => lib.ibcast(piece, n, dtype, root, req), piece);
      }
      waitPending(p);
    },
    barrier(): void {
      const p = begin("barrier");
      add(p, (req) => lib.ibarrier(req));
      waitPending(p);
    },
    abort: abortNow,
    dispose(): void {
      if (disposed) return;
      for (const p of [...outstanding]) waitPending(p);
      const p = begin("dispose (barrier before MPI_Finalize)");
      add(p, (req) => lib.ibarrier(req));
      waitPending(p);
      disposed = true;
      if (abortOnUncaught) {
        globalThis.removeEventListener("error", onError);
        globalThis.removeEventListener("unhandledrejection", onRejection);
      }
      // The library stays loaded: OpenMPI's exit handlers may still run its code.
      const code = lib.finalize();
      if (code !== 0) fail("MPI_Finalize", code);
    },
    [Symbol.dispose](): void {
      comm.dispose();
    },
  };
  return comm;
}
