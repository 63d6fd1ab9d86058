/**
 * Command-line flags of `deno task train`: parsed with `node:util` parseArgs, applied over the
 * preset and an optional JSON config file, validated. Errors name the flag or key.
 *
 * @module
 */

import { choiceFlag, DEVICES, intFlag, parseFlags, positiveFlag } from "./cli_util.ts";
import {
  mergeConfig,
  presetConfig,
  TRAIN_PRESET_NAMES,
  type TrainConfig,
  validateConfig,
} from "../src/ressl/config.ts";

/** Choices that do not change the result of a run (where it runs, where it writes). */
export interface TrainRuntime {
  preset: string;
  /** Dataset folder or file prefix; undefined: the preset's default location. */
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
  /** Use only the first N training images (smoke runs and tests). */
  limit?: number;
  workers: number;
  /** Force plain progress lines even on a terminal. */
  plain: boolean;
}

/** The usage text of `deno task train --help`. */
export const TRAIN_USAGE = `Usage: deno task train [options]

Pretrains an encoder with ReSSL. With no flags: the fashion-mnist preset on the real Fashion-MNIST
files at /usr/share/datasets/fashion-mnist/ (Debian package dataset-fashion-mnist).

Options:
  --preset <name>        ${TRAIN_PRESET_NAMES.join(", ")} (default fashion-mnist)
  --config <file.json>   JSON overrides of the preset (same keys as configs/*.json)
  --data <path>          dataset location (default: the preset's usual place)
  --download             fetch the dataset into --data (or ~/.cache/ressl-deno) when missing
  --epochs <n>           training epochs
  --batch-size <n>       images per step (the queue size must stay a multiple of it)
  --lr <x>               learning rate at batch 256 (scaled linearly with the batch size)
  --width <n>            ResNet base width (64 as torchvision; 16 for quick CPU runs)
  --seed <n>             seed of initialisation, shuffling and augmentation
  --device <d>           auto | cpu | cuda | reference (default auto)
  --threads <n>          CPU threads for the oneDNN backend (default: all cores)
  --workers <n>          augmentation workers (default 1; 0 = on the main thread)
  --out <dir>            run folder (default runs/<preset>-<date>)
  --resume [<ckpt>]      continue a run: the given checkpoint, or the newest one in --out
  --init <file>          start from a torchvision-named safetensors backbone (deno task export)
  --knn-every <n>        kNN monitor every n epochs (0 = off)
  --max-steps <n>        stop after n steps in total (smoke runs)
  --limit <n>            train on the first n images only (smoke runs)
  --plain                plain progress lines even on a terminal
  --help                 this text
`;

/** Parses the flags; returns null when `--help` was given. Throws a clear error on bad input. */
export async function parseTrainArgs(
  args: string[],
): Promise<{ config: TrainConfig; runtime: TrainRuntime } | null> {
  // `--resume` takes an optional value: alone (or before another flag) it means "the newest".
  const argv = args.flatMap((a, i) =>
    a === "--resume" && (i + 1 === args.length || args[i + 1].startsWith("--")) ? [a, ""] : [a]
  );
  const v = parseFlags(argv, {
    preset: { type: "string" },
    config: { type: "string" },
    data: { type: "string" },
    download: { type: "boolean" },
    epochs: { type: "string" },
    "batch-size": { type: "string" },
    lr: { type: "string" },
    width: { type: "string" },
    seed: { type: "string" },
    device: { type: "string" },
    threads: { type: "string" },
    workers: { type: "string" },
    out: { type: "string" },
    resume: { type: "string" },
    init: { type: "string" },
    "knn-every": { type: "string" },
    "max-steps": { type: "string" },
    limit: { type: "string" },
    plain: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }) as Record<string, string | undefined> & {
    download?: boolean;
    plain?: boolean;
    help?: boolean;
  };
  if (v.help) return null;
  const preset = v.preset ?? "fashion-mnist";
  let config = presetConfig(preset);
  if (v.config !== undefined) {
    let text: string;
    try {
      text = await Deno.readTextFile(v.config);
    } catch (e) {
      throw new Error(`Cannot read config file '${v.config}': ${(e as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new SyntaxError(`Cannot parse config file '${v.config}': ${(e as Error).message}`);
    }
    config = mergeConfig(config, json, `config file '${v.config}'`);
  }
  const flags: Record<string, unknown> = {};
  const epochs = intFlag("epochs", v.epochs, 1);
  if (epochs !== undefined) flags.epochs = epochs;
  const batch = intFlag("batch-size", v["batch-size"], 1);
  if (batch !== undefined) flags.batchSize = batch;
  const lr = positiveFlag("lr", v.lr);
  if (lr !== undefined) flags.optim = { lr };
  const width = intFlag("width", v.width, 1);
  if (width !== undefined) flags.model = { width };
  const seed = intFlag("seed", v.seed, 0);
  if (seed !== undefined) flags.seed = seed;
  const knn = intFlag("knn-every", v["knn-every"], 0);
  if (knn !== undefined) flags.knnEvery = knn;
  config = validateConfig(mergeConfig(config, flags, "the command-line flags"));

  if (v.init !== undefined && v.resume !== undefined) {
    throw new RangeError("Invalid flags: --init starts a new run and cannot be used with --resume");
  }
  const device = choiceFlag("device", v.device, DEVICES, "auto");
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  const runtime: TrainRuntime = {
    preset,
    data: v.data,
    download: v.download ?? false,
    device,
    threads: intFlag("threads", v.threads, 1),
    workers: intFlag("workers", v.workers, 0) ?? 1,
    out: v.out ?? `runs/${preset}-${stamp}`,
    resume: v.resume,
    init: v.init,
    maxSteps: intFlag("max-steps", v["max-steps"], 1),
    limit: intFlag("limit", v.limit, 1),
    plain: v.plain ?? false,
  };
  return { config, runtime };
}
