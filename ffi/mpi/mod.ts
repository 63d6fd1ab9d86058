/**
 * MPI (OpenMPI `libmpi.so.40` and MPICH `libmpich.so.12`) through Deno FFI: symbol tables for
 * both handle conventions, their handle constants, library discovery and identification, and one
 * handle-free face over both. No communicator logic lives here (see `src/dist/`).
 *
 * @module
 */

export * from "./constants.ts";
export * from "./symbols.ts";
export * from "./load.ts";
