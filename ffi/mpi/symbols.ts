/**
 * The MPI C functions this project binds, as Deno FFI symbol tables, one per handle convention:
 * OpenMPI's handles (`MPI_Comm`, `MPI_Datatype`, `MPI_Op`, `MPI_Errhandler`) are pointers, MPICH's
 * are `int`s, so the same function takes a `"pointer"` or an `"i32"` in those positions.
 *
 * Conventions: data buffers, out-parameters and `MPI_Request` slots are `buffer`s (typed arrays the
 * caller owns and keeps alive until the request completes); `MPI_IN_PLACE` and the unused
 * `argc`/`argv` of `MPI_Init_thread` are `pointer`s; every function returns the MPI error code.
 * No call is `nonblocking`: every MPI call runs on the thread that initialised MPI.
 *
 * @module
 */

/** Functions that take no handle, enough to identify a library before choosing its table. */
export const MPI_PROBE_SYMBOLS = {
  MPI_Get_library_version: { parameters: ["buffer", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The symbol table of one handle convention (`"pointer"`: OpenMPI, `"i32"`: MPICH). */
export function mpiSymbols<H extends "pointer" | "i32">(handle: H) {
  return {
    MPI_Get_library_version: { parameters: ["buffer", "buffer"], result: "i32" },
    MPI_Initialized: { parameters: ["buffer"], result: "i32" },
    MPI_Finalized: { parameters: ["buffer"], result: "i32" },
    MPI_Init_thread: { parameters: ["pointer", "pointer", "i32", "buffer"], result: "i32" },
    MPI_Finalize: { parameters: [], result: "i32" },
    MPI_Comm_rank: { parameters: [handle, "buffer"], result: "i32" },
    MPI_Comm_size: { parameters: [handle, "buffer"], result: "i32" },
    MPI_Comm_set_errhandler: { parameters: [handle, handle], result: "i32" },
    MPI_Error_string: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
    MPI_Abort: { parameters: [handle, "i32"], result: "i32" },
    /** `MPI_Iallreduce(MPI_IN_PLACE, buf, count, dtype, op, comm, &req)` */
    MPI_Iallreduce: {
      parameters: ["pointer", "buffer", "i32", handle, handle, handle, "buffer"],
      result: "i32",
    },
    /** `MPI_Iallgather(send, count, dtype, recv, count, dtype, comm, &req)` */
    MPI_Iallgather: {
      parameters: ["buffer", "i32", handle, "buffer", "i32", handle, handle, "buffer"],
      result: "i32",
    },
    /** `MPI_Iallgather(MPI_IN_PLACE, 0, dtype, recv, count, dtype, comm, &req)` */
    MPI_Iallgather_in_place: {
      name: "MPI_Iallgather",
      parameters: ["pointer", "i32", handle, "buffer", "i32", handle, handle, "buffer"],
      result: "i32",
    },
    MPI_Ibcast: { parameters: ["buffer", "i32", handle, "i32", handle, "buffer"], result: "i32" },
    MPI_Ibarrier: { parameters: [handle, "buffer"], result: "i32" },
    /** `MPI_Test(&req, &flag, &status)`: the status is a scratch buffer, never read. */
    MPI_Test: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  } as const;
}

/** The OpenMPI table (handles are pointers). */
export const OMPI_SYMBOLS = mpiSymbols("pointer") satisfies Deno.ForeignLibraryInterface;

/** The MPICH table (handles are ints). */
export const MPICH_SYMBOLS = mpiSymbols("i32") satisfies Deno.ForeignLibraryInterface;

/**
 * OpenMPI's predefined handles, bound as statics: Deno gives a static `pointer` symbol's address
 * (not the value stored there), which is exactly the handle. `ompi_mpi_comm_world_addr` holds
 * `&ompi_mpi_comm_world` and checks that behaviour at load (denoland/deno#28111 calls it a bug).
 */
export const OMPI_STATICS = {
  ompi_mpi_comm_world: { type: "pointer" },
  ompi_mpi_comm_world_addr: { type: "pointer" },
  ompi_mpi_errors_return: { type: "pointer" },
  ompi_mpi_float: { type: "pointer" },
  ompi_mpi_double: { type: "pointer" },
  ompi_mpi_int32_t: { type: "pointer" },
  ompi_mpi_uint8_t: { type: "pointer" },
  ompi_mpi_uint16_t: { type: "pointer" },
  ompi_mpi_op_sum: { type: "pointer" },
  ompi_mpi_op_max: { type: "pointer" },
  ompi_mpi_op_min: { type: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;
