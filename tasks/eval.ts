/**
 * `deno task eval`: evaluates the backbone of a training checkpoint by the weighted kNN classifier
 * or the linear probe (RESSL_SPEC §7; `--fast`: probe on cached features). The architecture, the
 * dataset and its normalisation come from the checkpoint's configuration (`--preset` evaluates on
 * another dataset). Prints a table and writes the result as JSON (`--out`, written atomically).
 * Exit status: 0 done, 1 error (unreadable checkpoint or data), 2 bad command line.
 *
 * @module
 */

import { createBackend } from "../src/backend/select.ts";
import type { ViewPipeline } from "../src/data/augment.ts";
import { openDataset } from "../src/data/datasets/mod.ts";
import type { ImageDataset } from "../src/data/datasets/dataset.ts";
import { firstImages } from "../src/data/datasets/subset.ts";
import { augmentationPreset, evalView, probeTrainView } from "../src/data/pipelines.ts";
import { disposeBackbone } from "../src/eval/backbone_io.ts";
import { loadCheckpointBackbone } from "../src/ressl/checkpoint.ts";
import { extractFeatures, type ExtractFeaturesOptions } from "../src/eval/features.ts";
import { knnAccuracy, knnClassify } from "../src/eval/knn.ts";
import type { LinearProbeResult } from "../src/eval/linear_probe.ts";
import { datasetClasses, datasetLabels, linearProbe } from "../src/eval/linear_probe_images.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";
import type { TrainConfig } from "../src/ressl/config.ts";
import { type Context, createContext } from "../src/tensor/mod.ts";
import {
  checkInputFile,
  checkOutputPath,
  choiceFlag,
  DEVICES,
  intFlag,
  parseFlags,
  positiveFlag,
  requiredFlag,
  runCommand,
  UsageError,
} from "./cli_util.ts";

const USAGE = `Usage: deno task eval --checkpoint <file> --protocol knn|linear [options]

Evaluates a checkpoint's backbone (frozen, eval-mode BN) on the labelled train/test splits of its
dataset: weighted kNN (k, temperature) or the linear probe of the paper (Linear(D, C), SGD nesterov,
batch 256, cosine lr 0.2, RandomResizedCrop + flip; best and last epoch reported).

Options:
  --checkpoint <file>    training checkpoint (checkpoint-*.safetensors of a run folder)
  --protocol knn|linear  evaluation protocol
  --fast                 linear: train the probe on features cached once (no augmentation)
  --data <dir>           dataset folder (default: data; Fashion-MNIST also from Debian's copy)
  --preset <name>        evaluate on this dataset preset instead of the checkpoint's
  --device <d>           auto | cpu | cuda | reference (default auto)
  --threads <n>          CPU threads of the oneDNN backend
  --network <n>          student (default) | teacher
  --epochs <n>           linear: probe epochs (default 100)
  --batch-size <n>       linear: probe batch (default 256)
  --lr <x>               linear: initial learning rate (default 0.2)
  --seed <n>             linear: probe initialisation and shuffling seed (default 0)
  --k <n>                knn: neighbours (default: the checkpoint's config, 200)
  --temperature <x>      knn: vote temperature (default: the checkpoint's config, 0.1)
  --limit-train <n>      use the first n training images
  --limit-test <n>       use the first n test images
  --out <file.json>      write the result as JSON
  --help                 this text
`;

const FLAGS = {
  checkpoint: { type: "string" },
  protocol: { type: "string" },
  fast: { type: "boolean" },
  data: { type: "string" },
  preset: { type: "string" },
  device: { type: "string" },
  threads: { type: "string" },
  network: { type: "string" },
  epochs: { type: "string" },
  "batch-size": { type: "string" },
  lr: { type: "string" },
  seed: { type: "string" },
  k: { type: "string" },
  temperature: { type: "string" },
  "limit-train": { type: "string" },
  "limit-test": { type: "string" },
  out: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Dataset preset names by training-config dataset name. */
const PRESET_OF: Record<string, string> = {
  tinyimagenet: "tiny-imagenet",
  "imagenet-multicrop": "imagenet",
};

function parse(args: string[]) {
  const v = parseFlags(args, FLAGS);
  if (v.help) return null;
  const protocol = choiceFlag("protocol", v.protocol, ["knn", "linear"] as const);
  if (v.fast && protocol !== "linear") {
    throw new UsageError("Invalid flag --fast: it applies to --protocol linear only");
  }
  const out = v.out as string | undefined;
  if (out !== undefined) checkOutputPath("out", out);
  const preset = v.preset as string | undefined;
  if (preset !== undefined) {
    try {
      augmentationPreset(PRESET_OF[preset] ?? preset);
    } catch (e) {
      throw new UsageError(`Invalid flag --preset: ${(e as Error).message}`);
    }
  }
  return {
    checkpoint: requiredFlag("checkpoint", v.checkpoint, "file"),
    protocol,
    fast: v.fast === true,
    dataDir: (v.data as string | undefined) ?? "data",
    preset,
    device: choiceFlag("device", v.device, DEVICES, "auto"),
    threads: intFlag("threads", v.threads, 1),
    network: choiceFlag("network", v.network, ["student", "teacher"] as const, "student"),
    epochs: intFlag("epochs", v.epochs, 1) ?? 100,
    batchSize: intFlag("batch-size", v["batch-size"], 1) ?? 256,
    lr: positiveFlag("lr", v.lr) ?? 0.2,
    seed: intFlag("seed", v.seed, 0) ?? 0,
    k: intFlag("k", v.k, 1),
    temperature: positiveFlag("temperature", v.temperature),
    limitTrain: intFlag("limit-train", v["limit-train"], 1),
    limitTest: intFlag("limit-test", v["limit-test"], 1),
    out,
  };
}

/** The evaluation views: the preset's when `--preset` is given, else the checkpoint's settings. */
function views(config: TrainConfig, preset: string | undefined) {
  const name = preset ?? config.dataset;
  const p = augmentationPreset(PRESET_OF[name] ?? name);
  if (preset !== undefined) return { name: p.name, test: evalView(p), train: probeTrainView(p) };
  const own = (v: ViewPipeline): ViewPipeline => ({
    size: config.image.size,
    ops: v.ops,
    mean: [...config.image.mean],
    std: [...config.image.std],
  });
  return { name: p.name, test: own(evalView(p)), train: own(probeTrainView(p)) };
}

function knn(
  ctx: Context,
  common: Omit<ExtractFeaturesOptions, "dataset">,
  train: ImageDataset,
  test: ImageDataset,
  k: number,
  temperature: number,
) {
  return ctx.scope(() => {
    const trainF = extractFeatures(ctx, { ...common, dataset: train });
    const testF = extractFeatures(ctx, { ...common, dataset: test });
    const result = knnClassify({
      trainFeatures: trainF,
      trainLabels: datasetLabels(train),
      testFeatures: testF,
      numClasses: datasetClasses(train, test),
      k,
      temperature,
    });
    return knnAccuracy(result, datasetLabels(test));
  });
}

function fmt(x: number): string {
  return x.toFixed(2).padStart(6);
}

function printLinear(r: LinearProbeResult): void {
  console.log("linear probe   top-1   top-5  epoch");
  for (const [name, e] of [["best", r.best], ["last", r.last]] as const) {
    console.log(
      `${name.padEnd(13)} ${fmt(e.top1)}  ${fmt(e.top5)}  ${String(e.epoch).padStart(5)}`,
    );
  }
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
  const opened: ImageDataset[] = [];
  try {
    const net = await loadCheckpointBackbone(ctx, o.checkpoint, { network: o.network });
    try {
      const { config } = net.meta;
      const v = views(config, o.preset);
      const open = async (split: "train" | "test", limit?: number) => {
        const ds = await openDataset(v.name, { dataDir: o.dataDir, split, imageSize: v.test.size });
        opened.push(ds);
        if (ds.channels !== net.options.inChannels) {
          throw new Error(
            `Cannot evaluate on '${ds.name}': its images have ${ds.channels} channel(s), the backbone takes ${net.options.inChannels}`,
          );
        }
        return limit ? firstImages(ds, limit) : ds;
      };
      const train = await open("train", o.limitTrain);
      const test = await open("test", o.limitTest);
      console.log(
        `eval ${o.protocol}${o.fast ? " (fast)" : ""}: ${o.network} of ${o.checkpoint} ` +
          `(ResNet-${net.options.depth} width ${net.options.width}, step ${net.meta.step}), ` +
          `${train.length} train / ${test.length} test images of ${v.name}, backend ${backend.name}`,
      );
      const common = {
        params: net.params,
        buffers: net.buffers,
        maxPool: net.options.maxPool,
        view: v.test,
      };
      const base = {
        checkpoint: o.checkpoint,
        network: o.network,
        step: net.meta.step,
        epoch: net.meta.epoch,
        dataset: v.name,
        trainImages: train.length,
        testImages: test.length,
        backend: backend.name,
        protocol: o.protocol,
      };
      let record: Record<string, unknown>;
      if (o.protocol === "knn") {
        const k = o.k ?? config.knn.k, temperature = o.temperature ?? config.knn.temperature;
        const acc = knn(ctx, common, train, test, k, temperature);
        console.log(
          `kNN (k ${k}, T ${temperature}): top-1 ${fmt(acc.top1)}  top-5 ${fmt(acc.top5)}`,
        );
        record = { ...base, k, temperature, top1: acc.top1, top5: acc.top5 };
      } else {
        const r = linearProbe(ctx, {
          backbone: net,
          maxPool: net.options.maxPool,
          train,
          test,
          trainView: v.train,
          testView: v.test,
          fast: o.fast,
          epochs: o.epochs,
          batchSize: o.batchSize,
          lr: o.lr,
          seed: o.seed,
          onEpoch: (e) =>
            console.log(
              `epoch ${e.epoch}/${o.epochs}: lr ${e.lr.toFixed(4)}, loss ${
                e.trainLoss.toFixed(4)
              }, ` +
                `top-1 ${e.top1.toFixed(2)}, top-5 ${e.top5.toFixed(2)}`,
            ),
        });
        printLinear(r);
        record = {
          ...base,
          fast: o.fast,
          epochs: o.epochs,
          batchSize: o.batchSize,
          lr: o.lr,
          seed: o.seed,
          numClasses: r.numClasses,
          featureDim: r.featureDim,
          best: r.best,
          last: r.last,
          history: r.history,
        };
      }
      if (o.out) {
        await writeFileAtomic(o.out, JSON.stringify(record, null, 2) + "\n");
        console.log(`wrote ${o.out}`);
      }
      return 0;
    } finally {
      disposeBackbone(net);
    }
  } finally {
    for (const ds of opened) ds.close();
    backend.dispose();
  }
}

if (import.meta.main) await runCommand(main);
