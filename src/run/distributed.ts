/**
 * The run side of data-parallel training: what differs between the ranks of a job, and what keeps
 * them in step outside the train step itself.
 *
 * - Rank 0 is the writer: it claims the run folder, writes config.json, metrics, checkpoints and
 *   plots; the other ranks get a {@link NO_METRICS} sink and write nothing.
 * - The state every rank starts from is rank 0's: after rank 0 builds or resumes it (the other
 *   ranks build a fresh state of the same shapes), {@link broadcastState} copies every tensor and
 *   the step and queue pointer from rank 0. So a resume needs the checkpoint on rank 0's machine
 *   only, and checkpoints hold no per-rank state (the queue is identical everywhere, the data
 *   order global).
 * - A stop request (SIGINT/SIGTERM) seen by any rank stops every rank at the same step
 *   ({@link agreeStop}, one 4-byte allreduce per step).
 *
 * @module
 */

import type { Comm } from "../dist/comm.ts";
import type { DeviceComm } from "../dist/device_comm.ts";
import type { GradientBucketOptions } from "../dist/grad_buckets.ts";
import type { TrainState } from "../ressl/step.ts";
import { flattenTree, type TensorTree } from "../tensor/tree.ts";
import type { MetricsSink } from "./metrics_flusher.ts";

/** Data parallelism of a run: the ranks' communicator on the run's backend. */
export interface TrainParallel extends GradientBucketOptions {
  /** Collectives on backend storages (`stagedDeviceComm` on CPUs, NCCL on GPUs). */
  comm: DeviceComm;
}

/** Whether this process writes the run folder: rank 0, or a run of one process. */
export function isWriter(parallel: TrainParallel | undefined): boolean {
  return parallel === undefined || parallel.comm.comm.rank === 0;
}

/** The host communicator of a run, or null for a run of one process. */
export function runComm(parallel: TrainParallel | undefined): Comm | null {
  return parallel === undefined || parallel.comm.comm.size === 1 ? null : parallel.comm.comm;
}

/** A metrics sink that drops every record (ranks other than 0). */
export const NO_METRICS: MetricsSink = { write() {} };

/** The tensors of a state in a fixed order (every rank walks the same tree). */
function stateTensors(state: TrainState) {
  return flattenTree([
    state.student.params,
    state.student.buffers,
    state.teacher.params,
    state.teacher.buffers,
    state.optimizer.momentum,
    state.queue.data,
  ] as unknown as TensorTree);
}

/**
 * Makes every rank's `state` rank 0's, in place (every tensor, the step and the queue pointer):
 * called once, on the fresh or resumed state, before the first step. Returns the state.
 */
export function broadcastState(state: TrainState, dc: DeviceComm): TrainState {
  const comm = dc.comm;
  if (comm.size === 1) return state;
  const tensors = stateTensors(state);
  const head = new Float64Array([state.step, state.queue.ptr, tensors.length]);
  comm.broadcast(head, 0);
  if (head[2] !== tensors.length) {
    throw new Error(
      `rank ${comm.rank}: the state has ${tensors.length} tensors, rank 0's ${head[2]} ` +
        `(different networks on different ranks?)`,
    );
  }
  for (const [, t] of tensors) dc.broadcast(t.storage, 0);
  return { ...state, step: head[0], queue: { data: state.queue.data, ptr: head[1] } };
}

/** Whether any rank asked to stop (one small allreduce; every rank must call it each step). */
export function agreeStop(comm: Comm | null, requested: boolean): boolean {
  if (comm === null) return requested;
  const flag = new Int32Array([requested ? 1 : 0]);
  comm.allreduce(flag, "max");
  return flag[0] === 1;
}
