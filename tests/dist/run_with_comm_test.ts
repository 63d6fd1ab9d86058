/**
 * runWithComm: success disposes and returns; a failure in a job of one rethrows; a failure in a
 * job of several aborts with the error (the abort itself is checked for real in the failure tests
 * under mpirun; here a communicator of size 2 records the call instead of ending the process).
 */
import assert from "node:assert/strict";
import { type Comm, createSingleComm, runWithComm } from "../../src/dist/mod.ts";

Deno.test("runWithComm returns the value and disposes the communicator", async () => {
  const comm = createSingleComm();
  assert.equal(await runWithComm(comm, (c) => c.size + 41), 42);
  assert.throws(() => comm.barrier(), /after dispose/);
});

Deno.test("runWithComm in a job of one disposes and rethrows", async () => {
  const comm = createSingleComm();
  await assert.rejects(
    runWithComm(comm, () => Promise.reject(new RangeError("bad step"))),
    /bad step/,
  );
  assert.throws(() => comm.barrier(), /after dispose/);
});

Deno.test("runWithComm in a job of several aborts with code 1 and the error", async () => {
  const calls: Array<[number, string]> = [];
  class Aborted extends Error {}
  const two: Comm = {
    ...createSingleComm(),
    size: 2,
    abort(code: number, message: string): never {
      calls.push([code, message]);
      throw new Aborted();
    },
  };
  await assert.rejects(
    runWithComm(two, () => {
      throw new TypeError("shape mismatch in layer1.0.conv1");
    }),
    Aborted,
  );
  assert.equal(calls.length, 1);
  assert.equal(calls[0][0], 1);
  assert.match(calls[0][1], /failed, ending the job: TypeError: shape mismatch in layer1.0.conv1/);
});
