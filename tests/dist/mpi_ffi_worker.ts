/**
 * The FFI layer alone, in a one-process MPI job (`deno run`, no launcher): loads the library
 * named by `--lib`, initialises it, and exercises each binding directly, including the error
 * path (`MPI_ERRORS_RETURN` + `MPI_Error_string`) that the argument checks of `Comm` keep MPI
 * from ever seeing. Prints one `RESULT {json}` line.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadMpi, MPI_REQUEST_BYTES, MPI_STATUS_BYTES, MPI_THREAD } from "../../ffi/mpi/mod.ts";

const { values } = parseArgs({ options: { lib: { type: "string" } } });
const lib = loadMpi({ path: values.lib });
const out: Record<string, unknown> = { flavor: lib.flavor, version: lib.version };
const i32 = new Int32Array(1);
out.initializedBefore = lib.initialized();
out.init = lib.initThread(MPI_THREAD.funneled, i32);
out.provided = i32[0];
out.initializedAfter = lib.initialized();
out.errorsReturn = lib.setErrorsReturn();
lib.worldRank(i32);
out.rank = i32[0];
lib.worldSize(i32);
out.size = i32[0];

const flag = new Int32Array(1);
const status = new Uint8Array(MPI_STATUS_BYTES);
function complete(req: Uint8Array): number {
  let polls = 0;
  do {
    const rc = lib.test(req, flag, status);
    if (rc !== 0) return -rc;
    polls++;
  } while (flag[0] === 0 && polls < 1e7);
  return flag[0];
}

// In place: the buffer is both input and output (MPI_IN_PLACE is 1 or -1 by flavor).
const f = new Float32Array([1.5, -2, 4]);
let req = new Uint8Array(MPI_REQUEST_BYTES);
out.iallreduce = [lib.iallreduceInPlace(f, 3, "f32", "max", req), complete(req), ...f];
const send = new Uint8Array([9, 8]);
const recv = new Uint8Array(2);
req = new Uint8Array(MPI_REQUEST_BYTES);
out.iallgather = [lib.iallgather(send, 2, "u8", recv, req), complete(req), ...recv];
const own = new Float64Array([0.125]);
req = new Uint8Array(MPI_REQUEST_BYTES);
out.iallgatherInPlace = [lib.iallgatherInPlace(own, 1, "f64", req), complete(req), ...own];
const b = new Uint16Array([3, 4]);
req = new Uint8Array(MPI_REQUEST_BYTES);
out.ibcast = [lib.ibcast(b, 2, "u16", 0, req), complete(req), ...b];
req = new Uint8Array(MPI_REQUEST_BYTES);
out.ibarrier = [lib.ibarrier(req), complete(req)];
// Errors come back as codes (MPI_ERRORS_RETURN), explained by MPI_Error_string.
req = new Uint8Array(MPI_REQUEST_BYTES);
const badRoot = lib.ibcast(b, 2, "u16", 5, req);
out.badRoot = [badRoot, lib.errorString(badRoot)];
out.finalize = lib.finalize();
out.finalizedAfter = lib.finalized();
console.log(`RESULT ${JSON.stringify(out)}`);
