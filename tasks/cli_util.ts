/**
 * Helpers shared by the `eval`, `export` and `embed` commands: flag parsing with `node:util`
 * parseArgs, numeric flag checks, output-path checks made before any work starts, and the exit
 * status convention (0 done, 1 error, 2 bad command line).
 *
 * @module
 */

import { existsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import type { BackendName } from "../src/backend/select.ts";

/** A bad command line: the command prints the message and exits with status 2. */
export class UsageError extends Error {}

/** Option table of `node:util` parseArgs. */
export type FlagTable = Record<string, { type: "string" | "boolean"; short?: string }>;

/** Parses `args` strictly (unknown flags and positionals are usage errors). */
export function parseFlags(
  args: string[],
  options: FlagTable,
): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as Record<
      string,
      string | boolean | undefined
    >;
  } catch (e) {
    throw new UsageError(`Invalid command line: ${(e as Error).message} (see --help)`);
  }
}

/** An integer flag >= `min`, or undefined when absent. */
export function intFlag(flag: string, v: unknown, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !Number.isInteger(n) || n < min) {
    throw new UsageError(`Invalid flag --${flag}: expected an integer >= ${min}, got '${v}'`);
  }
  return n;
}

/** A finite number flag > 0, or undefined when absent. */
export function positiveFlag(flag: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`Invalid flag --${flag}: expected a number > 0, got '${v}'`);
  }
  return n;
}

/** A string flag restricted to `choices` (default `fallback`). */
export function choiceFlag<T extends string>(
  flag: string,
  v: unknown,
  choices: readonly T[],
  fallback?: T,
): T {
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new UsageError(`Missing flag --${flag}: expected one of ${choices.join(", ")}`);
  }
  if (!choices.includes(v as T)) {
    throw new UsageError(
      `Invalid flag --${flag}: expected one of ${choices.join(", ")}, got '${v}'`,
    );
  }
  return v as T;
}

/** A required string flag. */
export function requiredFlag(flag: string, v: unknown, what: string): string {
  if (typeof v !== "string" || v === "") {
    throw new UsageError(`Missing flag --${flag} <${what}> (see --help)`);
  }
  return v;
}

/** Backend names of `--device`. */
export const DEVICES: readonly BackendName[] = ["auto", "cpu", "cuda", "reference"];

/** Checks that the checkpoint named by `--flag` exists and is a file (before loading backends). */
export function checkInputFile(flag: string, path: string): void {
  let info;
  try {
    info = statSync(path);
  } catch {
    throw new Error(`Cannot load checkpoint '${path}': no such file (--${flag})`);
  }
  if (!info.isFile()) throw new Error(`Cannot load checkpoint '${path}': not a file (--${flag})`);
}

/**
 * Checks that an output file can be written later: its folder exists and the path is not a
 * folder. Run before the work so a long evaluation does not fail at the end.
 */
export function checkOutputPath(flag: string, path: string): void {
  const dir = dirname(path);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UsageError(`Invalid flag --${flag}: folder '${dir}' of '${path}' does not exist`);
  }
  if (existsSync(path) && statSync(path).isDirectory()) {
    throw new UsageError(`Invalid flag --${flag}: '${path}' is a folder, expected a file name`);
  }
}

/**
 * Runs a command's `main` and exits: its return value, 2 for a {@link UsageError}, 1 for any
 * other error (message on stderr).
 */
export async function runCommand(main: (args: string[]) => Promise<number>): Promise<never> {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (e) {
    console.error((e as Error).message);
    code = e instanceof UsageError ? 2 : 1;
  }
  Deno.exit(code);
}
