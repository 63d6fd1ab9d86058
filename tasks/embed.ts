/**
 * `deno task embed`: backbone embeddings of a dataset (by name) or of an image folder, through the
 * checkpoint's evaluation view (resize + Normalize, eval-mode BN), written to safetensors:
 * `embeddings` F32 [N, D] and, when the images are labelled, `labels` I32 [N]; the metadata holds
 * the class names and, for a folder, the image file names (JSON lists, relative to the folder, in
 * row order). `--npy` also writes the embeddings as a NumPy .npy (v1.0, little-endian f32).
 * Exit status: 0 done, 1 error (unreadable checkpoint or images), 2 bad command line.
 *
 * @module
 */

import { existsSync, statSync } from "node:fs";
import { relative } from "node:path";
import { createBackend } from "../src/backend/select.ts";
import { DATASET_NAMES, openDataset } from "../src/data/datasets/mod.ts";
import { type ImageDataset, readImageFolder, scanImageFolder } from "../src/data/datasets/mod.ts";
import { firstImages } from "../src/data/datasets/subset.ts";
import { disposeBackbone } from "../src/eval/backbone_io.ts";
import { loadCheckpointBackbone } from "../src/ressl/checkpoint.ts";
import { extractFeatures } from "../src/eval/features.ts";
import { writeNpy } from "../src/io/npy.ts";
import { type SafetensorsMap, writeSafetensors } from "../src/io/safetensors.ts";
import { createContext } from "../src/tensor/mod.ts";
import {
  checkInputFile,
  checkOutputPath,
  choiceFlag,
  DEVICES,
  intFlag,
  parseFlags,
  requiredFlag,
  runCommand,
  UsageError,
} from "./cli_util.ts";

const USAGE =
  `Usage: deno task embed --checkpoint <file> --data <folder|dataset> --out <emb.safetensors>

Computes backbone embeddings (pooled features, eval-mode BN, no augmentation) of an image folder
(root/<class>/<image> or root/<image>; .jpg/.jpeg/.png) or of a dataset by name, and writes them
to safetensors: 'embeddings' [N, D], 'labels' [N] when labelled; metadata 'files' (folder: JSON list
of file names relative to the folder, row order) and 'classes' (JSON list).

Options:
  --checkpoint <file>   training checkpoint
  --data <x>            an image folder, or a dataset name (${DATASET_NAMES.join(", ")})
  --data-dir <dir>      where dataset names are looked up (default: data)
  --split train|test    split of a named dataset (default test)
  --out <file>          output .safetensors (written atomically)
  --npy <file>          also write the embeddings as .npy (float32, little-endian)
  --normalize           L2-normalise each embedding
  --network <n>         student (default) | teacher
  --device <d>          auto | cpu | cuda | reference (default auto)
  --threads <n>         CPU threads of the oneDNN backend
  --batch-size <n>      images per forward (default 256)
  --limit <n>           embed the first n images only
  --help                this text
`;

const FLAGS = {
  checkpoint: { type: "string" },
  data: { type: "string" },
  "data-dir": { type: "string" },
  split: { type: "string" },
  out: { type: "string" },
  npy: { type: "string" },
  normalize: { type: "boolean" },
  network: { type: "string" },
  device: { type: "string" },
  threads: { type: "string" },
  "batch-size": { type: "string" },
  limit: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function parse(args: string[]) {
  const v = parseFlags(args, FLAGS);
  if (v.help) return null;
  const checkpoint = requiredFlag("checkpoint", v.checkpoint, "file");
  const data = requiredFlag("data", v.data, "folder|dataset");
  const out = requiredFlag("out", v.out, "emb.safetensors");
  checkOutputPath("out", out);
  const npy = v.npy as string | undefined;
  if (npy !== undefined) checkOutputPath("npy", npy);
  if (npy === out) throw new UsageError("Invalid flags: --npy and --out name the same file");
  const isFolder = existsSync(data) && statSync(data).isDirectory();
  if (!isFolder && !(DATASET_NAMES as readonly string[]).includes(data)) {
    throw new UsageError(
      `Invalid flag --data: '${data}' is neither a folder nor a dataset name (${
        DATASET_NAMES.join(", ")
      })`,
    );
  }
  if (isFolder && v.split !== undefined) {
    throw new UsageError("Invalid flag --split: it applies to dataset names, not folders");
  }
  return {
    checkpoint,
    data,
    isFolder,
    dataDir: (v["data-dir"] as string | undefined) ?? "data",
    split: choiceFlag("split", v.split, ["train", "test"] as const, "test"),
    out,
    npy,
    normalize: v.normalize === true,
    network: choiceFlag("network", v.network, ["student", "teacher"] as const, "student"),
    device: choiceFlag("device", v.device, DEVICES, "auto"),
    threads: intFlag("threads", v.threads, 1),
    batchSize: intFlag("batch-size", v["batch-size"], 1) ?? 256,
    limit: intFlag("limit", v.limit, 1),
  };
}

async function main(args: string[]): Promise<number> {
  const o = parse(args);
  if (o === null) {
    console.log(USAGE);
    return 0;
  }
  checkInputFile("checkpoint", o.checkpoint);
  const backend = createBackend(o.device, { threads: o.threads });
  const ctx = createContext(backend);
  let opened: ImageDataset | undefined;
  try {
    const net = await loadCheckpointBackbone(ctx, o.checkpoint, { network: o.network });
    try {
      const { config } = net.meta;
      const size = config.image.size;
      const channels = net.options.inChannels;
      let files: string[] | undefined;
      if (o.isFolder) {
        if (channels !== 1 && channels !== 3) {
          throw new Error(`Cannot embed '${o.data}': the backbone takes ${channels} channels`);
        }
        files = scanImageFolder(o.data).files.map((f) => relative(o.data, f));
        opened = readImageFolder({ root: o.data, size, channels: channels as 1 | 3 });
      } else {
        opened = await openDataset(o.data, { dataDir: o.dataDir, split: o.split, imageSize: size });
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
        source: o.isFolder ? o.data : `${o.data}/${o.split}`,
        checkpoint: o.checkpoint,
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
