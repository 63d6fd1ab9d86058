/**
 * `train --resume`: the command line's side of resuming a run (the run's side is
 * src/run/resume.ts). Finds the run, compares every flag given again with it, and fills in the
 * run's preset, data folder and image limit, so that `--resume RUN_DIR` alone continues the run.
 *
 * @module
 */

import {
  checkResumeSettings,
  type GivenSetting,
  planResume,
  type ResumePlan,
  ResumeSettingsError,
} from "../src/run/resume.ts";
import {
  canonicalName,
  mergeConfig,
  TRAIN_PRESET_NAMES,
  type TrainConfig,
} from "../src/ressl/config.ts";
import { type ParsedCommand, UsageError } from "./cli_flags.ts";
import { configEntries, TRAIN_FLAGS, type TrainRuntime } from "./train_args.ts";
import { resolveData } from "./data_source.ts";

/** What {@link resumeRun} returns: the run to continue, with its own settings. */
export interface ResumedRun {
  /** Where the resume starts (checkpoint, run folder, what the run was). */
  plan: ResumePlan;
  /** The run's configuration (the checkpoint's). */
  config: TrainConfig;
  /** The runtime with the run's folder, checkpoint, preset, data and limit filled in. */
  runtime: TrainRuntime;
}

/**
 * For `--resume`: finds the checkpoint and the run (src/run/resume.ts), checks that every flag
 * given again agrees with the run (a {@link UsageError} naming each difference otherwise), and
 * fills in the run's preset, data folder and image limit where the command line leaves them out.
 */
export async function resumeRun(
  parsed: ParsedCommand,
  runtime: TrainRuntime,
): Promise<ResumedRun> {
  if (runtime.resume === "" && !runtime.given.includes("out")) {
    throw new UsageError(
      "Invalid flag --resume: without a path it continues the run folder given by --out; give " +
        "--resume <run folder> or --resume <checkpoint>",
    );
  }
  const plan = await planResume(
    runtime.resume ?? "",
    runtime.given.includes("out") ? runtime.out : undefined,
  );
  const settings: GivenSetting[] = [];
  const file = parsed.values.config as string | undefined;
  if (file !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(await Deno.readTextFile(file));
    } catch (e) {
      throw new UsageError(`Cannot read config file '${file}': ${(e as Error).message}`);
    }
    mergeConfig(plan.config, json, `config file '${file}'`); // unknown keys, wrong types
    for (const [key, value] of configEntries(json)) {
      settings.push({ source: `--config ${file}`, key, value });
    }
  }
  for (const f of TRAIN_FLAGS) {
    const v = parsed.values[f.name];
    if (!f.configKey || v === undefined) continue;
    settings.push({
      source: `--${f.name} ${Array.isArray(v) ? v.join(",") : v}`,
      key: f.configKey,
      value: v,
    });
  }
  const differences: string[] = [];
  try {
    checkResumeSettings(plan, {
      preset: runtime.presetGiven ? runtime.preset : undefined,
      settings,
      limit: runtime.limit,
    });
  } catch (e) {
    if (!(e instanceof ResumeSettingsError)) throw e;
    differences.push(...e.differences);
  }
  const data = dataDifference(plan, runtime.data);
  if (data) differences.push(data);
  if (differences.length > 0) {
    throw new UsageError(new ResumeSettingsError(plan.checkpoint, differences).message);
  }
  const stored = canonicalName(plan.stored.preset ?? plan.config.dataset).name;
  const preset = TRAIN_PRESET_NAMES.includes(stored)
    ? stored
    : canonicalName(plan.config.dataset).name;
  return {
    plan,
    config: plan.config,
    runtime: {
      ...runtime,
      preset,
      presetGiven: true,
      out: plan.runDir,
      resume: plan.checkpoint,
      data: runtime.data ?? plan.stored.data,
      limit: runtime.limit ?? plan.stored.limit,
    },
  };
}

/**
 * `--data` given again: a difference when it reads other files than the run's folder (found as
 * `train` found it, so `DIR` and `DIR/<name>/` agree). When the run's folder is gone (moved), the
 * folder given is read.
 */
function dataDifference(plan: ResumePlan, given: string | undefined): string | undefined {
  const stored = plan.stored.data;
  if (given === undefined || stored === undefined) return undefined;
  const real = (p: string) => {
    try {
      return Deno.realPathSync(p);
    } catch {
      return undefined;
    }
  };
  const was = real(stored);
  if (was === undefined) return undefined;
  const source = resolveData(canonicalName(plan.config.dataset).name, given);
  if (real(source.root) === was) return undefined;
  return `--data ${given} differs from the run's ${stored}`;
}
