/**
 * Table-driven command lines: one {@link CommandSpec} per task lists every flag once (type, bounds,
 * default, help text, and for `train` the configuration key it sets), and both the parser
 * ({@link parseCommand}, over `node:util` parseArgs) and the `--help` text (`help.ts`) are made
 * from it, so they cannot disagree. Errors are {@link UsageError}s that name the flag and what it
 * accepts.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** A bad command line: the command prints the message and exits with status 2. */
export class UsageError extends Error {}

/** The value types of a flag. */
export type FlagKind = "string" | "int" | "number" | "boolean" | "choice" | "list";

/** One flag of a command. */
export interface FlagSpec {
  /** Long name without the dashes (`batch-size`). */
  name: string;
  /** How the value is read and checked. */
  kind: FlagKind;
  /** The value's placeholder in the help (`<n>`, `<dir>`). */
  value?: string;
  /** One line (or a few) of help. */
  help: string;
  /** The value when the flag is absent (also shown in the help). */
  default?: string | number | boolean;
  /** Shown in the help instead of `default` (e.g. "all cores", "from the preset"). */
  defaultText?: string;
  /** `choice`: the values accepted. */
  choices?: readonly string[];
  /** `int` / `number`: the smallest value accepted. */
  min?: number;
  /** `number`: the value must be greater than `min` (not equal). */
  exclusiveMin?: boolean;
  /** `int`: the largest value accepted, and why (e.g. "the 2 cores of this machine"). */
  max?: () => { value: number; why: string };
  /** `train`: the configuration key this flag sets (`optim.lr`). */
  configKey?: string;
  /** The value may be left out (`--resume` alone): it is then `""`. */
  optionalValue?: boolean;
  /** One-letter alias. */
  short?: string;
  /**
   * An environment variable that stands for the flag when it is absent (`RESSL_THREADS`, read by
   * the backend itself): checked like the flag, so that it cannot bypass the flag's bounds.
   */
  env?: string;
}

/** A command: its usage line, description, flags, positionals and examples. */
export interface CommandSpec {
  /** The task name (`train`). */
  name: string;
  /** What follows `deno task <name>` in the usage line. */
  usage: string;
  /** A paragraph on what the command does. */
  description: string;
  /** The flags, in help order. */
  flags: readonly FlagSpec[];
  /** Positional arguments (name and help); none when absent. */
  positionals?: readonly { name: string; help: string }[];
  /** Command lines shown under "Examples". */
  examples?: readonly string[];
  /** Flags that are gone, with the hint a user gets when giving one. */
  removed?: Readonly<Record<string, string>>;
  /** Text printed after the flags (e.g. configuration keys). */
  epilogue?: () => string;
}

/** The parsed command line. */
export interface ParsedCommand {
  /** Values by flag name (absent flags take their `default`, or stay undefined). */
  values: Record<string, string | number | boolean | number[] | undefined>;
  /** Flags given on the command line (names), in order. */
  given: string[];
  /** Positional arguments. */
  positionals: string[];
}

/** Number of CPU cores of this machine (no permission needed). */
export function cores(): number {
  return Math.max(1, navigator.hardwareConcurrency ?? 1);
}

/** A bound of `--threads` / `--workers`: the cores of this machine. */
export function coresBound(): { value: number; why: string } {
  const n = cores();
  return { value: n, why: `the ${n} core${n === 1 ? "" : "s"} of this machine` };
}

/** Reads one value of `flag`; throws a {@link UsageError} naming the flag. */
export function readValue(
  flag: FlagSpec,
  raw: string | boolean,
): string | number | boolean | number[] {
  const bad = (expected: string): never => {
    throw new UsageError(`Invalid flag --${flag.name}: expected ${expected}, got '${raw}'`);
  };
  switch (flag.kind) {
    case "boolean":
      return raw === true;
    case "string":
      if (raw === "" && !flag.optionalValue) bad("a value");
      return String(raw);
    case "choice": {
      const choices = flag.choices ?? [];
      if (!choices.includes(String(raw))) bad(`one of ${choices.join(", ")}`);
      return String(raw);
    }
    case "int": {
      const min = flag.min ?? 0;
      const n = Number(raw);
      if (typeof raw !== "string" || raw.trim() === "" || !Number.isSafeInteger(n) || n < min) {
        bad(`an integer >= ${min}`);
      }
      const max = flag.max?.();
      if (max && n > max.value) {
        throw new UsageError(
          `Invalid flag --${flag.name}: ${n} is more than ${max.why} (at most ${max.value})`,
        );
      }
      return n;
    }
    case "number": {
      const min = flag.min ?? 0;
      const n = Number(raw);
      const ok = typeof raw === "string" && raw.trim() !== "" && Number.isFinite(n) &&
        (flag.exclusiveMin ? n > min : n >= min);
      if (!ok) bad(`a number ${flag.exclusiveMin ? ">" : ">="} ${min}`);
      return n;
    }
    case "list": {
      const parts = String(raw).split(",").map((s) => s.trim());
      const nums = parts.map(Number);
      if (parts.some((p) => p === "") || !nums.every((n) => Number.isFinite(n))) {
        bad("numbers separated by commas (e.g. 0.5,0.5,0.5)");
      }
      return nums;
    }
  }
}

/**
 * Parses `args` against `spec`. Returns null when `--help` (or `-h`) is given. Unknown flags,
 * missing values, values out of range and removed flags are {@link UsageError}s naming the flag.
 */
export function parseCommand(spec: CommandSpec, args: readonly string[]): ParsedCommand | null {
  const byName = new Map(spec.flags.map((f) => [f.name, f]));
  for (const a of args) {
    if (a === "--") break;
    const name = a.startsWith("--") ? a.slice(2).split("=")[0] : "";
    if (name && spec.removed?.[name] !== undefined) {
      throw new UsageError(`Invalid flag --${name}: ${spec.removed[name]}`);
    }
  }
  // A flag with an optional value given alone (or before another flag) means "".
  const argv = args.flatMap((a, i) => {
    const f = a.startsWith("--") ? byName.get(a.slice(2)) : undefined;
    const alone = i + 1 === args.length || args[i + 1].startsWith("-");
    return f?.optionalValue && alone ? [a, ""] : [a];
  });
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const f of spec.flags) {
    options[f.name] = { type: f.kind === "boolean" ? "boolean" : "string" };
    if (f.short) options[f.name].short = f.short;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options,
      strict: true,
      allowPositionals: (spec.positionals?.length ?? 0) > 0,
      tokens: true,
    });
  } catch (e) {
    throw new UsageError(`Invalid command line: ${(e as Error).message} (see --help)`);
  }
  if (parsed.values.help) return null;
  const given: string[] = [];
  for (const t of parsed.tokens ?? []) {
    if (t.kind === "option" && !given.includes(t.name)) given.push(t.name);
  }
  const values: ParsedCommand["values"] = {};
  for (const f of spec.flags) {
    const raw = (parsed.values as Record<string, string | boolean | undefined>)[f.name];
    values[f.name] = raw === undefined ? f.default : readValue(f, raw);
    if (raw === undefined && f.env) checkEnv(f, f.env);
  }
  return { values, given, positionals: parsed.positionals };
}

/** Checks the environment variable `name` that stands for absent `flag` as the flag's value. */
function checkEnv(flag: FlagSpec, name: string): void {
  let raw: string | undefined;
  try {
    raw = Deno.env.get(name);
  } catch {
    return; // not readable under this task's permissions: then nothing else reads it either
  }
  if (raw === undefined || raw === "") return;
  try {
    readValue(flag, raw);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    throw new UsageError(
      e.message.replace(
        `Invalid flag --${flag.name}:`,
        `Invalid ${name}='${raw}' (--${flag.name}):`,
      ),
    );
  }
}

/** A required string flag's value; a {@link UsageError} naming it when absent. */
export function required(spec: CommandSpec, parsed: ParsedCommand, name: string): string {
  const v = parsed.values[name];
  if (typeof v !== "string" || v === "") {
    const f = spec.flags.find((x) => x.name === name);
    throw new UsageError(`Missing flag --${name} ${f?.value ?? "<value>"} (see --help)`);
  }
  return v;
}
