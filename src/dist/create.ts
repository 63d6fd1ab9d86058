/**
 * Picking and creating the communicator of this process from its launcher's environment:
 * no launcher (or a job of one) → `single`; `mpirun`, `mpiexec.mpich`, `srun` → `mpi`. A
 * torchrun-style environment with several processes is refused with what to do instead, never
 * left to hang.
 *
 * @module
 */

import { MPI_LIB_ENV } from "../../ffi/mpi/load.ts";
import type { Comm } from "./comm.ts";
import {
  type EnvRecord,
  LaunchEnvError,
  type LaunchInfo,
  parseLaunchEnv,
  readLaunchEnv,
} from "./launch.ts";
import { createMpiComm } from "./mpi_comm.ts";
import { createSingleComm } from "./single.ts";

/** The environment variable holding the collective timeout in seconds. */
export const COMM_TIMEOUT_ENV = "RESSL_COMM_TIMEOUT_S";

/** Seconds a collective may wait for the other ranks before the job is aborted (default). */
export const DEFAULT_COMM_TIMEOUT_S = 300;

/** Which communicator to make: `auto` decides from the launcher. */
export type CommKind = "auto" | "single" | "mpi";

/** Options of {@link createComm}. */
export interface CreateCommOptions {
  /** Default `auto`. */
  kind?: CommKind;
  /** The environment to read (default: the process's launch variables, `readLaunchEnv()`). */
  env?: EnvRecord;
  /** Collective timeout in seconds (default `$RESSL_COMM_TIMEOUT_S`, else 300). */
  timeoutS?: number;
  /** MPI library to load (default `$RESSL_MPI_LIB`, else the launcher's engine). */
  library?: string;
  /** Largest element count per MPI call (default 2^31-1; tests use small ones). */
  maxCount?: number;
  /** Milliseconds a waiting collective polls without pausing (default 10; MPI only). */
  spinMs?: number;
  /** With OpenMPI, use libnbc's ring `MPI_Iallreduce` (default true; see `MpiCommOptions`). */
  ompiRingAllreduce?: boolean;
  /** Print each rank's pid and host at start (default: when size > 1; MPI only). */
  announce?: boolean;
  /** End the job on an uncaught error in any rank (default true; MPI only). */
  abortOnUncaughtError?: boolean;
}

/** Reads the collective timeout from `RESSL_COMM_TIMEOUT_S` (default 300 s). */
export function commTimeoutS(env: EnvRecord): number {
  const raw = env[COMM_TIMEOUT_ENV];
  if (raw === undefined || raw.trim() === "") return DEFAULT_COMM_TIMEOUT_S;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) {
    throw new RangeError(
      `Cannot read ${COMM_TIMEOUT_ENV}='${raw}': expected a number of seconds > 0`,
    );
  }
  return v;
}

/**
 * The communicator `kind` gives for a launch: `auto` is `single` for a job of one process and
 * `mpi` otherwise. Throws {@link LaunchEnvError} for a torchrun-style job of several processes
 * (nothing here can join its processes yet) and for `single` asked in a job of several.
 */
export function chooseCommKind(launch: LaunchInfo, kind: CommKind = "auto"): "single" | "mpi" {
  if (kind === "single" || (kind === "auto" && launch.size === 1)) {
    if (launch.size !== 1) {
      throw new LaunchEnvError(
        `Cannot use the single communicator in a job of ${launch.size} processes ` +
          `(${launch.source}): every process would train alone; use kind 'mpi' or 'auto'`,
      );
    }
    return "single";
  }
  if (launch.launcher === "torchrun" && launch.size > 1) {
    throw new LaunchEnvError(
      `This process was started torchrun-style (${launch.source}), but the communicators here ` +
        `need an MPI launcher to join ${launch.size} processes: start the job with ` +
        `'mpirun -np ${launch.size} deno run -A …' (OpenMPI) or 'mpirun.mpich -np ` +
        `${launch.size} …' (MPICH), or run one process without WORLD_SIZE`,
    );
  }
  if (kind !== "auto" && kind !== "mpi") {
    throw new RangeError(`Unknown communicator kind '${kind}': use auto, single or mpi`);
  }
  return "mpi";
}

/**
 * Creates this process's communicator (see {@link chooseCommKind}). `single` loads no library;
 * `mpi` initialises MPI (one communicator per process: dispose it at the end).
 */
export function createComm(opts: CreateCommOptions = {}): Comm {
  const env = opts.env ?? readLaunchEnv();
  const launch = parseLaunchEnv(env);
  const kind = chooseCommKind(launch, opts.kind ?? "auto");
  if (kind === "single") return createSingleComm(launch);
  const library = opts.library ?? (env[MPI_LIB_ENV]?.trim() || undefined);
  return createMpiComm({
    launch,
    library,
    timeoutS: opts.timeoutS ?? commTimeoutS(env),
    maxCount: opts.maxCount,
    spinMs: opts.spinMs,
    announce: opts.announce,
    ompiRingAllreduce: opts.ompiRingAllreduce,
    abortOnUncaughtError: opts.abortOnUncaughtError,
  });
}
