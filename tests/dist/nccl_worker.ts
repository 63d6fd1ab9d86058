/**
 * A rank of the NCCL tests (2 ranks under mpirun, cuda backend on the emulated device with the
 * stand-in NCCL): `values` checks allreduce (sum, avg, max, in place), allgather and broadcast
 * from rank 1 against what they must give and prints `nccl collectives ok`; `peer-gone` makes
 * rank 1 leave the communicator (and stay alive) while rank 0 waits in an allreduce, which must
 * end the job naming rank 0 and the failed collective.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createCudaBackend } from "../../src/backend/cuda/backend.ts";
import { createComm } from "../../src/dist/create.ts";
import { createDeviceComm } from "../../src/dist/device_comm_select.ts";
import { runWithComm } from "../../src/dist/run_with_comm.ts";

const mode = Deno.args[0];
await runWithComm(createComm(), (comm) => {
  const be = createCudaBackend({ env: { ...Deno.env.toObject(), RESSL_CUDA_EMULATION: "1" } });
  const dc = createDeviceComm(comm, be);
  assert.equal(dc.kind, "nccl");
  const { rank, size } = comm;
  const up = (a: Float32Array | Int32Array) => {
    const s = be.alloc(a instanceof Int32Array ? "i32" : "f32", a.length);
    be.upload(s, a);
    return s;
  };
  if (mode === "peer-gone") {
    if (rank === 1) {
      dc.dispose();
      const until = Date.now() + 30_000;
      while (Date.now() < until) { /* alive, but out of the communicator */ }
      return;
    }
    dc.allreduceStart(up(new Float32Array(1000).fill(1)), "sum").wait();
    throw new Error("the allreduce with a departed peer completed");
  }
  const n = 1 + 3 * 257;
  const x = Float32Array.from({ length: n }, (_, i) => (i % 7) - 3 + rank * 0.5);
  for (const op of ["sum", "avg", "max"] as const) {
    const s = up(x);
    dc.allreduceStart(s, op).wait();
    const got = be.download(s) as Float32Array;
    const want = Float32Array.from(x, (_, i) => {
      const vals = Array.from({ length: size }, (_, r) => (i % 7) - 3 + r * 0.5);
      const total = vals.reduce((a, b) => a + b, 0);
      return op === "sum" ? total : op === "avg" ? total / size : Math.max(...vals);
    });
    assert.deepEqual(got, want, `allreduce ${op}`);
    be.free(s);
  }
  const ints = up(Int32Array.from({ length: 5 }, (_, i) => i * (rank + 1)));
  dc.allreduce(ints, "sum");
  dc.allreduceStart(ints, "min").wait();
  assert.deepEqual(be.download(ints), Int32Array.from({ length: 5 }, (_, i) => i * 3));
  const mine = up(Float32Array.from({ length: 4 }, (_, i) => rank * 10 + i));
  const all = be.alloc("f32", 4 * size);
  dc.allgather(mine, all);
  assert.deepEqual(
    be.download(all),
    Float32Array.from({ length: 4 * size }, (_, j) => Math.floor(j / 4) * 10 + (j % 4)),
  );
  const b = up(new Float32Array([rank, rank, rank]));
  dc.broadcast(b, 1);
  assert.deepEqual(be.download(b), new Float32Array([1, 1, 1]));
  assert.throws(() => dc.broadcast(b, 2), /broadcast root 2 is not a rank below 2/);
  for (const s of [ints, mine, all, b]) be.free(s);
  dc.dispose();
  be.dispose();
  if (rank === 0) console.log("nccl collectives ok");
});
