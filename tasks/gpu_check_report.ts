/**
 * Output of `deno task gpu-check`: a log that goes to stdout and to `<out>/gpu-check.log` line by
 * line (a run cut short by a timeout still leaves everything it printed), the rows of the final
 * table, and the child `deno test` run of the conformance suite with its counts.
 *
 * @module
 */

import { join } from "node:path";

/** Prints and appends to the run's log file. */
export class Log {
  readonly #file: Deno.FsFile;
  readonly #t0 = performance.now();

  constructor(readonly dir: string) {
    Deno.mkdirSync(dir, { recursive: true });
    this.#file = Deno.openSync(join(dir, "gpu-check.log"), {
      create: true,
      write: true,
      truncate: true,
    });
  }

  /** Seconds since the run started. */
  get seconds(): number {
    return (performance.now() - this.#t0) / 1000;
  }

  /** One line, to stdout and the log. */
  line(text = ""): void {
    console.log(text);
    this.#file.writeSync(new TextEncoder().encode(text + "\n"));
  }

  /** A section heading with the elapsed time. */
  section(title: string): void {
    this.line();
    this.line(`== ${title} (t = ${this.seconds.toFixed(1)} s)`);
  }

  /** Writes `<dir>/<name>` (JSON for objects). */
  save(name: string, value: unknown): void {
    const text = typeof value === "string" ? value : JSON.stringify(value, null, 2) + "\n";
    Deno.writeTextFileSync(join(this.dir, name), text);
  }

  close(): void {
    this.#file.close();
  }
}

/** One row of the final table: what was checked, the value, and whether it passed. */
export interface Row {
  check: string;
  value: string;
  ok: boolean | null;
}

/** The final table as Markdown (`ok` null: informational). */
export function table(rows: readonly Row[]): string {
  const mark = (ok: boolean | null) => (ok === null ? "" : ok ? "ok" : "FAIL");
  const lines = ["| check | result | |", "|---|---|---|"];
  for (const r of rows) lines.push(`| ${r.check} | ${r.value} | ${mark(r.ok)} |`);
  return lines.join("\n");
}

/** Counts of a `deno test` run. */
export interface TestCounts {
  passed: number;
  failed: number;
  ignored: number;
  /** Names of failed tests. */
  failures: string[];
  /** True when the run was killed at its time limit. */
  timedOut: boolean;
  seconds: number;
}

/** Reads the counts from `deno test` output (NO_COLOR). */
export function parseTestOutput(text: string): Omit<TestCounts, "timedOut" | "seconds"> {
  const failures = [...text.matchAll(/^(.*) \.\.\. FAILED/gm)].map((m) => m[1].trim());
  let passed = 0, failed = 0, ignored = 0;
  for (const m of text.matchAll(/(\d+) passed \| (\d+) failed(?: \| (\d+) ignored)?/g)) {
    passed += Number(m[1]);
    failed += Number(m[2]);
    ignored += Number(m[3] ?? 0);
  }
  return { passed, failed, ignored, failures: [...new Set(failures)] };
}

/**
 * Runs `deno test` on `files` in a child process with `env` added, writing its output to
 * `<log.dir>/<name>.log`, killed after `timeoutMs`.
 */
export async function runTests(
  log: Log,
  name: string,
  files: string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<TestCounts> {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    // node_modules as it is (on the GPU machine: the vendored fast-check, nothing to install).
    args: [
      "test",
      "--allow-all",
      "--no-check",
      "--cached-only",
      "--node-modules-dir=manual",
      ...files,
    ],
    env: { ...env, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  const text = dec.decode(out.stdout) + dec.decode(out.stderr);
  log.save(`${name}.log`, text);
  const counts = parseTestOutput(text);
  if (counts.passed + counts.failed === 0 && !timedOut && !out.success) {
    // It did not get to run any test (a module failed to load): say why.
    counts.failures.push(text.trim().split("\n").slice(-3).join(" | "));
    counts.failed = 1;
  }
  return { ...counts, timedOut, seconds: (performance.now() - t0) / 1000 };
}
