/**
 * Launcher discovery as a table: the environment of each launcher (taken from real `mpirun.openmpi`,
 * `mpirun.mpich` runs, SLURM's and torchrun's documented variables) gives the expected rank, size,
 * local rank, local size and MPI flavor; incomplete or contradictory environments are refused
 * with the variable named.
 */
import assert from "node:assert/strict";
import {
  type EnvRecord,
  expandSlurmTasksPerNode,
  LaunchEnvError,
  NO_LAUNCHER,
  parseLaunchEnv,
} from "../../src/dist/launch.ts";

type Row = [string, EnvRecord, [string, number, number, number, number, string | undefined]];

const OK: Row[] = [
  ["no launcher", { HOME: "/root", PATH: "/usr/bin" }, ["none", 0, 1, 0, 1, undefined]],
  [
    "OpenMPI rank 1 of 2 (as mpirun.openmpi sets it)",
    {
      OMPI_COMM_WORLD_RANK: "1",
      OMPI_COMM_WORLD_SIZE: "2",
      OMPI_COMM_WORLD_LOCAL_RANK: "1",
      OMPI_COMM_WORLD_LOCAL_SIZE: "2",
      OMPI_COMM_WORLD_NODE_RANK: "1",
      PMIX_RANK: "1",
    },
    ["openmpi", 1, 2, 1, 2, "openmpi"],
  ],
  [
    "OpenMPI on 2 nodes, inside a SLURM allocation (mpirun's variables win)",
    {
      OMPI_COMM_WORLD_RANK: "5",
      OMPI_COMM_WORLD_SIZE: "8",
      OMPI_COMM_WORLD_LOCAL_RANK: "1",
      OMPI_COMM_WORLD_LOCAL_SIZE: "4",
      SLURM_PROCID: "0",
      SLURM_NTASKS: "1",
      SLURM_LOCALID: "0",
    },
    ["openmpi", 5, 8, 1, 4, "openmpi"],
  ],
  [
    "Hydra rank 0 of 2 (as mpirun.mpich sets it; OMPI_ALLOW_* is not a launcher)",
    {
      PMI_RANK: "0",
      PMI_SIZE: "2",
      PMI_FD: "6",
      MPI_LOCALRANKID: "0",
      MPI_LOCALNRANKS: "2",
      OMPI_ALLOW_RUN_AS_ROOT: "1",
    },
    ["hydra", 0, 2, 0, 2, "mpich"],
  ],
  [
    "SLURM srun, 3 nodes of 2,2,1 tasks, node 2",
    {
      SLURM_PROCID: "4",
      SLURM_NTASKS: "5",
      SLURM_LOCALID: "0",
      SLURM_NODEID: "2",
      SLURM_TASKS_PER_NODE: "2(x2),1",
    },
    ["slurm", 4, 5, 0, 1, undefined],
  ],
  [
    "SLURM srun --mpi=pmix: the step's counts win over the allocation's",
    {
      SLURM_PROCID: "3",
      SLURM_NTASKS: "16",
      SLURM_STEP_NUM_TASKS: "4",
      SLURM_LOCALID: "1",
      SLURM_NODEID: "1",
      SLURM_TASKS_PER_NODE: "8(x2)",
      SLURM_STEP_TASKS_PER_NODE: "2(x2)",
      PMIX_RANK: "3",
    },
    ["slurm", 3, 4, 1, 2, "openmpi"],
  ],
  [
    "SLURM srun --mpi=pmi2 (PMI_RANK without Hydra's local variables)",
    {
      SLURM_PROCID: "1",
      SLURM_NTASKS: "2",
      SLURM_LOCALID: "1",
      SLURM_TASKS_PER_NODE: "2",
      PMI_RANK: "1",
      PMI_SIZE: "2",
      PMI_FD: "5",
    },
    ["slurm", 1, 2, 1, 2, "mpich"],
  ],
  [
    "SLURM batch step of one task",
    { SLURM_PROCID: "0", SLURM_NTASKS: "1", SLURM_LOCALID: "0" },
    ["slurm", 0, 1, 0, 1, undefined],
  ],
  [
    "torchrun rank 3 of 4 on 2 nodes",
    { RANK: "3", WORLD_SIZE: "4", LOCAL_RANK: "1", LOCAL_WORLD_SIZE: "2", MASTER_PORT: "29500" },
    ["torchrun", 3, 4, 1, 2, undefined],
  ],
  ["torchrun-style of one process", { RANK: "0", WORLD_SIZE: "1" }, [
    "torchrun",
    0,
    1,
    0,
    1,
    undefined,
  ]],
  ["a stray RANK alone is no launcher", { RANK: "7" }, ["none", 0, 1, 0, 1, undefined]],
];

for (const [name, env, [launcher, rank, size, localRank, localSize, mpi]] of OK) {
  Deno.test(`parseLaunchEnv: ${name}`, () => {
    const info = parseLaunchEnv(env);
    assert.deepEqual(
      [info.launcher, info.rank, info.size, info.localRank, info.localSize, info.mpi],
      [launcher, rank, size, localRank, localSize, mpi],
    );
    assert.ok(Object.isFrozen(info));
  });
}

const OMPI = {
  OMPI_COMM_WORLD_RANK: "1",
  OMPI_COMM_WORLD_SIZE: "2",
  OMPI_COMM_WORLD_LOCAL_RANK: "1",
  OMPI_COMM_WORLD_LOCAL_SIZE: "2",
};
const HYDRA = { PMI_RANK: "1", PMI_SIZE: "2", MPI_LOCALRANKID: "1", MPI_LOCALNRANKS: "2" };

const BAD: Array<[string, EnvRecord, RegExp]> = [
  [
    "OpenMPI without its size",
    { ...OMPI, OMPI_COMM_WORLD_SIZE: undefined },
    /OMPI_COMM_WORLD_SIZE is not set/,
  ],
  ["OpenMPI rank = size", { ...OMPI, OMPI_COMM_WORLD_RANK: "2" }, /rank 2 is not below the size 2/],
  [
    "OpenMPI size 0",
    { ...OMPI, OMPI_COMM_WORLD_SIZE: "0" },
    /OMPI_COMM_WORLD_SIZE='0'.*integer >= 1/,
  ],
  [
    "OpenMPI local rank not a number",
    { ...OMPI, OMPI_COMM_WORLD_LOCAL_RANK: "one" },
    /OMPI_COMM_WORLD_LOCAL_RANK='one'/,
  ],
  ["OpenMPI negative rank", { ...OMPI, OMPI_COMM_WORLD_RANK: "-1" }, /OMPI_COMM_WORLD_RANK='-1'/],
  ["OpenMPI local size above size", {
    ...OMPI,
    OMPI_COMM_WORLD_LOCAL_SIZE: "3",
    OMPI_COMM_WORLD_LOCAL_RANK: "0",
  }, /local size 3 exceeds the size 2/],
  [
    "Hydra local rank = local size",
    { ...HYDRA, MPI_LOCALRANKID: "2" },
    /local rank 2 is not below the local size 2/,
  ],
  [
    "Hydra without MPI_LOCALNRANKS",
    { ...HYDRA, MPI_LOCALNRANKS: undefined },
    /MPI_LOCALNRANKS is not set/,
  ],
  ["Hydra empty PMI_SIZE", { ...HYDRA, PMI_SIZE: " " }, /PMI_SIZE is not set/],
  ["SLURM of 4 tasks without tasks per node", {
    SLURM_PROCID: "1",
    SLURM_NTASKS: "4",
    SLURM_LOCALID: "1",
  }, /SLURM_TASKS_PER_NODE is not set/],
  ["SLURM counts that do not add up", {
    SLURM_PROCID: "1",
    SLURM_NTASKS: "4",
    SLURM_LOCALID: "1",
    SLURM_NODEID: "0",
    SLURM_TASKS_PER_NODE: "2(x3)",
  }, /6 task\(s\).*SLURM_NTASKS=4/],
  ["SLURM node beyond the list", {
    SLURM_PROCID: "1",
    SLURM_NTASKS: "4",
    SLURM_LOCALID: "1",
    SLURM_NODEID: "2",
    SLURM_TASKS_PER_NODE: "2(x2)",
  }, /SLURM_NODEID=2/],
  ["SLURM several nodes without SLURM_NODEID", {
    SLURM_PROCID: "1",
    SLURM_NTASKS: "4",
    SLURM_LOCALID: "1",
    SLURM_TASKS_PER_NODE: "2(x2)",
  }, /SLURM_NODEID is not set/],
  ["SLURM malformed tasks per node", {
    SLURM_PROCID: "0",
    SLURM_NTASKS: "2",
    SLURM_LOCALID: "0",
    SLURM_TASKS_PER_NODE: "2x",
  }, /expected counts like/],
  [
    "torchrun of 2 without LOCAL_RANK",
    { RANK: "1", WORLD_SIZE: "2", LOCAL_WORLD_SIZE: "2" },
    /LOCAL_RANK is not set/,
  ],
  [
    "torchrun WORLD_SIZE without RANK",
    { WORLD_SIZE: "2", LOCAL_RANK: "0", LOCAL_WORLD_SIZE: "2" },
    /RANK is not set/,
  ],
  ["torchrun rank beyond the world", {
    RANK: "4",
    WORLD_SIZE: "4",
    LOCAL_RANK: "0",
    LOCAL_WORLD_SIZE: "1",
  }, /rank 4 is not below the size 4/],
];

for (const [name, env, message] of BAD) {
  Deno.test(`parseLaunchEnv refuses: ${name}`, () => {
    assert.throws(() => parseLaunchEnv(env), (e: unknown) => {
      assert.ok(e instanceof LaunchEnvError, String(e));
      assert.match(e.message, message);
      return true;
    });
  });
}

Deno.test("expandSlurmTasksPerNode expands repeat counts", () => {
  assert.deepEqual(expandSlurmTasksPerNode("2(x3),1"), [2, 2, 2, 1]);
  assert.deepEqual(expandSlurmTasksPerNode("4"), [4]);
  assert.deepEqual(expandSlurmTasksPerNode("1,3(x2)"), [1, 3, 3]);
  assert.throws(() => expandSlurmTasksPerNode("2(x0)"), LaunchEnvError);
  assert.throws(() => expandSlurmTasksPerNode(""), LaunchEnvError);
});

Deno.test("NO_LAUNCHER is a frozen job of one", () => {
  assert.equal(NO_LAUNCHER.size, 1);
  assert.ok(Object.isFrozen(NO_LAUNCHER));
});
