/**
 * Handle values and sizes of the two MPI ABIs this project binds, read from the headers of the
 * Debian packages (`libmpich-dev` 4.0.2: `/usr/include/x86_64-linux-gnu/mpich/mpi.h`;
 * `libopenmpi-dev` 4.1.4: `/usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h`). The runtime needs
 * only the shared libraries, not these headers.
 *
 * - MPICH (and MPICH-ABI libraries): every handle is a C `int` with a fixed value.
 * - OpenMPI: every handle is the address of an exported global struct (`MPI_COMM_WORLD` is
 *   `&ompi_mpi_comm_world`), so it is only known once the library is loaded.
 *
 * @module
 */

/** The two handle conventions: `openmpi` (pointers to globals) and `mpich` (int constants). */
export type MpiFlavor = "openmpi" | "mpich";

/** Element types the bindings know, by the name the rest of the project uses. */
export type MpiDtype = "f32" | "f64" | "i32" | "u8" | "u16";

/** Reduction operators the bindings know. */
export type MpiReduceOp = "sum" | "max" | "min";

/** `MPI_SUCCESS` (0 in both). */
export const MPI_SUCCESS = 0;

/** `MPI_THREAD_*` levels (an enum in OpenMPI, defines in MPICH; 0..3 in both). */
export const MPI_THREAD = { single: 0, funneled: 1, serialized: 2, multiple: 3 } as const;

/** The soname each flavor is loaded from by default. */
export const MPI_SONAMES: Readonly<Record<MpiFlavor, string>> = Object.freeze({
  openmpi: "libmpi.so.40",
  mpich: "libmpich.so.12",
});

/** MPICH's handle constants (`mpi.h` of MPICH 4.0.2; `MPI_INT32_T` etc. are the fixed-size types). */
export const MPICH_HANDLES = {
  /** `MPI_COMM_WORLD` */
  commWorld: 0x44000000,
  /** `MPI_ERRORS_RETURN` */
  errorsReturn: 0x54000001,
  /** `MPI_FLOAT`, `MPI_DOUBLE`, `MPI_INT32_T`, `MPI_UINT8_T`, `MPI_UINT16_T` */
  dtype: {
    f32: 0x4c00040a,
    f64: 0x4c00080b,
    i32: 0x4c000439,
    u8: 0x4c00013b,
    u16: 0x4c00023c,
  } satisfies Record<MpiDtype, number>,
  /** `MPI_SUM`, `MPI_MAX`, `MPI_MIN` */
  op: { sum: 0x58000003, max: 0x58000001, min: 0x58000002 } satisfies Record<MpiReduceOp, number>,
} as const;

/** The OpenMPI globals whose addresses are the handles (`OMPI_PREDEFINED_GLOBAL` in `mpi.h`). */
export const OMPI_GLOBALS = {
  commWorld: "ompi_mpi_comm_world",
  errorsReturn: "ompi_mpi_errors_return",
  dtype: {
    f32: "ompi_mpi_float",
    f64: "ompi_mpi_double",
    i32: "ompi_mpi_int32_t",
    u8: "ompi_mpi_uint8_t",
    u16: "ompi_mpi_uint16_t",
  } satisfies Record<MpiDtype, string>,
  op: {
    sum: "ompi_mpi_op_sum",
    max: "ompi_mpi_op_max",
    min: "ompi_mpi_op_min",
  } satisfies Record<MpiReduceOp, string>,
} as const;

/** `MPI_IN_PLACE` as a pointer value: `(void *) 1` in OpenMPI, `(void *) -1` in MPICH. */
export const MPI_IN_PLACE_VALUE: Readonly<Record<MpiFlavor, bigint>> = Object.freeze({
  openmpi: 1n,
  mpich: 0xffff_ffff_ffff_ffffn,
});

/** Bytes of an `MPI_Request` slot: a pointer in OpenMPI (8), an int in MPICH (4); 8 holds both. */
export const MPI_REQUEST_BYTES = 8;

/** Bytes of an `MPI_Status`: 24 in OpenMPI, 20 in MPICH; 32 holds both. */
export const MPI_STATUS_BYTES = 32;

/** Bytes for `MPI_Error_string`: `MPI_MAX_ERROR_STRING` is 256 in OpenMPI, 512 in MPICH. */
export const MPI_ERROR_STRING_BYTES = 1024;

/** Bytes for `MPI_Get_library_version`: `MPI_MAX_LIBRARY_VERSION_STRING` is 256 / 8192. */
export const MPI_LIBRARY_VERSION_BYTES = 8192;

/** The largest element count one MPI call takes (`count` is a C `int`). */
export const MPI_MAX_COUNT = 2 ** 31 - 1;
