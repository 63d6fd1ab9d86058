/**
 * The child processes of `bench/profile.ts`: our profiled run (`bench/profile_run.ts`, optionally
 * under V8's `--trace-gc` or oneDNN's verbose log) and PyTorch's (`bench/profile_torch.py`), with
 * the lines between their `@@begin` and `@@end` markers parsed.
 *
 * @module
 */

import type { ProfileRunOptions, ProfileRunResult } from "./profile_run.ts";
import { parseVerboseLine, type VerboseExec } from "./onednn_verbose.ts";

const RUN = new URL("./profile_run.ts", import.meta.url).pathname;
const TORCH = new URL("./profile_torch.py", import.meta.url).pathname;

/** GC pauses of the main isolate during the measured steps. */
export interface GcSummary {
  scavenges: number;
  markCompacts: number;
  pauseMs: number;
}

/** What one child produced. */
export interface ChildOutput<R> {
  result: R;
  /** oneDNN primitives executed between the markers (with ONEDNN_VERBOSE=1). */
  verbose: VerboseExec[];
  /** Main-isolate GC between the markers (with --trace-gc). */
  gc?: GcSummary;
}

/**
 * One run of `tree`'s `bench/profile_run.ts` (default: this checkout) with options `o`, plain
 * (no --trace-gc, no verbose log): its result. How `bench/train_path.ts` times our isolated step
 * and `bench/before_after.ts` compares two trees.
 */
export async function profileRunChild(
  o: ProfileRunOptions,
  tree?: string,
): Promise<ProfileRunResult> {
  const script = tree ? `${tree.replace(/\/$/, "")}/bench/profile_run.ts` : RUN;
  const { result } = await runChild(
    Deno.execPath(),
    ["run", "--allow-all", script, JSON.stringify(o)],
    {},
    `${script} (case ${o.case})`,
    tree,
  );
  return JSON.parse(result);
}

async function runChild(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  what: string,
  cwd?: string,
): Promise<{ lines: string[]; result: string }> {
  const out = await new Deno.Command(cmd, { args, env, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  const lines = text.split("\n");
  // Our child prints the result on stderr too: V8's --trace-gc output on stdout can split a line.
  const result = new TextDecoder().decode(out.stderr).split("\n")
    .find((l) => l.startsWith("@@result ")) ?? lines.find((l) => l.startsWith("@@result "));
  if (!out.success || !result) {
    throw new Error(
      `Cannot profile ${what}: '${cmd} ${args.join(" ")}' exited with ${out.code}: ${
        new TextDecoder().decode(out.stderr).slice(-1200)
      }`,
    );
  }
  return { lines, result: result.slice("@@result ".length) };
}

function between(lines: string[]): string[] {
  const b = lines.findIndex((l) => l.startsWith("@@begin"));
  const e = lines.findIndex((l) => l.startsWith("@@end"));
  return b >= 0 && e > b ? lines.slice(b + 1, e) : [];
}

/**
 * Main-isolate GC pauses within the marker times. V8 prints `[pid:isolate] T ms: Scavenge ...,
 * P / Q ms` (T since the isolate started, as `performance.now()`; the main isolate is the first)
 * through its own stdout buffer, so its lines and our markers may interleave mid-line: both are
 * searched anywhere in the text and ordered by their times.
 */
export function parseGc(lines: string[]): GcSummary | undefined {
  const text = lines.join("\n");
  const begin = Number(text.match(/@@begin (\d+)/)?.[1]);
  const end = Number(text.match(/@@end (\d+)/)?.[1]);
  if (!Number.isFinite(begin) || !Number.isFinite(end)) return undefined;
  let main: string | undefined;
  const s: GcSummary = { scavenges: 0, markCompacts: 0, pauseMs: 0 };
  const gcText = text.replace(/@@(begin|end) \d+\n?/g, ""); // rejoin a GC line a marker split
  const re =
    /\[\d+:(0x[0-9a-f]+)\]\s+(\d+) ms: (\S+)[^\n]*?MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ ([\d.]+) ms/g;
  for (const m of gcText.matchAll(re)) {
    main ??= m[1];
    const t = Number(m[2]);
    if (m[1] !== main || t < begin || t > end) continue;
    if (m[3].startsWith("Scavenge") || m[3].startsWith("Minor")) s.scavenges++;
    else s.markCompacts++;
    s.pauseMs += Number(m[4]);
  }
  return s;
}

/** Runs our profiled step in a child (`gc`: under --trace-gc; `verbose`: ONEDNN_VERBOSE=1). */
export async function oursChild(
  o: ProfileRunOptions,
  mode: { gc?: boolean; verbose?: boolean },
): Promise<ChildOutput<ProfileRunResult>> {
  const args = ["run", "--allow-all", ...(mode.gc ? ["--v8-flags=--trace-gc"] : []), RUN];
  const env: Record<string, string> = mode.verbose ? { ONEDNN_VERBOSE: "1" } : {};
  const { lines, result } = await runChild(
    Deno.execPath(),
    [...args, JSON.stringify(o)],
    env,
    `our ${o.mode} step (case ${o.case})`,
  );
  return {
    result: JSON.parse(result),
    verbose: between(lines).map(parseVerboseLine).filter((e): e is VerboseExec => !!e),
    gc: mode.gc ? parseGc(lines) : undefined,
  };
}

/** PyTorch's profiled step: torch.profiler op times, or (`verbose`) oneDNN's primitive log. */
export interface TorchProfile {
  times: number[];
  ops: Record<string, { calls: number; selfMs: number }>;
  torch: string;
  onednn: string;
  channelsLast: boolean;
}

/** Runs `bench/profile_torch.py` under `python`. */
export async function torchChild(
  python: string,
  config: Record<string, unknown>,
  warmup: number,
  steps: number,
  verbose: boolean,
): Promise<ChildOutput<TorchProfile>> {
  const { lines, result } = await runChild(
    python,
    [TORCH, JSON.stringify(config), String(warmup), String(steps)],
    verbose ? { ONEDNN_VERBOSE: "1" } : { ONEDNN_VERBOSE: "0" },
    `PyTorch's step (${python})`,
  );
  return {
    result: JSON.parse(result),
    verbose: between(lines).map(parseVerboseLine).filter((e): e is VerboseExec => !!e),
  };
}
