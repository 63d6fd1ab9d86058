/**
 * The one-process communicator: every collective is the identity (allgather copies, avg divides
 * by one), with the same argument checks as the MPI one. Loads no library.
 *
 * @module
 */

import { abortStatus, type Comm, type CommArray, CommError, type CommRequest } from "./comm.ts";
import type { ReduceArray, ReduceOp } from "./comm.ts";
import { type LaunchInfo, NO_LAUNCHER } from "./launch.ts";
import { checkBroadcast, checkGather, checkReduce } from "./validate.ts";

const DONE: CommRequest = Object.freeze({ test: () => true, wait: () => {} });

/**
 * A communicator of size 1. `launch` (default: no launcher) must describe a job of one process.
 */
export function createSingleComm(launch: LaunchInfo = NO_LAUNCHER): Comm {
  if (launch.size !== 1) {
    throw new CommError(
      `Cannot make a one-process communicator for a job of ${launch.size} processes ` +
        `(${launch.source}): use the mpi communicator`,
    );
  }
  let disposed = false;
  const alive = (what: string) => {
    if (disposed) throw new CommError(`rank 0 of 1: ${what} after dispose()`);
  };
  const comm: Comm = {
    kind: "single",
    rank: 0,
    size: 1,
    localRank: 0,
    localSize: 1,
    launch,
    description: "single (one process, no MPI)",
    allreduce(buf: ReduceArray, op: ReduceOp = "sum"): void {
      alive("allreduce");
      checkReduce(comm, buf, op);
    },
    allreduceStart(buf: ReduceArray, op: ReduceOp = "sum"): CommRequest {
      alive("allreduceStart");
      checkReduce(comm, buf, op);
      return DONE;
    },
    allgather<T extends CommArray>(send: T, result?: T): T {
      alive("allgather");
      const plan = checkGather(comm, send, result);
      if (!plan.inPlace) plan.result.set(send);
      return plan.result;
    },
    broadcast(buf: CommArray, root = 0): void {
      alive("broadcast");
      checkBroadcast(comm, buf, root);
    },
    barrier(): void {
      alive("barrier");
    },
    abort(code: number, message: string): never {
      console.error(`rank 0 of 1: ${message}`);
      Deno.exit(abortStatus(code));
    },
    dispose(): void {
      disposed = true;
    },
    [Symbol.dispose](): void {
      comm.dispose();
    },
  };
  return comm;
}
