/**
 * `deno task embed`: backbone embeddings of an image folder or of a built-in dataset (`--data`, as
 * in `train`; `--preset`), through the
 * checkpoint's evaluation view (resize + Normalize, eval-mode BN), written to safetensors:
 * `embeddings` F32 [N, D] and, when the images are labelled, `labels` I32 [N]; the metadata holds
 * the class names and, for a folder, the image file names (JSON lists, relative to the folder, in
 * row order). `--npy` also writes the embeddings as a NumPy .npy (v1.0, little-endian f32).
 * Exit status: 0 done, 1 error (unreadable checkpoint or images), 2 bad command line.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { relative } from "node:path";
import { createBackend } from "../src/backend/select.ts";
import { type ImageDataset, readImageFolder, scanImageFolder } from "../src/data/datasets/mod.ts";
import { firstImages } from "../src/data/datasets/subset.ts";
import { disposeBackbone } from "../src/eval/backbone_io.ts";
import { loadCheckpointBackbone } from "../src/ressl/checkpoint.ts";
import { extractFeatures } from "../src/eval/features.ts";
import { writeNpy } from "../src/io/npy.ts";
import { type SafetensorsMap, writeSafetensors } from "../src/io/safetensors.ts";
import { createContext } from "../src/tensor/mod.ts";
import { type CommandSpec, parseCommand, required } from "./cli_flags.ts";
import { helpText } from "./help.ts";
import {
  checkNotInput,
  checkOutputPath,
  CHECKPOINT_FLAG,
  DATA_FLAG,
  DEVICE_FLAG,
  resolveCheckpoint,
  runCommand,
  THREADS_FLAG,
  UsageError,
} from "./cli_util.ts";
import { BUILTIN_NAMES, holdsBuiltin, openBuiltin } from "./data_source.ts";
import { DataError } from "../src/data/errors.ts";
import { checkEvalPreset, evalSource } from "./eval_data.ts";

/** The command table of `embed`. */
export const EMBED_SPEC: CommandSpec = {
  name: "embed",
  usage: "--checkpoint <file> --out <emb.safetensors> [--data <dir>] [options]",
  description: "Computes backbone embeddings (pooled features, eval-mode BN, no augmentation, " +
    "the checkpoint's size and normalisation) of an image folder (root/<class>/<image> or " +
    "root/<image>; JPEG, PNG, WebP) or of a built-in dataset's split, and writes them to " +
    "safetensors: 'embeddings' [N, D], 'labels' [N] when labelled; metadata 'files' (folder: " +
    "JSON list of file names relative to the folder, row order) and 'classes' (JSON list). " +
    "Exit status: 0 done, 1 error (unreadable checkpoint or images), 2 bad command line.",
  flags: [
    CHECKPOINT_FLAG,
    {
      ...DATA_FLAG,
      help: "an image folder to embed, or a folder with a built-in dataset's files (in it or " +
        "in <dir>/<name>/)",
      defaultText: "the checkpoint's dataset in data/ (Fashion-MNIST also Debian's copy)",
    },
    {
      name: "preset",
      kind: "string",
      value: "<name>",
      help: `the built-in dataset to embed (${BUILTIN_NAMES.join(", ")})`,
      defaultText: "the checkpoint's",
    },
    {
      name: "split",
      kind: "choice",
      value: "train|test",
      choices: ["train", "test"],
      help: "split of a built-in dataset, or of a folder with train/ + val/ (or test/) subfolders",
      defaultText: "test (val/ of a folder)",
    },
    {
      name: "out",
      kind: "string",
      value: "<emb.safetensors>",
      help: "output .safetensors (written atomically; never the checkpoint itself)",
    },
    { name: "npy", kind: "string", value: "<file>", help: "also write the embeddings as .npy" },
    { name: "normalize", kind: "boolean", help: "L2-normalise each embedding" },
    {
      name: "network",
      kind: "choice",
      value: "<n>",
      choices: ["student", "teacher"],
      default: "student",
      help: "which network's backbone: student | teacher",
    },
    DEVICE_FLAG,
    THREADS_FLAG,
    {
      name: "batch-size",
      kind: "int",
      value: "<n>",
      min: 1,
      default: 256,
      help: "images per forward",
    },
    { name: "limit", kind: "int", value: "<n>", min: 1, help: "embed the first n images only" },
  ],
  examples: [
    "deno task embed --checkpoint runs/quick --out emb.safetensors --npy emb.npy",
    "deno task embed --checkpoint runs/photos --data ~/photos --out photos.safetensors",
  ],
  removed: {
    "data-dir": "it is gone: --data <dir> names the folder (the dataset's files or your images), " +
      "--preset <name> the built-in dataset",
  },
};

/** Whether `dir` has `train/` beside `val/` or `test/` (how `train` splits a folder). */
function holdsSplit(dir: string): boolean {
  const isDir = (p: string) => {
    try {
      return Deno.statSync(p).isDirectory;
    } catch {
      return false;
    }
  };
  return isDir(`${dir}/train`) && (isDir(`${dir}/val`) || isDir(`${dir}/test`));
}

/** The class folders of `test` must be those of `train` (the labels index the same classes). */
function checkSameClasses(train: string, test: string): void {
  const a = JSON.stringify(scanImageFolder(train).classes);
  const b = JSON.stringify(scanImageFolder(test).classes);
  if (a !== b) {
    throw new DataError(
      `Cannot embed '${test}': its class folders ${b} differ from those of '${train}' ${a}`,
      { file: test },
    );
  }
}

function parse(args: string[]) {
  const p = parseCommand(EMBED_SPEC, args);
  if (p === null) return null;
  const v = p.values;
  const checkpoint = required(EMBED_SPEC, p, "checkpoint");
  let data = v.data as string | undefined;
  let preset = v.preset as string | undefined;
  if (data !== undefined && !existsSync(data)) {
    if (!BUILTIN_NAMES.includes(data)) {
      throw new UsageError(
        `Invalid flag --data: '${data}' is neither a folder nor a dataset name (no such folder; datasets: ${
          BUILTIN_NAMES.join(", ")
        })`,
      );
    }
    console.error(
      `note: --data ${data} (a dataset name) is deprecated: use --preset ${data} [--data <dir>]`,
    );
    preset ??= data;
    data = undefined;
  }
  if (v.split !== undefined && data !== undefined && !holdsBuiltin(data) && !holdsSplit(data)) {
    throw new UsageError(
      `Invalid flag --split: it applies to built-in datasets and to folders with train/ + val/ ` +
        `subfolders, and '${data}' is neither`,
    );
  }
  const out = required(EMBED_SPEC, p, "out");
  checkOutputPath("out", out);
  const npy = v.npy as string | undefined;
  if (npy !== undefined) checkOutputPath("npy", npy);
  if (npy === out) throw new UsageError("Invalid flags: --npy and --out name the same file");
  checkNotInput("out", out, { checkpoint });
  if (npy !== undefined) checkNotInput("npy", npy, { checkpoint });
  return {
    checkpoint,
    data,
    preset: checkEvalPreset(preset),
    split: v.split as "train" | "test" | undefined,
    out,
    npy,
    normalize: v.normalize === true,
    network: v.network as "student" | "teacher",
    device: v.device as "auto" | "cpu" | "cuda" | "reference",
    threads: v.threads as number | undefined,
    batchSize: v["batch-size"] as number,
    limit: v.limit as number | undefined,
  };
}

async function main(args: string[]): Promise<number> {
  const o = parse(args);
  if (o === null) {
    console.log(helpText(EMBED_SPEC));
    return 0;
  }
  const checkpoint = resolveCheckpoint("checkpoint", o.checkpoint);
  const backend = createBackend(o.device, { threads: o.threads });
  const ctx = createContext(backend);
  let opened: ImageDataset | undefined;
  try {
    const net = await loadCheckpointBackbone(ctx, checkpoint, { network: o.network });
    try {
      const { config } = net.meta;
      const size = config.image.size;
      const channels = net.options.inChannels;
      const source = evalSource(o.preset ?? config.dataset, o.data);
      let files: string[] | undefined;
      let described: string;
      if (source.kind === "folder") {
        if (o.split !== undefined && source.testDir === undefined) {
          throw new UsageError(
            `Invalid flag --split: the image folder '${source.root}' has no train/ + val/ subfolders`,
          );
        }
        if (channels !== 1 && channels !== 3) {
          throw new Error(`Cannot embed '${source.root}': the backbone takes ${channels} channels`);
        }
        // train/ + val/: one split, labelled by the class folders train uses (as `train` reads it)
        const dir = source.testDir === undefined
          ? source.root
          : o.split === "train"
          ? source.trainDir
          : source.testDir;
        const scan = scanImageFolder(dir);
        if (source.testDir !== undefined) checkSameClasses(source.trainDir, source.testDir);
        files = scan.files.map((f) => relative(source.root, f));
        opened = readImageFolder({ root: dir, size, channels: channels as 1 | 3 });
        described = dir;
      } else {
        const split = o.split ?? "test";
        opened = await openBuiltin(source, { split, imageSize: size });
        described = `${source.name}/${split}`;
      }
      const ds = o.limit ? firstImages(opened, o.limit) : opened;
      if (ds.channels !== channels) {
        throw new Error(
          `Cannot embed '${ds.name}': its images have ${ds.channels} channel(s), the backbone takes ${channels}`,
        );
      }
      const view = { size, ops: [], mean: [...config.image.mean], std: [...config.image.std] };
      const emb = ctx.scope(() => {
        const f = extractFeatures(ctx, {
          params: net.params,
          buffers: net.buffers,
          dataset: ds,
          view,
          maxPool: net.options.maxPool,
          batchSize: o.batchSize,
          normalize: o.normalize,
        });
        return { data: f.toFloat32(), shape: [...f.shape] };
      });
      const tensors: SafetensorsMap = {
        embeddings: { dtype: "F32", shape: emb.shape, data: emb.data },
      };
      const labels = ds.labels;
      if (labels) tensors.labels = { dtype: "I32", shape: [ds.length], data: labels.slice() };
      const metadata: Record<string, string> = {
        format: "ressl-deno-embeddings",
        source: described,
        checkpoint,
        network: o.network,
        step: String(net.meta.step),
        normalized: String(o.normalize),
      };
      if (files) metadata.files = JSON.stringify(files.slice(0, ds.length));
      if (ds.classes) metadata.classes = JSON.stringify(ds.classes);
      await writeSafetensors(o.out, tensors, { metadata });
      if (o.npy) await writeNpy(o.npy, emb);
      console.log(
        `wrote ${o.out}${o.npy ? ` and ${o.npy}` : ""}: ${emb.shape[0]} embeddings of dimension ${
          emb.shape[1]
        } (${ds.name}${labels ? ", labelled" : ""})`,
      );
      return 0;
    } finally {
      disposeBackbone(net);
    }
  } finally {
    opened?.close();
    backend.dispose();
  }
}

if (import.meta.main) await runCommand(main);
