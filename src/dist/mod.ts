/**
 * Communication for data-parallel training: the `Comm` contract (host collectives), launcher
 * discovery, the `single` and `mpi` (OpenMPI/MPICH through FFI) communicators, and `DeviceComm`
 * (collectives on backend storages). Importing loads no library; `createComm` does.
 *
 * @module
 */

export * from "./comm.ts";
export * from "./launch.ts";
export * from "./single.ts";
export * from "./mpi_comm.ts";
export * from "./create.ts";
export * from "./run_with_comm.ts";
export * from "./device_comm.ts";
export { chunkRanges } from "./poll.ts";
