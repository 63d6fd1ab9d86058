/**
 * `--nproc N`: running the same command as an MPI job of N processes on this machine, through the
 * MPI launcher that is installed: OpenMPI's `mpirun` (with `--bind-to none`, since OpenMPI pins
 * each rank to one core when N ≤ 2 and the rank's oneDNN threads would share it; `--oversubscribe`
 * when N exceeds the cores; `--allow-run-as-root` as root) or MPICH's `mpirun.mpich`. Each rank
 * finds its place from the launcher's environment, as under a hand-typed `mpirun`.
 *
 * @module
 */

import { existsSync } from "node:fs";

/** The launcher command of a local job. */
export interface LocalJobCommand {
  /** `openmpi` or `mpich`. */
  engine: "openmpi" | "mpich";
  /** The launcher's path. */
  launcher: string;
  /** Launcher flags, `-np N` included, then the program and its arguments. */
  args: string[];
}

/** Facts about this machine {@link localJobCommand} decides from (injectable for tests). */
export interface LocalMachine {
  /** The full path of an executable on the PATH, or undefined. */
  which: (name: string) => string | undefined;
  /** Logical cores. */
  cores: number;
  /** Whether this process runs as root (uid 0). */
  root: boolean;
}

/** The executables on `PATH` (`dirs`), as {@link LocalMachine.which}. */
export function whichOnPath(path = Deno.env.get("PATH") ?? "/usr/bin:/bin"): LocalMachine["which"] {
  const dirs = path.split(":").filter((d) => d !== "");
  return (name) => dirs.map((d) => `${d}/${name}`).find((p) => existsSync(p));
}

/** This machine, as the process sees it. */
export function thisMachine(): LocalMachine {
  return {
    which: whichOnPath(),
    cores: navigator.hardwareConcurrency || 1,
    root: Deno.uid?.() === 0,
  };
}

/**
 * The command that runs `program` (executable first) as `np` processes here. OpenMPI is preferred
 * (`mpirun.openmpi`, else a `mpirun` that is OpenMPI's), then MPICH (`mpirun.mpich`, `mpiexec.mpich`).
 * Throws naming what to install when neither is found.
 */
export function localJobCommand(
  np: number,
  program: readonly string[],
  machine: LocalMachine,
  mpirunIsOpenMpi: (path: string) => boolean = isOpenMpiLauncher,
): LocalJobCommand {
  if (!Number.isInteger(np) || np < 1) {
    throw new RangeError(`Cannot start ${np} processes: --nproc must be an integer >= 1`);
  }
  const generic = machine.which("mpirun");
  const ompi = machine.which("mpirun.openmpi") ??
    (generic && mpirunIsOpenMpi(generic) ? generic : undefined);
  if (ompi) {
    const flags = ["--bind-to", "none"];
    if (np > machine.cores) flags.push("--oversubscribe");
    if (machine.root) flags.push("--allow-run-as-root");
    return { engine: "openmpi", launcher: ompi, args: [...flags, "-np", String(np), ...program] };
  }
  const mpich = machine.which("mpirun.mpich") ?? machine.which("mpiexec.mpich") ??
    machine.which("mpiexec.hydra") ?? generic;
  if (mpich) return { engine: "mpich", launcher: mpich, args: ["-np", String(np), ...program] };
  throw new Error(
    `Cannot start ${np} processes: no MPI launcher found (mpirun.openmpi, mpirun, mpirun.mpich); ` +
      `install OpenMPI or MPICH (Debian/Ubuntu: apt-get install openmpi-bin, or mpich; ` +
      `scripts/setup_mpi.sh installs both)`,
  );
}

/** Whether the launcher at `path` is OpenMPI's (its `--version` says "Open MPI"). */
export function isOpenMpiLauncher(path: string): boolean {
  try {
    const out = new Deno.Command(path, { args: ["--version"], stdout: "piped", stderr: "piped" })
      .outputSync();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return /open mpi|open-mpi|openrte/i.test(text);
  } catch {
    return false;
  }
}

/**
 * Runs `program` as `np` processes here and returns the job's exit status. SIGINT and SIGTERM are
 * passed on to the launcher (which forwards them to every rank: each checkpoints and stops).
 */
export async function runLocalJob(
  np: number,
  program: readonly string[],
  opts: { machine?: LocalMachine; env?: Record<string, string>; say?: (line: string) => void } = {},
): Promise<number> {
  const cmd = localJobCommand(np, program, opts.machine ?? thisMachine());
  opts.say?.(`starting ${np} processes: ${cmd.launcher} ${cmd.args.join(" ")}`);
  const child = new Deno.Command(cmd.launcher, {
    args: cmd.args,
    env: opts.env,
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const signals = ["SIGINT", "SIGTERM"] as const;
  const forward = signals.map((sig) => {
    const f = () => {
      try {
        child.kill(sig);
      } catch { /* already gone */ }
    };
    Deno.addSignalListener(sig, f);
    return [sig, f] as const;
  });
  try {
    return (await child.status).code;
  } finally {
    for (const [sig, f] of forward) Deno.removeSignalListener(sig, f);
  }
}
