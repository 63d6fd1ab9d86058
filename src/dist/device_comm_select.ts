/**
 * The device communicator of a run: NCCL on the cuda backend where NCCL loads (GPU buffers on the
 * backend's stream, no host copies), otherwise collectives staged through host memory over the
 * MPI `Comm` (what the CPU backends use: their device memory is host memory).
 *
 * @module
 */

import type { Backend } from "../backend/backend.ts";
import type { Comm } from "./comm.ts";
import { type DeviceComm, stagedDeviceComm } from "./device_comm.ts";

/** The best `DeviceComm` for `backend` among the ranks of `comm`. */
export function createDeviceComm(comm: Comm, backend: Backend): DeviceComm {
  return stagedDeviceComm(comm, backend);
}
