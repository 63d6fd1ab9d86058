/**
 * Running a test worker as an MPI job of several ranks (OpenMPI's `mpirun.openmpi`, MPICH's
 * `mpirun.mpich`) or as a plain process, with a hard limit so that a broken test cannot hang CI:
 * past the limit the launcher gets SIGTERM, then SIGKILL.
 *
 * @module
 */

import { existsSync } from "node:fs";

/** An MPI engine as the tests start it. */
export interface Engine {
  /** `openmpi` or `mpich`. */
  readonly name: "openmpi" | "mpich";
  /** The launcher's full path, or `undefined` where it is not installed. */
  readonly launcher: string | undefined;
  /** Launcher flags before the program (rank count excluded). */
  readonly flags: readonly string[];
}

function onPath(name: string): string | undefined {
  const dirs = (Deno.env.get("PATH") ?? "/usr/bin").split(":");
  return dirs.map((d) => `${d}/${name}`).find((p) => existsSync(p));
}

/**
 * The engines: OpenMPI with `--oversubscribe` (more ranks than cores), `--bind-to none` (it pins
 * each rank to one core when np ≤ 2, which would confine oneDNN's threads) and
 * `--allow-run-as-root` (CI runs as root); MPICH's Hydra needs none of these.
 */
export const ENGINES: readonly Engine[] = [
  {
    name: "openmpi",
    launcher: onPath("mpirun.openmpi"),
    flags: ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none"],
  },
  { name: "mpich", launcher: onPath("mpirun.mpich"), flags: [] },
];

/** A test name that says why it is skipped when the engine's launcher is missing. */
export function engineTestName(engine: Engine, what: string): string {
  return engine.launcher === undefined
    ? `${what} [${engine.name}] (skipped: ${engine.name}'s launcher is not installed; run ` +
      `bash scripts/setup_mpi.sh)`
    : `${what} [${engine.name}]`;
}

/** What a finished job left. */
export interface JobResult {
  /** Exit status (128 + signal where the launcher was killed). */
  code: number;
  /** stdout and stderr together. */
  output: string;
  /** Wall-clock seconds. */
  seconds: number;
}

/** The path of a file beside this one. */
export function here(file: string): string {
  return new URL(file, import.meta.url).pathname;
}

const repoRoot = new URL("../../", import.meta.url).pathname;

/**
 * Runs `deno run <denoFlags> <worker> <args>` under `engine` with `np` ranks (or directly where
 * `engine` is `undefined`), with `env` added, killed after `limitS` seconds.
 */
export async function runJob(opts: {
  engine?: Engine;
  np?: number;
  worker: string;
  args?: string[];
  env?: Record<string, string>;
  denoFlags?: string[];
  limitS: number;
}): Promise<JobResult> {
  const deno = [Deno.execPath(), "run", ...(opts.denoFlags ?? ["-A"]), opts.worker];
  let cmd: string[];
  if (opts.engine === undefined) {
    cmd = deno;
  } else {
    if (opts.engine.launcher === undefined) throw new Error(`${opts.engine.name}: no launcher`);
    cmd = [opts.engine.launcher, ...opts.engine.flags, "-np", String(opts.np ?? 2), ...deno];
  }
  const start = performance.now();
  const child = new Deno.Command(cmd[0], {
    args: [...cmd.slice(1), ...(opts.args ?? [])],
    cwd: repoRoot,
    env: { OMPI_ALLOW_RUN_AS_ROOT: "1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1", ...opts.env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let killer: ReturnType<typeof setTimeout> | undefined;
  const term = setTimeout(() => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    killer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, 5000);
  }, opts.limitS * 1000);
  const out = await child.output();
  clearTimeout(term);
  if (killer !== undefined) clearTimeout(killer);
  const text = new TextDecoder();
  return {
    code: out.code,
    output: text.decode(out.stdout) + text.decode(out.stderr),
    seconds: (performance.now() - start) / 1000,
  };
}
