/**
 * One rank of the failure tests, run under an MPI launcher with 2 ranks. Both ranks complete one
 * allreduce, then rank 1 fails while rank 0 waits in a second allreduce:
 * - `--mode throw`: rank 1 throws inside `runWithComm` (which aborts the job)
 * - `--mode uncaught`: rank 1 throws outside it (the communicator's handler aborts the job)
 * - `--mode kill`: rank 1 kills itself with SIGKILL (the launcher or rank 0's timeout ends it)
 * - `--mode stuck`: rank 1 sleeps past the collective timeout (rank 0's deadline aborts the job)
 * - `--mode ok`: rank 1 joins; both print `done` (the control case)
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createComm, runWithComm } from "../../src/dist/mod.ts";

const { values } = parseArgs({ options: { mode: { type: "string", default: "ok" } } });
const mode = values.mode;
if (!["throw", "uncaught", "kill", "stuck", "ok"].includes(mode)) {
  throw new Error(`failure_worker: unknown --mode '${mode}': use throw, uncaught, kill, stuck, ok`);
}

const comm = createComm();
const buf = new Float32Array(8).fill(comm.rank + 1);
comm.allreduce(buf);
console.error(`rank ${comm.rank}: first allreduce gave ${buf[0]}`);

if (comm.rank === 1 && mode === "throw") {
  await runWithComm(comm, () => {
    throw new Error("deliberate failure in the test worker");
  });
}
if (comm.rank === 1 && mode === "uncaught") {
  throw new Error("deliberate failure in the test worker");
}
if (comm.rank === 1 && mode === "kill") {
  Deno.kill(Deno.pid, "SIGKILL");
}
if (comm.rank === 1 && mode === "stuck") {
  await new Promise((resolve) => setTimeout(resolve, 60_000));
}
comm.allreduce(buf);
comm.dispose();
console.error(`rank ${comm.rank}: done`);
