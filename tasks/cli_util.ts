/**
 * Helpers shared by the commands: the flags every task has the same way (`--device`,
 * `--threads`, `--data`), checks of input and output paths made before any work starts (an
 * output that is a folder, a file, read-only, or the input itself), and the exit status
 * convention (0 done, 1 error, 2 bad command line).
 *
 * @module
 */

import { existsSync, realpathSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { BackendName } from "../src/backend/select.ts";
import { StoppedError } from "../src/data/errors.ts";
import { listCheckpoints } from "../src/io/checkpoint.ts";
import { coresBound, type FlagSpec, UsageError } from "./cli_flags.ts";

export { UsageError };

/** Backend names of `--device`. */
export const DEVICES: readonly BackendName[] = ["auto", "cpu", "cuda", "reference"];

/** `--device`, as every task reads it. */
export const DEVICE_FLAG: FlagSpec = {
  name: "device",
  kind: "choice",
  value: "<d>",
  choices: DEVICES,
  default: "auto",
  help:
    "backend: auto (cuda on an NVIDIA GPU, else cpu where oneDNN is installed, else reference), cpu, cuda, reference",
};

/** `--threads`, as every task reads it (at most the cores of this machine). */
export const THREADS_FLAG: FlagSpec = {
  name: "threads",
  kind: "int",
  value: "<n>",
  min: 1,
  max: coresBound,
  help: "CPU threads of the oneDNN backend",
  defaultText: "all cores ($RESSL_THREADS)",
  env: "RESSL_THREADS",
};

/** `--data` of the evaluation tasks: the same folders as `train --data`. */
export const DATA_FLAG: FlagSpec = {
  name: "data",
  kind: "string",
  value: "<dir>",
  help: "a folder with the dataset's files (in it or in <dir>/<name>/), or your own images " +
    "(class subfolders; train/ + val/ subfolders, or 10 % held out)",
  defaultText: "data/ (Fashion-MNIST also Debian's copy); own-image checkpoints need it",
};

/** `--checkpoint` of the evaluation tasks. */
export const CHECKPOINT_FLAG: FlagSpec = {
  name: "checkpoint",
  kind: "string",
  value: "<file>",
  help: "training checkpoint, or a run folder (its newest checkpoint)",
};

/**
 * The checkpoint named by `--flag`: the file itself, or the newest checkpoint of a run folder.
 * Throws (exit 1) naming the path when it is missing or a folder without checkpoints.
 */
export function resolveCheckpoint(flag: string, path: string): string {
  let info;
  try {
    info = statSync(path);
  } catch {
    throw new Error(`Cannot load checkpoint '${path}': no such file (--${flag})`);
  }
  if (info.isFile()) return path;
  const newest = info.isDirectory() ? listCheckpoints(path).at(-1) : undefined;
  if (newest) return newest;
  throw new Error(
    `Cannot load checkpoint '${path}': not a file${
      info.isDirectory() ? " and not a run folder holding checkpoint-*.safetensors" : ""
    } (--${flag})`,
  );
}

/** Throws a {@link UsageError} naming `--flag` unless a file can be created in folder `dir`. */
export function checkWritableFolder(flag: string, dir: string, path: string): void {
  const probe = join(dir, `.ressl-write-probe-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`);
  try {
    Deno.openSync(probe, { write: true, createNew: true }).close();
  } catch (e) {
    throw new UsageError(
      `Invalid flag --${flag}: cannot write '${path}': folder '${dir}' is not writable (${
        (e as Error).message.split(":")[0]
      })`,
    );
  }
  Deno.removeSync(probe);
}

/**
 * Checks that an output file can be written later: its folder exists and is writable, and the
 * path is not a folder. Run before the work so a long evaluation does not fail at the end.
 */
export function checkOutputPath(flag: string, path: string): void {
  const dir = dirname(path);
  if (!existsSync(dir)) {
    throw new UsageError(`Invalid flag --${flag}: folder '${dir}' of '${path}' does not exist`);
  }
  if (!statSync(dir).isDirectory()) {
    throw new UsageError(`Invalid flag --${flag}: '${dir}' is a file, expected a folder`);
  }
  if (existsSync(path) && statSync(path).isDirectory()) {
    throw new UsageError(`Invalid flag --${flag}: '${path}' is a folder, expected a file name`);
  }
  checkWritableFolder(flag, dir, path);
}

/**
 * Checks that an output folder (a run folder) can be written: it is a writable folder, or does
 * not exist yet and its nearest existing parent is a writable folder. Nothing is created.
 */
export function checkOutputFolder(flag: string, path: string): void {
  let dir = path;
  while (!existsSync(dir)) {
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  if (!statSync(dir).isDirectory()) {
    throw new UsageError(
      dir === path
        ? `Invalid flag --${flag}: '${path}' is a file, expected a folder`
        : `Invalid flag --${flag}: cannot create '${path}': '${dir}' is a file`,
    );
  }
  checkWritableFolder(flag, dir, path);
}

/** Throws a {@link UsageError} when `out` (of `--flag`) is the same file as one of `inputs`. */
export function checkNotInput(flag: string, out: string, inputs: Record<string, string>): void {
  if (!existsSync(out)) return;
  const real = realpathSync(out);
  for (const [inFlag, path] of Object.entries(inputs)) {
    if (existsSync(path) && realpathSync(path) === real) {
      throw new UsageError(
        `Invalid flag --${flag}: '${out}' is the --${inFlag} file; writing it would overwrite the input`,
      );
    }
  }
}

/**
 * Runs a command's `main` and exits: its return value, 2 for a {@link UsageError}, 130 for a
 * {@link StoppedError} (a download stopped by SIGINT/SIGTERM), 1 for any other error (message on
 * stderr).
 */
export async function runCommand(main: (args: string[]) => Promise<number>): Promise<never> {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (e) {
    console.error((e as Error).message);
    code = e instanceof UsageError ? 2 : e instanceof StoppedError ? 130 : 1;
  }
  Deno.exit(code);
}
