/**
 * The robustness harness: each case builds bad input in a fresh temporary folder, runs a command
 * line entry point (or calls a function) on it, and checks that it fails the way a user should
 * see: the exit code (or the error's name), key words of the message, no stack trace, no hang,
 * and no partial output left behind (the folder holds exactly what it held before, byte for byte,
 * plus the files the case says a failure keeps, such as a download's `.part`). See README.md
 * beside this file.
 */
import assert from "node:assert/strict";

/** What a case's setup hands to its run: e.g. a server's base URL and how to stop it. */
export interface Setup {
  /** A base URL (a loopback server the case started). */
  url?: string;
  /** Stops what setup started (servers); called after the run, pass or fail. */
  close?: () => Promise<void>;
}

/** Run a command line: `deno run <permissions> <script> ...args` in the case's folder, with the
 * project's deno.json and, for a task's script, the permissions its deno.json task declares (as
 * `deno task` runs it; `--allow-all` for other scripts). */
export interface CliRun {
  /** The entry point, relative to the repository root (e.g. `src/data/inspect.ts`). */
  cli: string;
  args: (dir: string, setup: Setup) => string[];
  /** Extra environment variables (e.g. short download timeouts). */
  env?: Record<string, string>;
}

/** Call a function; it must throw (or reject). */
export interface CallRun {
  call: (dir: string, setup: Setup) => unknown;
}

/** What the failure must look like. */
export interface Expect {
  /** Exit code of a command line run (1: bad data, 2: usage). */
  exitCode?: number;
  /** `name` of the error a call throws (e.g. "DataError", "Error"). */
  errorName?: string;
  /** Every pattern must match the message (a run's stderr + stdout). */
  keywords: RegExp[];
  /** Paths (relative to the folder, `/`-separated) the failure must leave beside the input
   * (e.g. a download's `.part`); any other new or missing path fails the case. */
  created?: string[];
}

/** One robustness case. */
export interface RobustnessCase {
  /** Unique, with the issue it comes from: "14.5 IDX: gzip bomb stops at the declared size". */
  name: string;
  /** Writes the bad input under `dir` (empty, created for the case); may start a server. */
  setup: (dir: string) => Promise<Setup | void> | Setup | void;
  run: CliRun | CallRun;
  expect: Expect;
  /** The case fails when the run takes longer (a hang), default 30 s. */
  timeoutMs?: number;
}

const ROOT = new URL("../../", import.meta.url).pathname;

/** Every path under `dir`, relative, sorted; folders end in `/`. */
export function listTree(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(`${dir}/${prefix}`)) {
    const rel = `${prefix}${e.name}`;
    if (e.isDirectory) out.push(`${rel}/`, ...listTree(dir, `${rel}/`));
    else out.push(rel);
  }
  return out.sort();
}

/** A digest of every file under `dir` (path relative, as {@link listTree} names it). */
export async function digestTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const rel of listTree(dir)) {
    if (rel.endsWith("/")) continue;
    const hash = await crypto.subtle.digest("SHA-256", await Deno.readFile(`${dir}/${rel}`));
    out.set(rel, Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join(""));
  }
  return out;
}

/** A stack trace in text: V8's "    at f (file:1:2)" lines or Deno's uncaught-error banner. */
const STACK = /^\s+at .+[:(]|Uncaught|Stack backtrace/m;

/**
 * The permission flags of the deno.json task whose script is `cli` (so a case also proves that a
 * user's `deno task` has every permission its failure path needs), else `--allow-all` (a module's
 * own command line, such as `src/data/download.ts`).
 */
export function permissionsOf(cli: string): string[] {
  const tasks = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).tasks as Record<
    string,
    string | { command: string }
  >;
  for (const t of Object.values(tasks)) {
    const words = (typeof t === "string" ? t : t.command).trim().split(/\s+/);
    if (words[0] === "deno" && words[1] === "run" && words.at(-1) === cli) {
      return words.slice(2, -1);
    }
  }
  return ["--allow-all"];
}

async function runCli(run: CliRun, dir: string, setup: Setup, timeoutMs: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...permissionsOf(run.cli),
      `--config=${ROOT}deno.json`,
      `${ROOT}${run.cli}`,
      ...run.args(dir, setup),
    ],
    cwd: dir,
    env: { NO_COLOR: "1", ...run.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  assert.ok(out.signal === null, `killed after ${timeoutMs} ms (hung?); output:\n${text}`);
  return { code: out.code, text };
}

async function runCall(run: CallRun, dir: string, setup: Setup, timeoutMs: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hung for ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([Promise.resolve().then(() => run.call(dir, setup)), limit]);
  } catch (err) {
    if (err instanceof Error && err.message === `hung for ${timeoutMs} ms`) throw err;
    return err as Error;
  } finally {
    clearTimeout(timer);
  }
  assert.fail("the call succeeded; it was expected to fail");
}

/** Runs one case and asserts everything its `expect` says (see the module doc). */
export async function runCase(c: RobustnessCase): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "robustness_" });
  let setup: Setup = {};
  try {
    setup = (await c.setup(dir)) ?? {};
    const before = listTree(dir);
    const contents = await digestTree(dir);
    const timeoutMs = c.timeoutMs ?? 30_000;
    let message: string;
    if ("cli" in c.run) {
      const { code, text } = await runCli(c.run, dir, setup, timeoutMs);
      message = text;
      assert.equal(code, c.expect.exitCode ?? 1, `exit code; output:\n${text}`);
      assert.doesNotMatch(text, STACK, "a stack trace was printed");
    } else {
      const err = await runCall(c.run, dir, setup, timeoutMs);
      message = err.message;
      if (c.expect.errorName) assert.equal(err.name, c.expect.errorName, `error: ${err.stack}`);
      assert.doesNotMatch(message, STACK, "the message holds a stack trace");
    }
    for (const k of c.expect.keywords) assert.match(message, k);
    const after = listTree(dir);
    const want = [...new Set([...before, ...(c.expect.created ?? [])])].sort();
    assert.deepEqual(after, want, "files after the failure (partial output left or input lost?)");
    const now = await digestTree(dir);
    const changed = [...contents.keys()].filter((rel) => now.get(rel) !== contents.get(rel));
    assert.deepEqual(changed, [], "files the failure rewrote (a run folder's log or checkpoint?)");
  } finally {
    await setup.close?.();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Registers every case as a `Deno.test` named `robustness <case name>`. */
export function registerCases(cases: readonly RobustnessCase[]): void {
  const names = new Set<string>();
  for (const c of cases) {
    assert.ok(!names.has(c.name), `duplicate robustness case name '${c.name}'`);
    names.add(c.name);
    Deno.test(`robustness ${c.name}`, () => runCase(c));
  }
}
