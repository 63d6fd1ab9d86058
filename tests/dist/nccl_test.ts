/**
 * The `nccl` device communicator on the emulated device with the stand-in NCCL (2 ranks under
 * OpenMPI): collective values (allreduce sum/avg/max/min on f32 and i32, allgather, broadcast
 * from rank 1, a bad root refused), and a peer that leaves the communicator while rank 0 waits
 * in an allreduce: the job ends non-zero within 60 s, naming rank 0 and the collective.
 *
 * @module
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { ENGINES, here, runJob } from "./mpi_job.ts";

const emulator = existsSync(new URL("../../build/emulator/lib/libnccl.so.2", import.meta.url));
const openmpi = ENGINES[0];
const ready = emulator && openmpi.launcher !== undefined;
const skip =
  " (skipped: needs OpenMPI and the emulated device with its NCCL; bash emulator/build.sh)";
const env = { RESSL_CUDA_EMULATION: "1", RESSL_COMM_TIMEOUT_S: "20" };

Deno.test({
  name: `nccl on the emulated device: collective values [openmpi]${ready ? "" : skip}`,
  ignore: !ready,
  fn: async () => {
    const job = await runJob({
      engine: openmpi,
      worker: here("nccl_worker.ts"),
      args: ["values"],
      env,
      limitS: 120,
    });
    assert.equal(job.code, 0, job.output);
    assert.match(job.output, /nccl collectives ok/);
  },
});

Deno.test({
  name: `nccl: a peer leaving the communicator ends the job, naming the rank [openmpi]${
    ready ? "" : skip
  }`,
  ignore: !ready,
  fn: async () => {
    const job = await runJob({
      engine: openmpi,
      worker: here("nccl_worker.ts"),
      args: ["peer-gone"],
      env,
      limitS: 90,
    });
    console.log(`ended with status ${job.code} after ${job.seconds.toFixed(1)} s`);
    assert.notEqual(job.code, 0, job.output);
    assert.ok(job.seconds < 60, `took ${job.seconds} s`);
    assert.match(
      job.output,
      /rank 0 of 2[^\n]*nccl: allreduce\(sum, 1000 × f32\) failed: remote process exited/,
    );
  },
});
