/**
 * The one-process communicator: collectives are identities (allgather copies, avg divides by
 * one), and it refuses exactly the arguments the MPI one refuses, with messages naming the rank.
 */
import assert from "node:assert/strict";
import { CommError, createSingleComm, parseLaunchEnv } from "../../src/dist/mod.ts";

Deno.test("single: allreduce leaves values, allgather copies, broadcast from 0", () => {
  using comm = createSingleComm();
  const a = new Float32Array([1.5, -2, 3]);
  comm.allreduce(a, "sum");
  comm.allreduce(a, "avg");
  comm.allreduce(a, "max");
  assert.deepEqual([...a], [1.5, -2, 3]);
  const req = comm.allreduceStart(a, "avg");
  assert.equal(req.test(), true);
  req.wait();
  const g = comm.allgather(new Int32Array([4, 5]));
  assert.ok(g instanceof Int32Array);
  assert.deepEqual([...g], [4, 5]);
  const into = new Uint8Array(3);
  assert.equal(comm.allgather(new Uint8Array([7, 8, 9]), into), into);
  assert.deepEqual([...into], [7, 8, 9]);
  const b = new Uint16Array([1, 2]);
  comm.broadcast(b, 0);
  assert.deepEqual([...b], [1, 2]);
  comm.barrier();
  assert.equal(comm.description, "single (one process, no MPI)");
});

Deno.test("single: in-place allgather (send is the result itself)", () => {
  using comm = createSingleComm();
  const r = new Float64Array([0.25, 0.5]);
  assert.equal(comm.allgather(r.subarray(0, 2), r), r);
  assert.deepEqual([...r], [0.25, 0.5]);
});

Deno.test("single: refused arguments name the rank and what to do", () => {
  using comm = createSingleComm();
  const refuse = (f: () => unknown, message: RegExp) =>
    assert.throws(f, (e: unknown) => {
      assert.ok(e instanceof CommError, String(e));
      assert.match(e.message, message);
      return true;
    });
  refuse(
    () => comm.allreduce(new Int32Array(2), "avg"),
    /rank 0 of 1: cannot average an Int32Array/,
  );
  refuse(
    () => comm.allreduce(new Uint8Array(2) as unknown as Int32Array),
    /cannot allreduce a Uint8Array/,
  );
  refuse(() => comm.allreduce(new Float32Array(2), "prod" as "sum"), /unknown reduction 'prod'/);
  refuse(
    () => comm.allgather(new Float32Array(2), new Float64Array(2) as unknown as Float32Array),
    /the result must have the same type/,
  );
  refuse(
    () => comm.allgather(new Float32Array(2), new Float32Array(3)),
    /needs a result of 1 × 2 = 2/,
  );
  const buf = new Float32Array(4);
  refuse(() => comm.allgather(buf.subarray(1, 3), buf.subarray(0, 2)), /overlaps its result/);
  refuse(
    () => comm.broadcast(new Float32Array(1), 1),
    /broadcast root 1 is not a rank of this job/,
  );
  refuse(() => comm.broadcast(new Float32Array(1), 0.5), /root 0.5/);
  refuse(
    () => comm.broadcast(new Uint8ClampedArray(1) as unknown as Uint8Array),
    /Uint8ClampedArray/,
  );
});

Deno.test("single: collectives after dispose are refused", () => {
  const comm = createSingleComm();
  comm.dispose();
  comm.dispose();
  assert.throws(() => comm.barrier(), /barrier after dispose/);
});

Deno.test("single refuses to stand for a job of several processes", () => {
  const launch = parseLaunchEnv({
    PMI_RANK: "0",
    PMI_SIZE: "2",
    MPI_LOCALRANKID: "0",
    MPI_LOCALNRANKS: "2",
  });
  assert.throws(() => createSingleComm(launch), /job of 2 processes .*PMI_RANK=0/);
});
