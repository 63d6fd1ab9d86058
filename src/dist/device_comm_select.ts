/**
 * The device communicator of a run: NCCL on the cuda backend where NCCL loads (GPU buffers on the
 * backend's stream, no host copies), otherwise collectives staged through host memory over the
 * MPI `Comm` (what the CPU backends use: their device memory is host memory).
 *
 * @module
 */

import type { Backend } from "../backend/backend.ts";
import type { Comm } from "./comm.ts";
import { commTimeoutS } from "./create.ts";
import { type DeviceComm, stagedDeviceComm } from "./device_comm.ts";
import { readLaunchEnv } from "./launch.ts";
import { createNcclComm, isCudaBackend } from "./nccl_comm.ts";

/** Which device communicator to make: `auto` is NCCL on the cuda backend, else staged. */
export type DeviceCommKind = "auto" | "nccl" | "staged";

/**
 * The `DeviceComm` for `backend` among the ranks of `comm` (every rank calls it at the same point
 * and must get the same kind: NCCL is chosen from the backend alone, never from what loads on one
 * rank; a rank where NCCL fails to load throws, which ends the job).
 */
export function createDeviceComm(
  comm: Comm,
  backend: Backend,
  kind: DeviceCommKind = "auto",
  timeoutS: number = commTimeoutS(readLaunchEnv()),
): DeviceComm {
  if (kind === "staged" || (kind === "auto" && backend.name !== "cuda")) {
    return stagedDeviceComm(comm, backend);
  }
  if (!isCudaBackend(backend)) {
    throw new RangeError(`Cannot use NCCL with the ${backend.name} backend: it needs cuda`);
  }
  return createNcclComm(comm, backend, { timeoutS });
}
