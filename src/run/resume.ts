/**
 * Resuming a run from its run folder (or one of its checkpoints) with the run's own settings:
 *
 * - {@link planResume} finds the checkpoint (`--resume RUN_DIR`: its newest; `--resume CKPT`: that
 *   one; `--resume` alone: the newest of `--out`) and the folder the run continues in (`--out`
 *   when given, else the checkpoint's folder: another folder is a branch), and reads what the run
 *   was: the configuration stored in the checkpoint and, from the `config.json` beside it, the
 *   preset, the data folder and the image limit.
 * - {@link checkResumeSettings} compares what the command line gives again with the run: each
 *   configuration flag, each key of a `--config` file, `--preset` and `--limit` must agree, or
 *   the resume is refused with a {@link ResumeSettingsError} naming every difference
 *   (`--lr 0.1 differs from the run's 0.06`).
 * - {@link resumeMetrics} makes `metrics.jsonl` read as one run up to the checkpoint: in the
 *   run's own folder the records logged after the checkpoint are dropped (those steps are done
 *   again), a torn last line (a kill mid-write) is dropped and a damaged line is moved to
 *   {@link DAMAGED_METRICS} with a warning (never blocking the resume, never lost); a branch gets
 *   the source run's records up to the checkpoint.
 *
 * Whether resuming would lose checkpoints is checked under the run folder's lock by the
 * `Checkpointer` (never by the plan alone, which reads without the lock).
 *
 * @module
 */

import { existsSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { listCheckpoints } from "../io/checkpoint.ts";
import { readMetricsFile, truncateMetrics, writeMetrics } from "../io/metrics.ts";
import { type CheckpointMeta, readTrainCheckpointMeta } from "../ressl/checkpoint.ts";
import { canonicalName, type TrainConfig } from "../ressl/config.ts";
import { sameFolder } from "./checkpointer.ts";

/** Where a resume moves the damaged lines of `metrics.jsonl` (beside it). */
export const DAMAGED_METRICS = "metrics.damaged.jsonl";

/** The command line disagrees with the run it resumes (a command exits with status 2 on it). */
export class ResumeSettingsError extends Error {
  /** `differences` are the sentences naming each disagreement. */
  constructor(
    /** The checkpoint resumed. */
    readonly checkpoint: string,
    /** One sentence per difference (`--lr 0.1 differs from the run's 0.06`). */
    readonly differences: string[],
  ) {
    super(
      `Cannot resume from '${checkpoint}': ${differences.join("; ")}. A resumed run keeps its ` +
        "own settings: leave these flags out (or give the run's values), or start a new run " +
        "(another --out)",
    );
    this.name = "ResumeSettingsError";
  }
}

/** What the run folder's `config.json` says of how the run was started (all optional). */
export interface StoredRunInfo {
  /** The preset's name. */
  preset?: string;
  /** The data folder (`--data`), as given then. */
  data?: string;
  /** The image limit (`--limit`). */
  limit?: number;
}

/** Where a resume starts and what the run was. */
export interface ResumePlan {
  /** The checkpoint to load. */
  checkpoint: string;
  /** The run folder the run continues in. */
  runDir: string;
  /** Whether `runDir` is not the checkpoint's folder (a new branch of the run). */
  branch: boolean;
  /** The checkpoint's metadata (step, images, ...), checked. */
  meta: CheckpointMeta;
  /** The run's configuration (the checkpoint's). */
  config: TrainConfig;
  /** What `config.json` beside the checkpoint says (empty when it is missing or unreadable). */
  stored: StoredRunInfo;
}

/**
 * Finds the checkpoint of `resume` (a checkpoint file, a run folder, or "" for the newest
 * checkpoint of `out`) and reads its metadata and the `config.json` beside it. `out` is the run
 * folder given on the command line, if any. Throws naming the path when there is nothing to
 * resume.
 */
export async function planResume(resume: string, out?: string): Promise<ResumePlan> {
  let checkpoint: string;
  if (resume === "") {
    if (out === undefined) {
      throw new Error(
        "Cannot resume: --resume without a path continues the run folder given by --out; give " +
          "one (--resume <run folder> or --resume <checkpoint>)",
      );
    }
    checkpoint = newest(out);
  } else {
    let isDir: boolean;
    try {
      isDir = statSync(resume).isDirectory();
    } catch {
      throw new Error(`Cannot resume from '${resume}': no such run folder or checkpoint file`);
    }
    checkpoint = isDir ? newest(resume) : resume;
  }
  const runDir = out ?? dirname(checkpoint);
  const meta = await readTrainCheckpointMeta(checkpoint);
  return {
    checkpoint,
    runDir,
    branch: !sameFolder(runDir, dirname(checkpoint)),
    meta,
    config: meta.config,
    stored: readStoredRunInfo(join(dirname(checkpoint), "config.json")),
  };
}

function newest(dir: string): string {
  const found = listCheckpoints(dir).at(-1);
  if (found) return found;
  throw new Error(
    existsSync(dir)
      ? `Cannot resume: run folder '${dir}' holds no checkpoint (start it without --resume)`
      : `Cannot resume: no run folder '${dir}'`,
  );
}

/** The value of `--flag` in an argument list (`--flag v` or `--flag=v`). */
function flagValue(args: unknown, flag: string): string | undefined {
  if (!Array.isArray(args)) return undefined;
  for (let i = 0; i < args.length; i++) {
    const a = String(args[i]);
    if (a === flag && i + 1 < args.length) return String(args[i + 1]);
    if (a.startsWith(`${flag}=`)) return a.slice(flag.length + 1);
  }
  return undefined;
}

/**
 * Reads the run information of a run folder's `config.json` (`{ config, run }`): the preset, the
 * data folder and the image limit, from `run.preset` / `run.data` (a path, or `{ root }`) /
 * `run.limit`, or for older folders from the command line recorded in `run.args`. Missing or
 * unreadable: empty.
 */
export function readStoredRunInfo(path: string): StoredRunInfo {
  let run: Record<string, unknown>;
  try {
    const json = JSON.parse(Deno.readTextFileSync(path));
    run = json?.run && typeof json.run === "object" ? json.run : {};
  } catch {
    return {};
  }
  const out: StoredRunInfo = {};
  if (typeof run.preset === "string") out.preset = run.preset;
  const stored = run.data as { root?: unknown } | string | undefined;
  const data = typeof stored === "string"
    ? stored
    : typeof stored?.root === "string"
    ? stored.root
    : flagValue(run.args, "--data");
  if (data !== undefined) out.data = data;
  const limit = Number.isSafeInteger(run.limit)
    ? run.limit as number
    : Number(flagValue(run.args, "--limit"));
  if (Number.isSafeInteger(limit) && limit > 0) out.limit = limit;
  return out;
}

/** A configuration value given on the command line again. */
export interface GivenSetting {
  /** How it was given: `--lr 0.1`, or `--config tiny.json` for a key of a config file. */
  source: string;
  /** The configuration key (dotted, `optim.lr`). */
  key: string;
  /** The value given. */
  value: unknown;
}

/** What the command line of a resume gives again; each must agree with the run. */
export interface ResumeSettings {
  /** `--preset`, when given. */
  preset?: string;
  /** Configuration keys set by flags or by a `--config` file. */
  settings?: GivenSetting[];
  /** `--limit`, when given. */
  limit?: number;
}

function lookup(obj: unknown, key: string): unknown {
  return key.split(".").reduce<unknown>(
    (o, k) => (o && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined),
    obj,
  );
}

function show(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v) ?? "none";
}

/**
 * Throws a {@link ResumeSettingsError} naming every setting of `given` that differs from the run
 * of `plan`; returns when all agree.
 */
export function checkResumeSettings(plan: ResumePlan, given: ResumeSettings): void {
  const differences: string[] = [];
  const runPreset = canonicalName(plan.stored.preset ?? plan.config.dataset).name;
  if (given.preset !== undefined && canonicalName(given.preset).name !== runPreset) {
    differences.push(`--preset ${given.preset} differs from the run's ${runPreset}`);
  }
  for (const s of given.settings ?? []) {
    const run = lookup(plan.config, s.key);
    if (JSON.stringify(run) === JSON.stringify(s.value)) continue;
    differences.push(
      s.source.startsWith("--config")
        ? `${s.source} sets '${s.key}' to ${show(s.value)}, the run's is ${show(run)}`
        : `${s.source} differs from the run's ${show(run)}`,
    );
  }
  if (given.limit !== undefined) {
    const runLimit = plan.stored.limit ?? plan.meta.images;
    if (given.limit !== runLimit) {
      differences.push(`--limit ${given.limit} differs from the run's ${runLimit} images`);
    }
  }
  if (differences.length > 0) throw new ResumeSettingsError(plan.checkpoint, differences);
}

/**
 * Prepares `metrics.jsonl` of run folder `outDir` for a run resumed from `checkpoint` at `step`
 * (see the module doc). Returns what to tell the user (records dropped, a torn line removed, a
 * branch's records copied). Throws on a damaged line other than a torn last one, naming the
 * file and the line; nothing is changed then.
 */
export async function resumeMetrics(
  outDir: string,
  checkpoint: string,
  step: number,
): Promise<string[]> {
  const target = join(outDir, "metrics.jsonl");
  const notes: string[] = [];
  const torn = (path: string, t: { line: number } | undefined) => {
    if (t) notes.push(`${path}: dropped line ${t.line}, cut short by an interrupted write`);
  };
  if (sameFolder(dirname(checkpoint), outDir)) {
    const aside = join(outDir, DAMAGED_METRICS);
    const r = await truncateMetrics(target, step, { setAsideDamaged: aside });
    torn(target, r.torn);
    if (r.setAside.length > 0) {
      notes.push(
        `warning: ${target}: damaged line(s) ${
          r.setAside.map((d) => `${d.line} (${d.problem})`).join(", ")
        } moved to ${aside}`,
      );
    }
    if (r.dropped > 0) {
      notes.push(`${target}: dropped ${r.dropped} record(s) logged after step ${step}`);
    }
    return notes;
  }
  const source = join(dirname(checkpoint), "metrics.jsonl");
  if (!existsSync(source)) {
    await Deno.remove(target).catch(() => {});
    return notes;
  }
  const file = readMetricsFile(source, { damaged: "collect" });
  torn(source, file.torn);
  if (file.damaged.length > 0) {
    notes.push(
      `warning: ${source}: damaged line(s) ${
        file.damaged.map((d) => d.line).join(", ")
      } not copied into the branch`,
    );
  }
  const kept = file.records.filter((r) => r.step <= step);
  await writeMetrics(target, kept);
  notes.push(
    `branched from ${checkpoint}: ${target} starts with the ${kept.length} record(s) of ` +
      `${resolve(source)} up to step ${step}`,
  );
  return notes;
}
