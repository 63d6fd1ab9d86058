/**
 * File and process helpers of `deno task bench:fmnist` (bench/fmnist.ts): result files written
 * atomically, commands run from the repository root with their output shown, and the machine
 * description of the report.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { writeFileAtomic } from "../src/io/atomic.ts";
import { quote } from "./fmnist_report.ts";

/** The repository root (commands run there). */
export const REPO: string = new URL("..", import.meta.url).pathname;

/** Whether `path` exists (other errors than "not found" are thrown). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Reads a JSON result file, naming it when it cannot. */
export async function readJson<T>(path: string): Promise<T> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (e) {
    throw new Error(`Cannot read result file '${path}': ${(e as Error).message}`);
  }
}

/** Writes a JSON result file atomically, creating its folder. */
export async function writeJson(path: string, value: unknown): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** Runs a command with inherited output; throws naming it when it fails. */
export async function run(cmd: string[], what: string): Promise<void> {
  console.log(`\n== ${what}\n$ ${cmd.map(quote).join(" ")}`);
  let status;
  try {
    status = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      cwd: REPO,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
  } catch (e) {
    throw new Error(`Cannot start ${what} (${cmd[0]}): ${(e as Error).message}`);
  }
  if (!status.success) {
    throw new Error(`${what} failed with exit status ${status.code}: ${cmd.map(quote).join(" ")}`);
  }
}

/** A command's standard output, or "unavailable". */
export async function capture(cmd: string[]): Promise<string> {
  try {
    const r = await new Deno.Command(cmd[0], { args: cmd.slice(1), stderr: "null" }).output();
    return new TextDecoder().decode(r.stdout).trim();
  } catch {
    return "unavailable";
  }
}

/** The PNG files of a folder, sorted. */
export async function pngs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".png")) out.push(join(dir, e.name));
  }
  return out.sort();
}

/** The machine description of the report: cores, CPU model, memory, OS, Deno and V8. */
export async function machine(): Promise<Record<string, string>> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const model = cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown";
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const kb = Number(meminfo.match(/^MemTotal:\s*(\d+)/m)?.[1] ?? NaN);
  return {
    cores: String(navigator.hardwareConcurrency),
    cpu: model,
    memory: Number.isFinite(kb) ? `${(kb / 1024 / 1024).toFixed(1)} GiB` : "unknown",
    os: await capture(["uname", "-srm"]),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
  };
}
