/**
 * Command-line flags of `deno task train`, in one table ({@link TRAIN_SPEC}): the parser, the
 * `--help` text and the configuration keys the flags set all come from it. Flags are applied over
 * the preset and an optional JSON config file, then validated; errors name the flag or key.
 *
 * @module
 */

import { join } from "node:path";
import {
  type CommandSpec,
  coresBound,
  type FlagSpec,
  parseCommand,
  type ParsedCommand,
  UsageError,
} from "./cli_flags.ts";
import { helpText } from "./help.ts";
import {
  canonicalName,
  mergeConfig,
  presetConfig,
  TRAIN_PRESET_NAMES,
  type TrainConfig,
  validateConfig,
} from "../src/ressl/config.ts";
import { DEVICES } from "./cli_util.ts";
import { configEntries, configKeysText, DEFAULT_PRESET, withPresetDefaults } from "./train_help.ts";

export { configEntries, DEFAULT_PRESET } from "./train_help.ts";

/** Choices that do not change the result of a run (where it runs, where it writes). */
export interface TrainRuntime {
  /** The preset (its current name). */
  preset: string;
  /** Whether `--preset` was given (else the default, or `image-folder` for own images). */
  presetGiven: boolean;
  /** Deprecation note of an old preset name. */
  presetNote?: string;
  /** `--data`: a folder holding the dataset's files or one's own images (undefined: default). */
  data?: string;
  download: boolean;
  device: "auto" | "cpu" | "cuda" | "reference";
  threads?: number;
  out: string;
  /** torchvision-named safetensors backbone to start from (a new run only). */
  init?: string;
  /** Checkpoint to resume from; "" means the newest checkpoint of `out`. */
  resume?: string;
  maxSteps?: number;
  /** Use only the first N training images (and kNN monitor images) (smoke runs and tests). */
  limit?: number;
  workers: number;
  /** Force plain progress lines even on a terminal. */
  plain: boolean;
  /** `--nproc`: processes to start on this machine (an MPI job); undefined: this process only. */
  nproc?: number;
  /** The flags given on the command line (names), e.g. for a resume to compare. */
  given: string[];
}

const presetHelp = () => TRAIN_PRESET_NAMES.join(", ");

/** The flags of `train`, each with the configuration key it sets (if any). */
export const TRAIN_FLAGS: readonly FlagSpec[] = withPresetDefaults([
  {
    name: "preset",
    kind: "string",
    value: "<name>",
    help: `the recipe: ${presetHelp()}`,
    defaultText: `${DEFAULT_PRESET}; image-folder when --data holds your own images`,
  },
  {
    name: "config",
    kind: "string",
    value: "<file.json>",
    help: "JSON overrides of the preset (same keys as configs/*.json; listed below)",
  },
  {
    name: "data",
    kind: "string",
    value: "<dir>",
    help: "a folder with the dataset's files (in it or in <dir>/<name>/), or your own images " +
      "(class subfolders optional; JPEG, PNG, WebP)",
    defaultText: "data/ (Fashion-MNIST also Debian's /usr/share/datasets/fashion-mnist)",
  },
  {
    name: "download",
    kind: "boolean",
    help: "fetch the dataset into --data (or data/) when missing (md5-checked, resumable)",
  },
  {
    name: "image-size",
    kind: "int",
    value: "<n>",
    min: 8,
    help: "side of the network input; own images are resized to it",
    defaultText: "the preset's; own images: their most common size (at most 224)",
    configKey: "image.size",
  },
  {
    name: "mean",
    kind: "list",
    value: "<x,..>",
    help: "Normalize mean per channel",
    defaultText: "the preset's; own images: estimated from 1000 of them",
    configKey: "image.mean",
  },
  {
    name: "std",
    kind: "list",
    value: "<x,..>",
    help: "Normalize std per channel",
    defaultText: "as --mean",
    configKey: "image.std",
  },
  {
    name: "epochs",
    kind: "int",
    value: "<n>",
    min: 1,
    help: "training epochs",
    configKey: "epochs",
  },
  {
    name: "batch-size",
    kind: "int",
    value: "<n>",
    min: 1,
    help: "images per step (the queue size must stay a multiple of it)",
    configKey: "batchSize",
  },
  {
    name: "lr",
    kind: "number",
    value: "<x>",
    min: 0,
    exclusiveMin: true,
    help: "learning rate at batch 256 (scaled linearly with the batch size)",
    configKey: "optim.lr",
  },
  {
    name: "width",
    kind: "int",
    value: "<n>",
    min: 1,
    help: "ResNet base width (64 as torchvision; 16 for quick CPU runs)",
    configKey: "model.width",
  },
  {
    name: "seed",
    kind: "int",
    value: "<n>",
    min: 0,
    help: "seed of initialisation, shuffling and augmentation",
    configKey: "seed",
  },
  {
    name: "knn-every",
    kind: "int",
    value: "<n>",
    min: 0,
    help: "kNN monitor every n epochs on the labelled test images (0 = off)",
    configKey: "knnEvery",
  },
  {
    name: "log-every",
    kind: "int",
    value: "<n>",
    min: 1,
    help: "write the loss to metrics.jsonl (and the curves) every n steps",
    configKey: "logEvery",
  },
  {
    name: "device",
    kind: "choice",
    value: "<d>",
    choices: DEVICES,
    default: "auto",
    help:
      "backend: auto (cuda on an NVIDIA GPU, else cpu where oneDNN is installed, else reference), cpu, cuda, reference",
  },
  {
    name: "threads",
    kind: "int",
    value: "<n>",
    min: 1,
    max: coresBound,
    help: "CPU threads of the oneDNN backend",
    defaultText: "all cores ($RESSL_THREADS)",
    env: "RESSL_THREADS",
  },
  {
    name: "workers",
    kind: "int",
    value: "<n>",
    min: 0,
    max: coresBound,
    default: 1,
    help: "augmentation workers (0 = on the main thread)",
  },
  {
    name: "out",
    kind: "string",
    value: "<dir>",
    help: "run folder",
    defaultText: "runs/<preset>-<date>",
  },
  {
    name: "resume",
    kind: "string",
    value: "<run|ckpt>",
    optionalValue: true,
    help: "continue a run with its own settings (flags given again must agree): a run folder's " +
      "newest checkpoint, a checkpoint (with another --out: a branch), or alone the newest in --out",
  },
  {
    name: "init",
    kind: "string",
    value: "<file>",
    help: "start from a torchvision-named safetensors backbone (deno task export)",
  },
  {
    name: "max-steps",
    kind: "int",
    value: "<n>",
    min: 1,
    help: "stop after n steps in total (smoke runs)",
  },
  {
    name: "limit",
    kind: "int",
    value: "<n>",
    min: 1,
    help: "use the first n images only: training and kNN monitor (smoke runs)",
  },
  { name: "plain", kind: "boolean", help: "plain progress lines even on a terminal" },
  {
    name: "nproc",
    kind: "int",
    value: "<n>",
    min: 1,
    help: "train as n processes on this machine (an MPI job through mpirun; --batch-size stays " +
      "the global batch; docs/distributed.md)",
  },
]);

/** The command table of `train`. */
export const TRAIN_SPEC: CommandSpec = {
  name: "train",
  usage: "[options]",
  description:
    "Pretrains an encoder with ReSSL. With no flags: the fashion-mnist recipe (ResNet-18 " +
    "width 64, 200 epochs: days on a CPU) on the real Fashion-MNIST files. A run folder gets " +
    "config.json, metrics.jsonl, checkpoints and curves.svg/png. Exit status: 0 done (or stopped " +
    "by a signal after its checkpoint), 1 error, 2 bad command line, 3 the loss became NaN.",
  flags: TRAIN_FLAGS,
  examples: [
    "deno task train --preset fashion-mnist-quick     # ~4 min on 2 cores, ends with the kNN top-1",
    "deno task train --data ~/photos --width 16 --epochs 20 --image-size 64",
    "deno task train --preset cifar10 --data data --download --epochs 10",
    "deno task train --resume runs/a                  # continue runs/a with its own settings",
  ],
  epilogue: configKeysText,
};

/** The usage text of `deno task train --help`. */
export function trainUsage(): string {
  return helpText(TRAIN_SPEC);
}

/** Reads and merges `--config`; returns the merged config. */
async function applyConfigFile(config: TrainConfig, file: string): Promise<TrainConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new Error(`Cannot read config file '${file}': ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(`Cannot parse config file '${file}': ${(e as Error).message}`);
  }
  return mergeConfig(config, json, `config file '${file}'`);
}

/** A nested object setting the dotted `key` to `value`. */
function nested(key: string, value: unknown): Record<string, unknown> {
  return key.split(".").reduceRight<unknown>((v, k) => ({ [k]: v }), value) as Record<
    string,
    unknown
  >;
}

/** What {@link buildTrainConfig} returns. */
export interface BuiltConfig {
  /** The validated configuration. */
  config: TrainConfig;
  /** Dotted keys set by `--config` or a flag (not the preset's values). */
  explicit: Set<string>;
}

/**
 * The configuration of `preset` with `--config` and the flags applied. With `validate` false the
 * result is not validated yet (own images fill in the image size and mean/std first).
 */
export async function buildTrainConfig(
  parsed: ParsedCommand,
  preset: string,
  validate = true,
): Promise<BuiltConfig> {
  let config = presetConfig(preset);
  const explicit = new Set<string>();
  const file = parsed.values.config as string | undefined;
  if (file !== undefined) {
    config = await applyConfigFile(config, file);
    const json = JSON.parse(await Deno.readTextFile(file));
    for (const [k] of configEntries(json)) explicit.add(k);
  }
  for (const f of TRAIN_FLAGS) {
    const v = parsed.values[f.name];
    if (!f.configKey || v === undefined) continue;
    config = mergeConfig(config, nested(f.configKey, v), `flag --${f.name}`);
    explicit.add(f.configKey);
  }
  return { config: validate ? validateConfig(config) : config, explicit };
}

/** Reads the flags into a {@link TrainRuntime} (no configuration yet); null for `--help`. */
export function parseTrainCommand(
  args: readonly string[],
): { parsed: ParsedCommand; runtime: TrainRuntime } | null {
  const parsed = parseCommand(TRAIN_SPEC, args);
  if (parsed === null) return null;
  const v = parsed.values;
  const given = v.preset as string | undefined;
  const { name: preset, note } = canonicalName(given ?? DEFAULT_PRESET);
  if (!TRAIN_PRESET_NAMES.includes(preset)) {
    throw new UsageError(
      `Invalid flag --preset: preset '${preset}' is not one of ${presetHelp()}`,
    );
  }
  if (v.init !== undefined && v.resume !== undefined) {
    throw new UsageError("Invalid flags: --init starts a new run and cannot be used with --resume");
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  const runtime: TrainRuntime = {
    preset,
    presetGiven: given !== undefined,
    presetNote: note,
    data: v.data as string | undefined,
    download: v.download === true,
    device: v.device as TrainRuntime["device"],
    threads: v.threads as number | undefined,
    workers: v.workers as number,
    out: (v.out as string | undefined) ?? join("runs", `${preset}-${stamp}`),
    resume: v.resume as string | undefined,
    init: v.init as string | undefined,
    maxSteps: v["max-steps"] as number | undefined,
    limit: v.limit as number | undefined,
    plain: v.plain === true,
    nproc: v.nproc as number | undefined,
    given: parsed.given,
  };
  return { parsed, runtime };
}

/**
 * Parses the flags and builds the configuration of the given (or default) preset; returns null
 * when `--help` was given. Throws a clear error on bad input.
 */
export async function parseTrainArgs(
  args: readonly string[],
): Promise<{ config: TrainConfig; runtime: TrainRuntime } | null> {
  const r = parseTrainCommand(args);
  if (r === null) return null;
  const { config } = await buildTrainConfig(r.parsed, r.runtime.preset);
  return { config, runtime: r.runtime };
}
