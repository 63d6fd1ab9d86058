/**
 * Choosing the communicator from the launcher (single without one or for a job of one, mpi
 * otherwise, torchrun-style jobs of several refused with what to do), and the timeout variable.
 */
import assert from "node:assert/strict";
import {
  chooseCommKind,
  commTimeoutS,
  createComm,
  DEFAULT_COMM_TIMEOUT_S,
  LaunchEnvError,
  parseLaunchEnv,
} from "../../src/dist/mod.ts";

const ompi2 = parseLaunchEnv({
  OMPI_COMM_WORLD_RANK: "0",
  OMPI_COMM_WORLD_SIZE: "2",
  OMPI_COMM_WORLD_LOCAL_RANK: "0",
  OMPI_COMM_WORLD_LOCAL_SIZE: "2",
});
const torch2 = parseLaunchEnv({
  RANK: "1",
  WORLD_SIZE: "2",
  LOCAL_RANK: "1",
  LOCAL_WORLD_SIZE: "2",
});
const none = parseLaunchEnv({});
const ompi1 = parseLaunchEnv({
  OMPI_COMM_WORLD_RANK: "0",
  OMPI_COMM_WORLD_SIZE: "1",
  OMPI_COMM_WORLD_LOCAL_RANK: "0",
  OMPI_COMM_WORLD_LOCAL_SIZE: "1",
});

Deno.test("chooseCommKind: auto is single for a job of one and mpi for several", () => {
  assert.equal(chooseCommKind(none), "single");
  assert.equal(chooseCommKind(ompi1), "single");
  assert.equal(chooseCommKind(ompi2), "mpi");
  assert.equal(chooseCommKind(none, "mpi"), "mpi");
  assert.equal(chooseCommKind(ompi1, "mpi"), "mpi");
});

Deno.test("chooseCommKind refuses single in a job of several", () => {
  assert.throws(() => chooseCommKind(ompi2, "single"), /every process would train alone/);
});

Deno.test("chooseCommKind refuses a torchrun-style job of several, saying what to do", () => {
  for (const kind of ["auto", "mpi"] as const) {
    assert.throws(() => chooseCommKind(torch2, kind), (e: unknown) => {
      assert.ok(e instanceof LaunchEnvError);
      assert.match(e.message, /RANK=1 WORLD_SIZE=2/);
      assert.match(e.message, /mpirun -np 2 deno run -A/);
      return true;
    });
  }
});

Deno.test("chooseCommKind refuses an unknown kind", () => {
  assert.throws(() => chooseCommKind(ompi2, "nccl" as "mpi"), /Unknown communicator kind 'nccl'/);
});

Deno.test("commTimeoutS reads RESSL_COMM_TIMEOUT_S", () => {
  assert.equal(commTimeoutS({}), DEFAULT_COMM_TIMEOUT_S);
  assert.equal(commTimeoutS({ RESSL_COMM_TIMEOUT_S: "2.5" }), 2.5);
  assert.equal(commTimeoutS({ RESSL_COMM_TIMEOUT_S: "" }), DEFAULT_COMM_TIMEOUT_S);
  for (const bad of ["0", "-3", "soon", "Infinity"]) {
    assert.throws(
      () => commTimeoutS({ RESSL_COMM_TIMEOUT_S: bad }),
      new RegExp(`RESSL_COMM_TIMEOUT_S='${bad}'`),
    );
  }
});

Deno.test("createComm without a launcher gives the single communicator", () => {
  using comm = createComm({ env: { HOME: "/root" } });
  assert.equal(comm.kind, "single");
  assert.deepEqual([comm.rank, comm.size, comm.localRank, comm.localSize], [0, 1, 0, 1]);
  assert.equal(comm.launch.launcher, "none");
});

Deno.test("createComm refuses a torchrun-style job of several before loading anything", () => {
  assert.throws(
    () =>
      createComm({ env: { RANK: "0", WORLD_SIZE: "2", LOCAL_RANK: "0", LOCAL_WORLD_SIZE: "2" } }),
    LaunchEnvError,
  );
});

Deno.test("createComm refuses a bad timeout before loading anything", () => {
  const hydra = { PMI_RANK: "0", PMI_SIZE: "2", MPI_LOCALRANKID: "0", MPI_LOCALNRANKS: "2" };
  assert.throws(
    () => createComm({ env: { ...hydra, RESSL_COMM_TIMEOUT_S: "never" } }),
    /RESSL_COMM_TIMEOUT_S='never'/,
  );
});
