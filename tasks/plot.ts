/**
 * `deno task plot <run-dir>`: draws the training curves of a run folder (`curves.svg`,
 * `curves.png` from its `metrics.jsonl`) and, with `--map`, the t-SNE map of a checkpoint's backbone
 * features of the first N test images coloured by class (`embedding-map.svg`, `embedding-map.png`).
 * Exit status: 0 done, 1 error (unreadable log, checkpoint or data), 2 bad command line.
 *
 * @module
 */

import { join } from "node:path";
import { createBackend } from "../src/backend/select.ts";
import { listCheckpoints } from "../src/io/checkpoint.ts";
import { checkpointEmbeddingMap, type CheckpointMapOptions } from "../src/plot/checkpoint_map.ts";
import { plotRun } from "../src/plot/curves.ts";
import { canonicalName } from "../src/ressl/config.ts";
import { openTrainCheckpoint } from "../src/ressl/checkpoint.ts";
import { createContext } from "../src/tensor/mod.ts";
import { type CommandSpec, parseCommand } from "./cli_flags.ts";
import { helpText } from "./help.ts";
import {
  DATA_FLAG,
  DEVICE_FLAG,
  resolveCheckpoint,
  runCommand,
  THREADS_FLAG,
  UsageError,
} from "./cli_util.ts";
import { openBuiltin, resolveData } from "./data_source.ts";
import { checkEvalPreset } from "./eval_data.ts";

/** The command table of `plot`. */
export const PLOT_SPEC: CommandSpec = {
  name: "plot",
  usage: "<run-dir> [--map [options]]",
  description:
    "Draws the training curves of a run folder: loss per logged step (interval mean and " +
    "last step), learning rate per logged step (warm-up and cosine), kNN top-1/top-5 per epoch " +
    "when logged; written as curves.svg and curves.png there. Exit status: 0 done, 1 error " +
    "(unreadable log, checkpoint or data), 2 bad command line.",
  positionals: [{ name: "<run-dir>", help: "the run folder (holds metrics.jsonl)" }],
  flags: [
    {
      name: "map",
      kind: "boolean",
      help: "also draw a t-SNE map of a checkpoint's backbone features of the first test images, " +
        "coloured by class (embedding-map.svg / .png in the run folder)",
    },
    { name: "no-curves", kind: "boolean", help: "skip the curves (with --map: only the map)" },
    {
      name: "checkpoint",
      kind: "string",
      value: "<file>",
      help: "checkpoint of the map",
      defaultText: "the newest in the run folder",
    },
    {
      ...DATA_FLAG,
      help: "map: a folder with the dataset's files (in it, in <dir>/<name>/, or as --download " +
        "leaves them), as for train and eval",
      defaultText: "data/ (Fashion-MNIST also Debian's copy)",
    },
    {
      name: "preset",
      kind: "string",
      value: "<name>",
      help: "map: draw this dataset's test images instead of the checkpoint's",
    },
    {
      name: "points",
      kind: "int",
      value: "<n>",
      min: 2,
      default: 2000,
      help: "map: test images in the map (exact t-SNE is O(n^2))",
    },
    {
      name: "network",
      kind: "choice",
      value: "<n>",
      choices: ["student", "teacher"],
      default: "student",
      help: "map: which network's backbone: student | teacher",
    },
    {
      name: "perplexity",
      kind: "number",
      value: "<x>",
      min: 0,
      exclusiveMin: true,
      help: "map: t-SNE perplexity",
      defaultText: "30",
    },
    {
      name: "iterations",
      kind: "int",
      value: "<n>",
      min: 1,
      help: "map: t-SNE iterations",
      defaultText: "1000",
    },
    {
      name: "seed",
      kind: "int",
      value: "<n>",
      min: 0,
      default: 0,
      help: "map: t-SNE initialisation seed",
    },
    DEVICE_FLAG,
    THREADS_FLAG,
    {
      name: "scale",
      kind: "number",
      value: "<x>",
      min: 0,
      exclusiveMin: true,
      default: 2,
      help: "PNG pixels per SVG unit",
    },
  ],
  examples: [
    "deno task plot runs/quick",
    "deno task plot runs/quick --map --points 1000",
  ],
};

const MAP_ONLY = [
  "checkpoint",
  "data",
  "preset",
  "points",
  "network",
  "perplexity",
  "iterations",
  "seed",
];

function parse(args: string[]) {
  const p = parseCommand(PLOT_SPEC, args);
  if (p === null) return null;
  const v = p.values;
  if (p.positionals.length !== 1) {
    throw new UsageError(
      `Invalid command line: expected one run folder, got ${p.positionals.length} (see --help)`,
    );
  }
  const map = v.map === true;
  const mapOnly = MAP_ONLY.filter((k) => p.given.includes(k));
  if (!map && mapOnly.length > 0) {
    throw new UsageError(`Invalid flag --${mapOnly[0]}: it applies to --map only`);
  }
  if (v["no-curves"] && !map) {
    throw new UsageError("Invalid flag --no-curves: there is nothing to draw without --map");
  }
  return {
    runDir: p.positionals[0],
    curves: v["no-curves"] !== true,
    map,
    checkpoint: v.checkpoint as string | undefined,
    data: v.data as string | undefined,
    preset: checkEvalPreset(v.preset as string | undefined),
    points: v.points as number,
    network: v.network as "student" | "teacher",
    perplexity: v.perplexity as number | undefined,
    iterations: v.iterations as number | undefined,
    seed: v.seed as number,
    device: v.device as "auto" | "cpu" | "cuda" | "reference",
    threads: v.threads as number | undefined,
    scale: v.scale as number,
  };
}

/**
 * How the embedding map opens its test set: the copy `--data` names, resolved as everywhere else
 * (`train`, `eval`: the folder holding the files, or `<dir>/<name>/`, or the layout `--download`
 * leaves); without `--data`, the map's own search (`data/`, then Debian's Fashion-MNIST). A folder
 * of the user's own images, or a checkpoint trained on one, is refused.
 */
async function mapTestSet(
  checkpoint: string,
  preset: string | undefined,
  data?: string,
): Promise<CheckpointMapOptions["openTestSet"]> {
  const name = canonicalName(preset ?? (await openTrainCheckpoint(checkpoint)).meta.config.dataset)
    .name;
  if (name === "image-folder") {
    throw new UsageError(
      "Invalid flag --map: the checkpoint was trained on an image folder; the map draws built-in " +
        "test sets only (give --preset <dataset>, or use deno task embed on your folder)",
    );
  }
  if (data === undefined) return undefined;
  const source = resolveData(name, data);
  if (source.kind === "folder") {
    throw new UsageError(
      `Invalid flag --data: the map draws the ${name} test set; '${data}' holds other images`,
    );
  }
  return (_, imageSize) => openBuiltin(source, { split: "test", imageSize });
}

async function main(args: string[]): Promise<number> {
  const o = parse(args);
  if (o === null) {
    console.log(helpText(PLOT_SPEC));
    return 0;
  }
  let info;
  try {
    info = await Deno.stat(o.runDir);
  } catch {
    throw new Error(`Cannot plot run '${o.runDir}': no such folder`);
  }
  if (!info.isDirectory) throw new Error(`Cannot plot run '${o.runDir}': not a folder`);
  let checkpoint: string | undefined;
  let openTestSet: CheckpointMapOptions["openTestSet"];
  if (o.map) {
    checkpoint = o.checkpoint ?? listCheckpoints(o.runDir).at(-1);
    if (!checkpoint) {
      throw new Error(
        `Cannot draw the embedding map: '${o.runDir}' holds no checkpoint (give --checkpoint <file>)`,
      );
    }
    checkpoint = resolveCheckpoint("checkpoint", checkpoint);
    openTestSet = await mapTestSet(checkpoint, o.preset, o.data);
  }
  if (o.curves) {
    const out = await plotRun(o.runDir, { scale: o.scale });
    console.log(`curves: ${[...out.svg, ...out.png].join(", ")}`);
  }
  if (checkpoint) {
    const backend = createBackend(o.device, { threads: o.threads });
    try {
      const ctx = createContext(backend);
      const t0 = performance.now();
      const r = await checkpointEmbeddingMap(ctx, {
        checkpoint,
        openTestSet,
        preset: o.preset,
        points: o.points,
        network: o.network,
        perplexity: o.perplexity,
        iterations: o.iterations,
        seed: o.seed,
        scale: o.scale,
        out: [join(o.runDir, "embedding-map.svg"), join(o.runDir, "embedding-map.png")],
        onStatus: (line) => console.log(`map: ${line} (backend ${backend.name})`),
      });
      console.log(
        `map: ${r.points} points of ${r.dataset} at step ${r.step}, KL ${r.kl.toFixed(3)}, ` +
          `${((performance.now() - t0) / 1000).toFixed(1)} s: ${[...r.svg, ...r.png].join(", ")}`,
      );
    } finally {
      backend.dispose();
    }
  }
  return 0;
}

if (import.meta.main) await runCommand(main);
