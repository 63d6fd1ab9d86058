/**
 * Which launcher started this process, and where this process sits in the job: a pure function of
 * the environment (no MPI call, no library loaded), so it is tested with tables.
 *
 * Launchers, in the order they are looked for (the innermost launcher wins: an `mpirun` inside a
 * SLURM allocation sees both, and the `mpirun` variables describe the ranks):
 * - OpenMPI `mpirun`: `OMPI_COMM_WORLD_RANK`, `_SIZE`, `_LOCAL_RANK`, `_LOCAL_SIZE`
 * - MPICH Hydra `mpiexec.mpich`: `PMI_RANK`, `PMI_SIZE`, `MPI_LOCALRANKID`, `MPI_LOCALNRANKS`
 * - SLURM `srun`: `SLURM_PROCID`, `SLURM_STEP_NUM_TASKS` (else `SLURM_NTASKS`), `SLURM_LOCALID`,
 *   and the local size from `SLURM_STEP_TASKS_PER_NODE` (else `SLURM_TASKS_PER_NODE`, like
 *   `2(x3),1`) at `SLURM_NODEID`
 * - torchrun-style (recognised by `WORLD_SIZE`): `RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
 *   `LOCAL_WORLD_SIZE`
 *
 * @module
 */

import type { MpiFlavor } from "../../ffi/mpi/constants.ts";

/** The launchers {@link parseLaunchEnv} recognises; `none` is a plain `deno run`. */
export type Launcher = "none" | "openmpi" | "hydra" | "slurm" | "torchrun";

/** Where this process sits in the job, as its launcher describes it. */
export interface LaunchInfo {
  /** Who started the process. */
  readonly launcher: Launcher;
  /** Global rank, 0 ≤ rank < size. */
  readonly rank: number;
  /** Number of processes in the job. */
  readonly size: number;
  /** Rank among the processes on this node. */
  readonly localRank: number;
  /** Number of processes on this node. */
  readonly localSize: number;
  /**
   * The MPI library the launcher belongs to: `openmpi` for `mpirun` (or a SLURM job whose
   * environment shows PMIx), `mpich` for Hydra (or SLURM with PMI-1/2), `undefined` where the
   * environment does not say (SLURM alone) or MPI cannot be used (torchrun, none).
   */
  readonly mpi: MpiFlavor | undefined;
  /** The variables the description was read from, for messages (`PMI_RANK=1 PMI_SIZE=2`). */
  readonly source: string;
}

/** Thrown for a launcher environment that is incomplete or contradicts itself. */
export class LaunchEnvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LaunchEnvError";
  }
}

/** An environment record, as from `Deno.env.toObject()`. */
export type EnvRecord = Readonly<Record<string, string | undefined>>;

/** The description of a process started without any launcher. */
export const NO_LAUNCHER: LaunchInfo = Object.freeze({
  launcher: "none",
  rank: 0,
  size: 1,
  localRank: 0,
  localSize: 1,
  mpi: undefined,
  source: "no launcher variables",
});

function readInt(env: EnvRecord, name: string, launcher: string, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") {
    throw new LaunchEnvError(
      `The ${launcher} environment is incomplete: ${name} is not set (this launcher sets it for ` +
        `every process; was the variable removed, or the process started by hand?)`,
    );
  }
  const s = raw.trim();
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s)) || Number(s) < min) {
    throw new LaunchEnvError(
      `Cannot read ${name}='${raw}' of the ${launcher} environment: expected an integer >= ${min}`,
    );
  }
  return Number(s);
}

/**
 * Expands SLURM's compressed task counts per node (`"2(x3),1"` → `[2, 2, 2, 1]`).
 * Throws {@link LaunchEnvError} on a malformed value.
 */
export function expandSlurmTasksPerNode(value: string): number[] {
  const out: number[] = [];
  for (const part of value.split(",")) {
    const m = /^\s*(\d+)(?:\(x(\d+)\))?\s*$/.exec(part);
    if (m === null || Number(m[2] ?? 1) < 1) {
      throw new LaunchEnvError(
        `Cannot read SLURM tasks per node '${value}': expected counts like '2(x3),1'`,
      );
    }
    for (let i = 0; i < Number(m[2] ?? 1); i++) out.push(Number(m[1]));
  }
  return out;
}

function check(info: LaunchInfo, launcherName: string): LaunchInfo {
  const { rank, size, localRank, localSize } = info;
  const problems: string[] = [];
  if (rank >= size) problems.push(`rank ${rank} is not below the size ${size}`);
  if (localRank >= localSize) {
    problems.push(`local rank ${localRank} is not below the local size ${localSize}`);
  }
  if (localSize > size) problems.push(`local size ${localSize} exceeds the size ${size}`);
  if (problems.length > 0) {
    throw new LaunchEnvError(
      `The ${launcherName} environment contradicts itself (${info.source}): ${problems.join("; ")}`,
    );
  }
  return Object.freeze(info);
}

function fourVars(
  env: EnvRecord,
  launcher: "openmpi" | "hydra" | "torchrun",
  name: string,
  vars: readonly [string, string, string, string],
  mpi: MpiFlavor | undefined,
): LaunchInfo {
  const [r, s, lr, ls] = vars;
  const rank = readInt(env, r, name, 0);
  const size = readInt(env, s, name, 1);
  const localRank = readInt(env, lr, name, 0);
  const localSize = readInt(env, ls, name, 1);
  const source = `${r}=${rank} ${s}=${size} ${lr}=${localRank} ${ls}=${localSize}`;
  return check({ launcher, rank, size, localRank, localSize, mpi, source }, name);
}

const has = (env: EnvRecord, ...names: string[]) => names.some((n) => env[n] !== undefined);

function slurmMpi(env: EnvRecord): MpiFlavor | undefined {
  if (env.PMIX_RANK !== undefined) return "openmpi";
  if (has(env, "PMI_FD", "PMI_PORT", "PMI_RANK")) return "mpich";
  return undefined;
}

function slurm(env: EnvRecord): LaunchInfo {
  const name = "SLURM srun";
  const sizeName =
    ["SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_NPROCS"].find((n) => env[n] !== undefined) ??
      "SLURM_NTASKS";
  const perNodeName = env.SLURM_STEP_TASKS_PER_NODE !== undefined
    ? "SLURM_STEP_TASKS_PER_NODE"
    : "SLURM_TASKS_PER_NODE";
  const rank = readInt(env, "SLURM_PROCID", name, 0);
  const size = readInt(env, sizeName, name, 1);
  const localRank = readInt(env, "SLURM_LOCALID", name, 0);
  const perNode = env[perNodeName];
  let localSize = 1;
  if (perNode !== undefined && perNode.trim() !== "") {
    const counts = expandSlurmTasksPerNode(perNode);
    if (counts.length > 1 && env.SLURM_NODEID === undefined) {
      throw new LaunchEnvError(
        `The ${name} environment is incomplete: ${perNodeName}='${perNode}' spans ` +
          `${counts.length} nodes but SLURM_NODEID is not set`,
      );
    }
    const node = env.SLURM_NODEID === undefined ? 0 : readInt(env, "SLURM_NODEID", name, 0);
    const total = counts.reduce((a, b) => a + b, 0);
    if (node >= counts.length || total !== size) {
      throw new LaunchEnvError(
        `The ${name} environment contradicts itself: ${perNodeName}='${perNode}' lists ` +
          `${counts.length} node(s) and ${total} task(s), but SLURM_NODEID=${node} and ` +
          `${sizeName}=${size}`,
      );
    }
    localSize = counts[node];
  } else if (size > 1) {
    throw new LaunchEnvError(
      `The ${name} environment is incomplete: ${perNodeName} is not set, so the number of ` +
        `tasks on this node is unknown`,
    );
  }
  const source = `SLURM_PROCID=${rank} ${sizeName}=${size} SLURM_LOCALID=${localRank}`;
  return check(
    { launcher: "slurm", rank, size, localRank, localSize, mpi: slurmMpi(env), source },
    name,
  );
}

function torchrun(env: EnvRecord): LaunchInfo {
  const name = "torchrun-style (WORLD_SIZE)";
  const size = readInt(env, "WORLD_SIZE", name, 1);
  if (size === 1 && env.LOCAL_RANK === undefined && env.LOCAL_WORLD_SIZE === undefined) {
    const rank = readInt(env, "RANK", name, 0);
    const source = `RANK=${rank} WORLD_SIZE=1`;
    return check(
      { launcher: "torchrun", rank, size, localRank: 0, localSize: 1, mpi: undefined, source },
      name,
    );
  }
  return fourVars(env, "torchrun", name, [
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
  ], undefined);
}

/**
 * Reads the launch description from an environment record. Looks for OpenMPI, then Hydra, then
 * SLURM, then torchrun-style variables; none of them gives {@link NO_LAUNCHER}. Throws
 * {@link LaunchEnvError} naming the variable when the chosen launcher's set is incomplete,
 * not a non-negative integer, or inconsistent (rank ≥ size, local rank ≥ local size, …).
 */
export function parseLaunchEnv(env: EnvRecord): LaunchInfo {
  if (has(env, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE")) {
    return fourVars(env, "openmpi", "OpenMPI mpirun", [
      "OMPI_COMM_WORLD_RANK",
      "OMPI_COMM_WORLD_SIZE",
      "OMPI_COMM_WORLD_LOCAL_RANK",
      "OMPI_COMM_WORLD_LOCAL_SIZE",
    ], "openmpi");
  }
  // srun --mpi=pmi2 sets PMI_RANK/PMI_SIZE but not Hydra's local variables: SLURM has those.
  const srunPmi = has(env, "SLURM_PROCID") && !has(env, "MPI_LOCALRANKID", "MPI_LOCALNRANKS");
  if (has(env, "PMI_RANK", "PMI_SIZE") && !srunPmi) {
    return fourVars(env, "hydra", "MPICH Hydra (mpiexec.mpich)", [
      "PMI_RANK",
      "PMI_SIZE",
      "MPI_LOCALRANKID",
      "MPI_LOCALNRANKS",
    ], "mpich");
  }
  if (has(env, "SLURM_PROCID")) return slurm(env);
  if (has(env, "WORLD_SIZE")) return torchrun(env);
  return NO_LAUNCHER;
}

/**
 * Every environment variable the communicators read: the launchers' (above), the MPI flavour
 * hints, and the project's own settings. A task run with `--allow-env=<list>` needs these names.
 */
export const LAUNCH_ENV_NAMES: readonly string[] = [
  "OMPI_COMM_WORLD_RANK",
  "OMPI_COMM_WORLD_SIZE",
  "OMPI_COMM_WORLD_LOCAL_RANK",
  "OMPI_COMM_WORLD_LOCAL_SIZE",
  "PMI_RANK",
  "PMI_SIZE",
  "PMI_FD",
  "PMI_PORT",
  "PMIX_RANK",
  "MPI_LOCALRANKID",
  "MPI_LOCALNRANKS",
  "SLURM_PROCID",
  "SLURM_STEP_NUM_TASKS",
  "SLURM_NTASKS",
  "SLURM_NPROCS",
  "SLURM_LOCALID",
  "SLURM_STEP_TASKS_PER_NODE",
  "SLURM_TASKS_PER_NODE",
  "SLURM_NODEID",
  "RANK",
  "WORLD_SIZE",
  "LOCAL_RANK",
  "LOCAL_WORLD_SIZE",
  "RESSL_MPI_LIB",
  "RESSL_COMM_TIMEOUT_S",
];

/**
 * The launch variables of this process ({@link LAUNCH_ENV_NAMES}), read one by one so that a task
 * with `--allow-env=<list>` works. Throws naming the flag when a variable that says how many
 * processes the job has cannot be read (each rank would otherwise train alone).
 */
export function readLaunchEnv(): EnvRecord {
  const env: Record<string, string | undefined> = {};
  const unreadable: string[] = [];
  for (const name of LAUNCH_ENV_NAMES) {
    try {
      env[name] = Deno.env.get(name);
    } catch {
      unreadable.push(name);
    }
  }
  const vital = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_PROCID", "WORLD_SIZE"];
  const missing = unreadable.filter((n) => vital.includes(n));
  if (missing.length > 0) {
    throw new LaunchEnvError(
      `Cannot tell whether this process is one rank of a job: no permission to read ` +
        `${missing.join(", ")} (run with --allow-env, or add ${unreadable.join(",")} to ` +
        `--allow-env=...)`,
    );
  }
  return env;
}
